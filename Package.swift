// swift-tools-version: 6.0
// AlignKit: train neural networks and align language models with human preferences, in Swift.
import PackageDescription

let package = Package(
    name: "AlignKit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "AlignKit", targets: ["AlignKit"]),
        .executable(name: "alignkit", targets: ["alignkit"]),
        .executable(name: "alignkit-fuzz", targets: ["alignkit-fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // `swift package generate-documentation` (DocC catalogs under Sources/*/*.docc); no code of ours links it.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // SIMD micro-kernels Swift cannot express portably (AVX-512, AVX2, AMX), with runtime dispatch.
        .target(name: "CAlignKitKernels"),
        .target(name: "AlignKitTensor", dependencies: ["CAlignKitKernels"]),
        .target(name: "AlignKitNN", dependencies: ["AlignKitTensor", "CAlignKitKernels"]),
        .target(name: "AlignKitText", dependencies: ["AlignKitTensor"]),
        .target(name: "AlignKitModels", dependencies: ["AlignKitNN", "AlignKitText"]),
        .target(name: "AlignKitAlignment", dependencies: ["AlignKitModels"]),
        .target(name: "AlignKit", dependencies: [
            "AlignKitTensor", "AlignKitNN", "AlignKitText", "AlignKitModels", "AlignKitAlignment",
        ]),
        // The parsers as fuzz targets, valid seed files, a mutator and a driver (see `alignkit-fuzz`).
        .target(name: "AlignKitFuzzing", dependencies: ["AlignKitAlignment"]),
        .executableTarget(name: "alignkit-fuzz", dependencies: ["AlignKitFuzzing"], path: "Sources/AlignKitFuzzCLI"),
        .executableTarget(name: "alignkit", dependencies: [
            "AlignKit",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Helpers shared by the test targets (finite-difference gradient checks, temporary folders, the shared data).
        .target(name: "AlignKitTestSupport", dependencies: ["AlignKitTensor"], path: "Tests/AlignKitTestSupport"),
        .testTarget(name: "AlignKitTensorTests", dependencies: ["AlignKitTensor", "CAlignKitKernels", "AlignKitTestSupport"]),
        .testTarget(name: "AlignKitTextTests", dependencies: ["AlignKitText", "AlignKitTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "AlignKitModelsTests", dependencies: ["AlignKitModels", "AlignKitTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "AlignKitAlignmentTests", dependencies: ["AlignKitAlignment", "AlignKitTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "AlignKitNNTests", dependencies: ["AlignKitNN", "AlignKitModels", "AlignKitTestSupport"]),
        // Crash-and-resume (runs the `alignkit` executable and kills it), divergence, output-folder checks,
        // determinism and the parsers' fuzzing.
        .testTarget(name: "AlignKitReliabilityTests", dependencies: ["AlignKitAlignment", "AlignKitFuzzing", "AlignKitTestSupport", "alignkit"]),
    ],
    swiftLanguageModes: [.v6]
)
