import Foundation
import NIOPosix

/// The parsed contents of an ACL file: its ``ACLRule``s in file order.
///
/// Blank lines and lines starting with `#` are ignored; a line may end in `\r\n`.
public struct ACLFile: Sendable, Hashable {
    /// Files larger than this are refused rather than read into memory.
    public static let maxFileSizeBytes = 16 * 1024 * 1024

    /// The rules, in the order they are tried.
    public var rules: [ACLRule]

    /// Creates a file from rules (tried in the order given).
    public init(rules: [ACLRule]) {
        self.rules = rules
    }

    /// Parses the text of an ACL file; `path` only names the file in errors.
    public init(contents: String, path: String) throws(ACLFileError) {
        self.rules = []
        var lineNumber = 0
        for line in contents.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
            if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" }) {
                continue
            }
            do {
                self.rules.append(try ACLRule(line: trimmed, lineNumber: lineNumber))
            } catch {
                throw .malformedLine(path: path, lineNumber: lineNumber, reason: error.reason)
            }
        }
    }

    /// Reads and parses the file at `path` on NIO's thread pool, so no event loop blocks on the disk.
    public static func load(path: String) async throws(ACLFileError) -> ACLFile {
        let bytes: [UInt8]
        do {
            bytes = try await NIOThreadPool.singleton.runIfActive {
                try Self.readBytes(path: path)
            }
        } catch let error as ACLFileError {
            throw error
        } catch {
            throw .unreadable(path: path, reason: "\(error)")
        }
        guard let contents = String(validating: bytes, as: UTF8.self) else {
            throw .notUTF8(path: path)
        }
        return try ACLFile(contents: contents, path: path)
    }

    /// Blocking read, bounded by ``maxFileSizeBytes``; runs on the thread pool.
    private static func readBytes(path: String) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ACLFileError.unreadable(path: path, reason: "no such file, or permission denied")
        }
        defer { try? handle.close() }
        let data = try handle.read(upToCount: Self.maxFileSizeBytes + 1) ?? Data()
        guard data.count <= Self.maxFileSizeBytes else {
            throw ACLFileError.tooLarge(path: path, limitBytes: Self.maxFileSizeBytes)
        }
        return Array(data)
    }
}
