// swift-tools-version:6.0
// charlm: a character-level LSTM language model written from scratch in Swift.
// See README.md for the quick start and ../shared/STYLE.md for how the code is laid out.
import PackageDescription

let package = Package(
    name: "charlm",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "CharLM", targets: ["CharLM"]),
        .executable(name: "charlm-bench", targets: ["charlm-bench"]),
    ],
    targets: [
        // BLAS: OpenBLAS through pkg-config on Linux. On macOS, CharLM imports Accelerate instead.
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(
            name: "CharLM",
            dependencies: [.target(name: "CBLAS", condition: .when(platforms: [.linux]))]
        ),
        .executableTarget(name: "charlm-bench", dependencies: ["CharLM"]),
        .testTarget(name: "CharLMTests", dependencies: ["CharLM"]),
    ],
    swiftLanguageModes: [.v6]
)
