import Remoting

extension RemotingResponseCode {
    /// A session update named a client without a stored session
    /// (``LMQMetadataStoreError/sessionNotFound(clientIdentifier:)``; the remark is the client identifier).
    public static let storeSessionNotFound = RemotingResponseCode(rawValue: 1101)
    /// The metadata store refused an argument (an invalid topic, filter or packet identifier; the remark
    /// says which).
    public static let storeInvalidArgument = RemotingResponseCode(rawValue: 1102)
}
