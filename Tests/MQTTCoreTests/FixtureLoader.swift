import Foundation
import MQTTCore
import Testing

/// A sequence of whole MQTT packets from the `Fixtures` resource folder: captured from mosquitto
/// (`Fixtures/mosquitto/`) or taken from the specifications' examples (`Fixtures/spec/`).
/// `Fixtures/README.md` says where each kind comes from and how to regenerate it.
struct Fixture: Decodable, Sendable {
    /// Where the bytes came from: a broker and its clients, or a section of a specification.
    let source: String
    /// How they were produced: the command lines of a capture, or what the specification example shows.
    let scenario: String
    /// What a capture demonstrates; nil for specification vectors.
    let description: String?
    /// The protocol level every packet is encoded for: 3 (MQTT 3.1), 4 (3.1.1) or 5 (5.0).
    let protocolVersion: UInt8
    /// The packets in the order they were seen (see `Packet.connection`).
    let packets: [Packet]
    /// The file's path inside `Fixtures`, e.g. `mosquitto/v5-ping.json`. Set by the loader.
    private(set) var name = ""

    private enum CodingKeys: String, CodingKey {
        case source, scenario, description, protocolVersion, packets
    }

    /// The version the packets are encoded for. A fixture naming any other level fails to load.
    var version: MQTTProtocolVersion {
        // Checked in `load(_:)`, so a bad level is reported as a broken file rather than crashing here.
        MQTTProtocolVersion(rawValue: protocolVersion)!
    }

    /// One whole packet: fixed header, remaining length, variable header and payload.
    struct Packet: Decodable, Sendable {
        enum Direction: String, Decodable, Sendable {
            case clientToServer = "c2s"
            case serverToClient = "s2c"
        }

        /// The TCP connection of a capture that carried the packet, numbered in the order the connections
        /// were opened; nil for specification vectors, which are independent of each other. Within one
        /// connection and direction the order is the order on the wire; between the two directions it is
        /// the order the relay saw them, which can vary from one capture to the next.
        let connection: Int?
        let direction: Direction
        /// The packet type as `MQTTPacketType.description` spells it (`"PUBLISH"`, `"SUBACK"`, ...).
        let type: String
        /// What the vector shows (specification vectors only).
        let note: String?
        /// The packet's bytes.
        let bytes: [UInt8]

        private enum CodingKeys: String, CodingKey {
            case connection, direction, type, hex, note
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            connection = try container.decodeIfPresent(Int.self, forKey: .connection)
            direction = try container.decode(Direction.self, forKey: .direction)
            type = try container.decode(String.self, forKey: .type)
            note = try container.decodeIfPresent(String.self, forKey: .note)
            let hex = try container.decode(String.self, forKey: .hex)
            guard let bytes = Self.bytes(fromHex: hex) else {
                throw DecodingError.dataCorruptedError(forKey: .hex, in: container, debugDescription: "not an even number of hex digits")
            }
            self.bytes = bytes
        }

        private static func bytes(fromHex hex: String) -> [UInt8]? {
            let digits = Array(hex.utf8)
            guard digits.count % 2 == 0 else { return nil }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(digits.count / 2)
            for index in stride(from: 0, to: digits.count, by: 2) {
                guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
                bytes.append(high << 4 | low)
            }
            return bytes
        }

        private static func nibble(_ digit: UInt8) -> UInt8? {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
    }

    /// The connections of a capture, in the order they were opened (empty for specification vectors).
    var connections: [Int] {
        Array(Set(packets.compactMap(\.connection))).sorted()
    }

    /// Everything one side sent on one connection, as one byte stream (for drip-feed and framing tests).
    func stream(connection: Int, direction: Packet.Direction) -> [UInt8] {
        packets.filter { $0.connection == connection && $0.direction == direction }.flatMap(\.bytes)
    }

    /// Every fixture under `Fixtures`, or under one of its subfolders (`"mosquitto"`, `"spec"`), sorted by name.
    /// A fixture that cannot be read is a broken checkout, so it stops the run with the file's name.
    static func all(in subfolder: String? = nil) -> [Fixture] {
        guard let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            preconditionFailure("the Fixtures resource folder is missing from the test bundle")
        }
        let folder = subfolder.map { root.appendingPathComponent($0, isDirectory: true) } ?? root
        guard let enumerator = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil) else {
            preconditionFailure("cannot list \(folder.path)")
        }
        let rootPath = root.standardizedFileURL.path + "/"
        var names: [String] = []
        for case let url as URL in enumerator where url.pathExtension == "json" {
            let path = url.standardizedFileURL.path
            names.append(path.hasPrefix(rootPath) ? String(path.dropFirst(rootPath.count)) : url.lastPathComponent)
        }
        return names.sorted().map { name in
            do {
                return try load(name)
            } catch {
                preconditionFailure("Fixtures/\(name): \(error)")
            }
        }
    }

    /// Loads one fixture by its path inside `Fixtures`, e.g. `"spec/v5-variable-byte-integer.json"`.
    static func load(_ name: String) throws -> Fixture {
        guard let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            throw CocoaError(.fileNoSuchFile)
        }
        let data = try Data(contentsOf: root.appendingPathComponent(name))
        var fixture = try JSONDecoder().decode(Fixture.self, from: data)
        guard MQTTProtocolVersion(rawValue: fixture.protocolVersion) != nil else {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.protocolVersion], debugDescription: "unknown protocol level \(fixture.protocolVersion)"))
        }
        fixture.name = name
        return fixture
    }
}

extension Fixture: CustomTestStringConvertible {
    var testDescription: String { name }
}
