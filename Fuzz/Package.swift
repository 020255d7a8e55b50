// swift-tools-version: 6.1
//
// libFuzzer target for the MQTT packet decoder, kept out of the root package so that the root's
// build and CI never compile sanitizer-instrumented code.
//
// Build and run with ../scripts/fuzz.sh; see ../docs/fuzzing.md.
import PackageDescription

let package = Package(
    name: "rocketmq-mqtt-swift-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "rocketmq-mqtt-swift", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // Built with `-sanitize=fuzzer,address`. main.swift starts libFuzzer's driver (see there why);
        // MQTTDecoderFuzzer.swift exports the harness as `LLVMFuzzerTestOneInput`.
        .executableTarget(
            name: "MQTTDecoderFuzzer",
            dependencies: [
                "CLibFuzzerDriver",
                .product(name: "MQTTCore", package: "rocketmq-mqtt-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Drives `ServerConnectionStateMachine` with event scripts decoded from the input (the driver is
        // the root package's `ServerConnectionFuzzing`, which the tests share to replay regressions).
        .executableTarget(
            name: "ServerConnectionFuzzer",
            dependencies: [
                "CLibFuzzerDriver",
                .product(name: "ServerConnectionFuzzing", package: "rocketmq-mqtt-swift"),
            ]
        ),
        /// Declares `LLVMFuzzerRunDriver`, which `-sanitize=fuzzer` links in.
        .target(name: "CLibFuzzerDriver"),
    ]
)
