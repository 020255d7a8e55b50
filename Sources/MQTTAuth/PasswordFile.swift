import Foundation
import NIOPosix

/// The parsed contents of a users file: one ``PasswordFileEntry`` per line.
///
/// Blank lines and lines starting with `#` are ignored; a line may end in `\r\n`.
public struct PasswordFile: Sendable, Hashable {
    /// Files larger than this are refused rather than read into memory.
    public static let maxFileSizeBytes = 16 * 1024 * 1024

    /// The users, by user name.
    public private(set) var entriesByUsername: [String: PasswordFileEntry]

    /// Creates a users file from entries.
    ///
    /// - Throws: ``PasswordFileError/duplicateUsername(path:lineNumber:username:)`` when two entries share a
    ///   user name (`lineNumber` is then the 1-based position in `entries`).
    public init(entries: [PasswordFileEntry]) throws(PasswordFileError) {
        self.entriesByUsername = [:]
        for (position, entry) in entries.enumerated() {
            guard self.entriesByUsername.updateValue(entry, forKey: entry.username) == nil else {
                throw .duplicateUsername(path: "<entries>", lineNumber: position + 1, username: entry.username)
            }
        }
    }

    /// Parses the text of a users file; `path` only names the file in errors.
    public init(contents: String, path: String) throws(PasswordFileError) {
        self.entriesByUsername = [:]
        var lineNumber = 0
        // Swift reads "\r\n" as one Character, which `isNewline` matches like "\n".
        for line in contents.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
            if trimmed.isEmpty || trimmed.hasPrefix("#") {
                continue
            }
            let entry: PasswordFileEntry
            do {
                entry = try PasswordFileEntry(line: line)
            } catch {
                throw .malformedLine(path: path, lineNumber: lineNumber, reason: error.reason)
            }
            guard self.entriesByUsername.updateValue(entry, forKey: entry.username) == nil else {
                throw .duplicateUsername(path: path, lineNumber: lineNumber, username: entry.username)
            }
        }
    }

    /// Reads and parses the file at `path` on NIO's thread pool, so no event loop blocks on the disk.
    public static func load(path: String) async throws(PasswordFileError) -> PasswordFile {
        let bytes: [UInt8]
        do {
            bytes = try await NIOThreadPool.singleton.runIfActive {
                try Self.readBytes(path: path)
            }
        } catch let error as PasswordFileError {
            throw error
        } catch {
            throw .unreadable(path: path, reason: "\(error)")
        }
        guard let contents = String(validating: bytes, as: UTF8.self) else {
            throw .notUTF8(path: path)
        }
        return try PasswordFile(contents: contents, path: path)
    }

    /// The entry for `username`, if any.
    public func entry(for username: String) -> PasswordFileEntry? {
        self.entriesByUsername[username]
    }

    /// Adds `entry`, or replaces the entry with the same user name.
    public mutating func upsert(_ entry: PasswordFileEntry) {
        self.entriesByUsername[entry.username] = entry
    }

    /// The file's text: one line per entry, sorted by user name, each ending in `\n`.
    public var contents: String {
        self.entriesByUsername.values.sorted { $0.username < $1.username }.map { $0.line + "\n" }.joined()
    }

    /// Blocking read, bounded by ``maxFileSizeBytes``; runs on the thread pool.
    private static func readBytes(path: String) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw PasswordFileError.unreadable(path: path, reason: "no such file, or permission denied")
        }
        defer { try? handle.close() }
        // One byte past the limit tells "exactly at the limit" from "too large".
        let data = try handle.read(upToCount: Self.maxFileSizeBytes + 1) ?? Data()
        guard data.count <= Self.maxFileSizeBytes else {
            throw PasswordFileError.tooLarge(path: path, limitBytes: Self.maxFileSizeBytes)
        }
        return Array(data)
    }
}
