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
// Later layers (the LMQ store, the name server, the gateway) are targets of their own that
// depend on MQTTCore and never the other way round.
import PackageDescription

let package = Package(
    name: "rocketmq-mqtt-swift",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "MQTTCore", targets: ["MQTTCore"]),
        .library(name: "MQTTClient", targets: ["MQTTClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
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
        .testTarget(
            name: "MQTTCoreTests",
            dependencies: [
                "MQTTCore",
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
    ]
)
