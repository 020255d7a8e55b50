"""Opens one TLS connection to the node's TLS listener and reports what the handshake showed
(NodeTransportTests.swift): the server certificate's serial number and common name, the TLS version,
or the error. --max-tls 1.1 offers only TLS 1.0 and 1.1 (with the client's own security level
lowered, so that only the server can be the one refusing).

Prints {"ok": bool, "error": str, "serial": hex, "common_name": str, "version": str}.
"""

import socket
import ssl
import warnings

from nodetest import arguments, emit


def configure(parser):
    parser.add_argument("--transport-port", type=int, required=True)
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--max-tls", choices=["1.1", "1.2", "1.3"], default="1.3")


args = arguments(configure)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.load_verify_locations(args.cafile)
if args.max_tls == "1.1":
    # Deprecated on purpose: the test checks that the node refuses them.
    warnings.simplefilter("ignore", DeprecationWarning)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
elif args.max_tls == "1.2":
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.maximum_version = ssl.TLSVersion.TLSv1_2
try:
    with socket.create_connection((args.host, args.transport_port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            certificate = tls.getpeercert()
            subject = dict(item[0] for item in certificate["subject"])
            emit({
                "ok": True,
                "serial": certificate["serialNumber"].lower(),
                "common_name": subject.get("commonName"),
                "version": tls.version(),
            })
except (OSError, ssl.SSLError) as error:
    emit({"ok": False, "error": f"{type(error).__name__}: {error}"})
