/// A command that ran and failed: the one-line reason printed after `mqadmin: `, and exit status 1.
struct AdminFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }

    init(_ message: String) {
        self.message = message
    }
}
