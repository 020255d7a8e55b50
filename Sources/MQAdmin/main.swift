import ArgumentParser
import Foundation

// Command names are matched case-insensitively, as RocketMQ's mqadmin does; ArgumentParser is
// case-sensitive, so the command word is rewritten to its canonical spelling before parsing.
var arguments = Array(CommandLine.arguments.dropFirst())
let canonicalNames = Dictionary(uniqueKeysWithValues: MQAdmin.commandNames.map { ($0.lowercased(), $0) })

func fail(_ message: String, status: Int32) -> Never {
    FileHandle.standardError.write(Data("mqadmin: \(message)\n".utf8))
    exit(status)
}

let commandPosition = arguments.first?.lowercased() == "help" ? 1 : 0
if commandPosition < arguments.count, !arguments[commandPosition].hasPrefix("-") {
    let word = arguments[commandPosition]
    guard let canonical = canonicalNames[word.lowercased()] else {
        fail("unknown command '\(word)' (run 'mqadmin --help' for the list of commands)", status: ExitCode.validationFailure.rawValue)
    }
    arguments[commandPosition] = canonical
}

func run(_ arguments: [String]) async throws {
    var command = try MQAdmin.parseAsRoot(arguments)
    if var asyncCommand = command as? any AsyncParsableCommand {
        try await asyncCommand.run()
    } else {
        try command.run()
    }
}

do {
    try await run(arguments)
} catch let failure as AdminFailure {
    fail(failure.message, status: ExitCode.failure.rawValue)
} catch {
    let status = MQAdmin.exitCode(for: error)
    if status == .success {
        // --help, help COMMAND
        print(MQAdmin.fullMessage(for: error))
        exit(0)
    }
    // One line: ArgumentParser's reason, without the usage block it would add.
    let reason = MQAdmin.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
    let commandWord = arguments.first.flatMap { canonicalNames[$0.lowercased()] }
    let hint = commandWord.map { " (see 'mqadmin \($0) --help')" } ?? " (see 'mqadmin --help')"
    fail(reason + hint, status: status.rawValue)
}
