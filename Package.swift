// swift-tools-version: 6.1
//
// Target layout (dependencies point one way only):
//
//   MQTTCore     wire codec, topic names and filters, LMQ naming, protocol state machines (NIOCore only)
//      ^
//   MQTTClient   async/await MQTT 3.1.1 / 5.0 client on SwiftNIO
//      ^
//   executables  examples (mqtt-example/), tools
//
//   NodeSupport        what every node executable shares: conf/ parsing, signal handling
//   CSQLite ← SQLite   Debian's libsqlite3 and a small Swift wrapper over it
//   LMQStore           the commit log, light message queues, offsets, retained messages and
//                      session records (MQTTCore, SQLite); never imports the gateway
//
// Later layers (the name server, the store node, the gateway, and LMQClient for server
// applications over the store-node protocol) are targets of their own that depend on these and
// never the other way round.
import PackageDescription

let package = Package(
    name: "rocketmq-mqtt-swift",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "MQTTCore", targets: ["MQTTCore"]),
        .library(name: "MQTTClient", targets: ["MQTTClient"]),
        .library(name: "LMQStore", targets: ["LMQStore"]),
        .executable(name: "lmqstore-tool", targets: ["LMQStoreTool"]),
        .library(name: "Remoting", targets: ["Remoting"]),
        .library(name: "NameServer", targets: ["NameServer"]),
        .library(name: "MQTTAuth", targets: ["MQTTAuth"]),
        .executable(name: "mqnamesrv", targets: ["MQNameServerMain"]),
        .library(name: "StoreNode", targets: ["StoreNode"]),
        .library(name: "LMQClient", targets: ["LMQClient"]),
        .executable(name: "mqbroker", targets: ["MQBrokerMain"]),
        .executable(name: "mqadmin", targets: ["MQAdmin"]),
        .library(name: "MQTTGateway", targets: ["MQTTGateway"]),
        .executable(name: "mqtt-node", targets: ["MQTTNodeMain"]),
        .executable(name: "mqtt-bench", targets: ["MQTTBench"]),
        .library(name: "ServerConnectionFuzzing", targets: ["ServerConnectionFuzzing"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        .target(
            name: "MQTTCore",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .target(
            name: "MQTTClient",
            dependencies: [
                "MQTTCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(
            name: "SQLite",
            dependencies: ["CSQLite"]
        ),
        // CRC-32C with the CPU's instruction (SSE4.2, AArch64 CRC), for LMQStore's record checksums.
        .target(
            name: "CCRC32C"
        ),
        .target(
            name: "LMQStore",
            dependencies: [
                "CCRC32C",
                "MQTTCore",
                "SQLite",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "LMQStoreTool",
            dependencies: [
                "LMQStore",
                "MQTTCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Remoting",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "NodeSupport",
            dependencies: [
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "NameServer",
            dependencies: [
                "NodeSupport",
                "Remoting",
                "SQLite",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "MQTTAuth",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "MQNameServerMain",
            dependencies: [
                "NameServer",
                "NodeSupport",
                "Remoting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The LMQ store as a network service (the "broker"): wire protocol, server and client.
        .target(
            name: "StoreNode",
            dependencies: [
                "LMQStore",
                "MQTTCore",
                "Remoting",
                "NameServer",
                "NodeSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Server applications producing to and consuming from the store (docs/server-messaging.md).
        .target(
            name: "LMQClient",
            dependencies: [
                "StoreNode",
                "LMQStore",
                "MQTTCore",
                "Remoting",
                "NameServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "MQBrokerMain",
            dependencies: [
                "StoreNode",
                "NodeSupport",
                "Remoting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "MQAdmin",
            dependencies: [
                "NameServer",
                "Remoting",
                "MQTTAuth",
                "LMQClient",
                "MQTTCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(
            name: "MQTTGateway",
            dependencies: [
                "NodeSupport",
                "MQTTCore",
                "LMQStore",
                "NameServer",
                "Remoting",
                "StoreNode",
                "MQTTAuth",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "MQTTNodeMain",
            dependencies: [
                "MQTTGateway",
                "NodeSupport",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Plays fuzz inputs against the server connection state machine; used by Fuzz/ and by the tests
        // that replay what the fuzzer found.
        .target(
            name: "ServerConnectionFuzzing",
            dependencies: [
                "MQTTCore",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "MQTTBench",
            dependencies: [
                "MQTTCore",
                "LMQClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "MQTTGatewayTests",
            dependencies: [
                "MQTTGateway",
                "LMQClient",
                .product(name: "Prometheus", package: "swift-prometheus"),
                "MQTTClient",
                "MQTTCore",
                "NameServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            // Python scenarios that the node tests run with paho-mqtt.
            exclude: ["paho"]
        ),
        .testTarget(
            name: "NameServerTests",
            dependencies: [
                "NameServer",
                "Remoting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "StoreNodeTests",
            dependencies: [
                "StoreNode",
                "LMQStore",
                "MQTTCore",
                "NameServer",
                "Remoting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "MQTTAuthTests",
            dependencies: [
                "MQTTAuth",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "LMQStoreTests",
            dependencies: [
                "LMQStore",
                "MQTTCore",
                "SQLite",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "MQTTCoreTests",
            dependencies: [
                "MQTTCore",
                "ServerConnectionFuzzing",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "MQTTClientTests",
            dependencies: [
                "MQTTClient",
                "MQTTCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "mqtt-example-publisher",
            dependencies: [
                "MQTTClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "mqtt-example/Sources/MQTTPublisherExample"
        ),
        .executableTarget(
            name: "mqtt-example-subscriber",
            dependencies: [
                "MQTTClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "mqtt-example/Sources/MQTTSubscriberExample"
        ),
        .executableTarget(
            name: "mqtt-example-server-producer",
            dependencies: [
                "LMQClient",
                "MQTTCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "mqtt-example/Sources/ServerProducerExample"
        ),
        .executableTarget(
            name: "mqtt-example-server-consumer",
            dependencies: [
                "LMQClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "mqtt-example/Sources/ServerConsumerExample"
        ),
    ]
)
