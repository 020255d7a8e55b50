import MQTTCore

/// Why an ``LMQMetadataStore`` call failed, other than a failure of SQLite itself (those are thrown as
/// `SQLiteError`, carrying SQLite's result code and message).
public enum LMQMetadataStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file was written by a newer version of the store, with a schema this version does not know.
    /// Opening it could misread or damage it, so the store refuses to start.
    case unsupportedSchemaVersion(path: String, found: Int32, supported: Int32)
    /// The file is an SQLite database, but not one this store created (its `application_id` differs, or it
    /// has tables but no schema version).
    case notAMetadataFile(path: String, applicationID: Int32)
    /// A stored value cannot be decoded: the file was damaged or edited by hand.
    case corruptValue(table: String, key: String, reason: String)
    /// A fine-grained session update named a client with no stored session.
    case sessionNotFound(clientIdentifier: String)
    /// A retained message's topic is not a valid topic name, or a subscription's filter not a valid filter.
    case invalidTopic(String, TopicError)
    /// An argument outside its allowed range (a packet identifier of 0, a subscription identifier of 0...).
    case invalidArgument(String)
    /// The store was closed.
    case closed

    public var description: String {
        switch self {
        case .unsupportedSchemaVersion(let path, let found, let supported):
            return "\(path) has metadata schema version \(found), but this version of the store supports up to \(supported); "
                + "it was written by a newer release — upgrade, or restore a backup made by this release"
        case .notAMetadataFile(let path, let applicationID):
            return "\(path) is not an LMQ store metadata file (application_id \(applicationID)); refusing to use it"
        case .corruptValue(let table, let key, let reason):
            return "corrupt value in metadata table \(table) for \(key): \(reason)"
        case .sessionNotFound(let clientIdentifier):
            return "no stored session for client identifier \(clientIdentifier)"
        case .invalidTopic(let topic, let error):
            return "invalid topic '\(topic)': \(error)"
        case .invalidArgument(let reason):
            return "invalid argument: \(reason)"
        case .closed:
            return "the metadata store is closed"
        }
    }
}
