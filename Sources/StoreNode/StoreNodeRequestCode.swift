/// The request codes of the store-node protocol (docs/store-protocol.md), 400...449: the range is the
/// store node's own, apart from the name server's codes.
public enum StoreNodeRequestCode: Int32, Sendable, Hashable, CaseIterable {
    // The log.
    case append = 400
    case pull = 401
    case maxOffsets = 402
    case stats = 403
    case watch = 404
    case unwatch = 405
    /// Pushed by the node (oneway): new maximum offsets of watched queues.
    case notify = 406
    /// Registers and unregisters wildcard filters of sessions for dispatch (DispatchRegistry).
    case updateDispatch = 407
    /// Pushed by the node (oneway): give up a client's session, another gateway claims it (SessionOwnership).
    case takeover = 408
    /// Pushed by the node (oneway): messages of a shared subscription group were handed back.
    case sharedReturned = 409

    // Consume offsets.
    case commitOffset = 410
    case queryOffset = 411
    case offsets = 412
    case deleteOffsets = 413

    // Retained messages.
    case setRetained = 420
    case deleteRetained = 421
    case retainedByTopic = 422
    case retainedMatching = 423
    case retainedCount = 424
    case deleteExpiredRetained = 425

    // Sessions.
    case putSession = 430
    case getSession = 431
    case allSessions = 432
    case deleteSession = 433
    case addPendingPubRel = 434
    case removePendingPubRel = 435
    case setWill = 436
    case markConnected = 437
    case markDisconnected = 438
    case expiredSessions = 439

    // The session journal.
    case applySessionJournal = 440
    case deleteSessionAndOffsets = 441
    case sessionDeliveries = 442

    // Which gateway holds a client's connection (SessionOwnership).
    case claimSession = 443
    case releaseSession = 444
    case takeoverDone = 445

    // Shared subscriptions spanning gateways (SharedGroupRegistry).
    case takeShared = 450
    case finishShared = 451
    case giveBackShared = 452

    // Several store nodes.
    /// Appends a message of a first topic stored on another node, only to the queues of the registered
    /// filters that match it (filters whose first level is a wildcard live on the primary node).
    case appendToMatchingFilters = 460
}
