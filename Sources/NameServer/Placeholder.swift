// The name server; see NameServer.swift.
