// swift-tools-version: 6.1
//
// Benchmarks of the MQTT codec and topic matching, kept out of the root package so that the root's
// build and CI never compile the benchmark tooling.
//
//   cd Benchmarks && swift package --disable-sandbox benchmark
//
// See ../docs/benchmarks.md for what is measured and the latest results.
import PackageDescription

let package = Package(
    name: "rocketmq-mqtt-swift-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "rocketmq-mqtt-swift", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        // Naming the traits turns off the default "RuntimeInterposer" trait, whose package is not needed
        // for malloc counting; "MallocInterposer" provides the malloc metrics.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "CodecBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "MQTTCore", package: "rocketmq-mqtt-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/CodecBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
    ]
)
