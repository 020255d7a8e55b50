import ArgumentParser
import Foundation
import MQTTAuth

struct SignPassword: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signPassword",
        abstract: "Print the MQTT password a device must send: Base64(HMAC-SHA1(secretKey, clientId)).",
        discussion: """
            The default authenticator expects the user name from service.conf and this password, derived from \
            the client identifier and service.conf's secretKey. Give --secret-key - to read the key from the \
            first line of standard input, which keeps it out of the process list and shell history.
            """
    )

    @Option(name: .customLong("client-id"), help: "The device's MQTT client identifier.")
    var clientID: String

    @Option(name: .customLong("secret-key"), help: "The secretKey of service.conf, or - to read it from standard input.")
    var secretKey: String

    func run() throws {
        var key = secretKey
        if key == "-" {
            guard let line = readLine(strippingNewline: true) else { throw AdminFailure("no secret key on standard input") }
            key = line
        }
        print(HmacSHA1AuthManager.password(clientIdentifier: clientID, secretKey: key))
    }
}
