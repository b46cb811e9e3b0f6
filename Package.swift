// swift-tools-version:6.0
// charlm: character-level language models (LSTM, GRU, RNN and n-grams behind one model interface) written from scratch in Swift.
// See README.md for the quick start and ../shared/STYLE.md for how the code is laid out.
import PackageDescription

#if os(Linux)
let readlinePkgConfig: String? = nil
#else
let readlinePkgConfig: String? = "readline"
#endif

let package = Package(
    name: "charlm",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CharLM", targets: ["CharLM"]),
        .library(name: "CharLMShell", targets: ["CharLMShell"]),
        .executable(name: "charlm", targets: ["charlm"]),
        .executable(name: "charlm-bench", targets: ["charlm-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // BLAS: OpenBLAS through pkg-config on Linux. On macOS, CharLM imports Accelerate instead.
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // One question about the CPU (how wide are its vectors?), which picks the kernels (CPUClass, Compute.swift).
        .target(name: "CPUFeatures"),
        .target(
            name: "CharLM",
            dependencies: ["CPUFeatures", .target(name: "CBLAS", condition: .when(platforms: [.linux]))],
            // The element-wise kernels (GateKernels.swift) use the widest vectors this CPU has. charlm is built
            // from source where it runs (scripts/setup), so the binary need not run on older CPUs. Optimised in
            // debug builds too: unoptimised SIMD code is 100x slower, and the tests train real models.
            swiftSettings: [.unsafeFlags(["-O", "-target-cpu", "native"])]
        ),
        // GNU readline for the interactive prompt; only Sources/charlm/ReadlineLineSource.swift imports it. On Linux
        // its headers are in the system's include path, and Debian's readline.pc adds -D flags SwiftPM refuses (a
        // warning on every build), so pkg-config is asked on macOS only, where Homebrew keeps readline apart.
        .systemLibrary(
            name: "CReadline",
            pkgConfig: readlinePkgConfig,
            providers: [.apt(["libreadline-dev"]), .brew(["readline"])]
        ),
        // The shell core: session, command table, lexer, completion, script runner, and the terminal's libc calls
        // (Terminal/Terminal.swift). No readline.
        .target(name: "CharLMShell", dependencies: ["CharLM"]),
        .executableTarget(
            name: "charlm",
            dependencies: [
                "CharLMShell", "CReadline",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "charlm-bench",
            dependencies: ["CharLM", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // The fixtures are read by path (#filePath), not bundled.
        .testTarget(name: "CharLMTests", dependencies: ["CharLM"], exclude: ["Fixtures"]),
        .testTarget(name: "CharLMShellTests", dependencies: ["CharLMShell", "charlm", "charlm-bench"], exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6]
)
