// How charlm computes: the CPU class the kernels are chosen for, the threads that share the work and the kernel of
// the packed product. A context is made by whoever owns a model's work (a shell session, a benchmark, a test) and
// passed down explicitly: workspace -> model -> layers -> products. Nothing here is process-wide and mutable, so two
// sessions with different thread counts in one process do not reconfigure each other.

import CPUFeatures
import Foundation

/// The class of CPU, by its widest vectors, for which charlm's kernel choices were measured: it picks the time loops'
/// register block (`packedKernel`) and the large products' kernel for each kind of product (`Products.measuredChoice`).
///
/// This is the one place that asks the CPU and the one place that reads `CHARLM_VECTOR_BITS`, which can narrow the
/// class (never widen it: a CPU cannot run instructions it lacks) so that the AVX2 kernels can be measured and tested
/// on an AVX-512 machine. Forced to 256 bits, the kernels that follow the class use 8-lane vectors; the element-wise
/// kernels (VectorMath.swift) keep the width the package was compiled for, and an AVX-512 CPU still has 32 vector
/// registers where an AVX2 one has 16, so a register block that spills on AVX2 would not show it here.
public enum CPUClass: String, Sendable, CaseIterable {
    /// 512-bit vectors (AVX-512F): Intel Xeon since Skylake-SP, Intel client cores Ice Lake to Rocket Lake, Zen 4/5.
    case avx512
    /// 256-bit vectors with FMA and no AVX-512: AMD Zen 1-3, Intel client cores from Haswell on (Alder Lake and later
    /// have AVX-512 disabled).
    case avx2
    /// Neither: 128-bit vectors (SSE, NEON), the plain fallback.
    case plain

    /// The width in bits of the class's vectors.
    public var vectorBits: Int {
        switch self {
        case .avx512: 512
        case .avx2: 256
        case .plain: 128
        }
    }

    /// The class of `bits`-bit vectors (512, 256 or 128), or nil for another width.
    public init?(vectorBits bits: Int) {
        guard let found = Self.allCases.first(where: { $0.vectorBits == bits }) else { return nil }
        self = found
    }

    /// The environment variable that narrows the class: 256 or 128 (512 changes nothing on an AVX-512 CPU).
    public static let environmentVariable = "CHARLM_VECTOR_BITS"

    /// This CPU's own class, whatever the environment says.
    public static let detected = CPUClass(vectorBits: Int(charlm_cpu_vector_bits())) ?? .plain

    /// The class charlm computes with: `detected`, narrowed by `CHARLM_VECTOR_BITS` when it holds a width this CPU has
    /// (otherwise the executables refuse to start: see `fromEnvironment`).
    public static let current = (try? fromEnvironment()) ?? detected

    /// The class `CHARLM_VECTOR_BITS` asks for, or `detected` when it is unset or empty; throws when it names a width
    /// that is not 128, 256 or 512, or one wider than this CPU's vectors.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(CharLMError) -> CPUClass {
        guard let text = environment[environmentVariable], !text.isEmpty else { return detected }
        return try narrowed(toBits: text, source: environmentVariable)
    }

    /// `detected` narrowed to `text` bits (128, 256 or 512, at most this CPU's width); `source` names where the value
    /// came from in the error (the environment variable or a command-line option).
    public static func narrowed(toBits text: String, source: String) throws(CharLMError) -> CPUClass {
        let rule = "128, 256 or 512, and at most this CPU's \(detected.vectorBits)"
        guard let bits = Int(text), let requested = CPUClass(vectorBits: bits) else {
            throw .outOfRange(setting: source, rule: rule, got: text)
        }
        guard bits <= detected.vectorBits else { throw .outOfRange(setting: source, rule: rule, got: text) }
        return requested
    }

    /// The time loops' register block (PackedProduct.swift) for this class.
    var packedKernel: PackedKernel {
        switch self {
        case .avx512: .wide
        case .avx2: .avx2
        case .plain: .narrow
        }
    }
}

/// How the recurrent layers' time loops share a step between the team's threads (Recurrence.swift). Both give the same
/// results to the bit; they differ in speed only.
public enum TimeLoop: String, Sendable, CaseIterable {
    /// Each thread owns a group of hidden units: the recurrent product for its units' gates, then their cell, with no
    /// wait between; one barrier per step (for h_t, or dLoss/d(product_t), to be complete).
    case fused
    /// The product split by columns, a barrier, the cell split by rows of the batch, a barrier: two per step (the
    /// loop before the fused one, kept for the tests and the benchmark to compare against).
    case split
}

/// The threads and kernels one owner computes with.
public final class ComputeContext: @unchecked Sendable {
    /// Threads that run each shared job, the caller included (at least 1).
    public let threadCount: Int
    /// The team that runs the time loops (ThreadTeam.swift).
    let team: ThreadTeam
    /// The team that shares the larger products (BLAS.swift): `team`, except in tests that vary the time loops' team
    /// while keeping the products cut the same way (a product cut into other parts may round differently).
    let productTeam: ThreadTeam
    /// The context whose team `productTeam` is, kept alive while this one uses it.
    private let productOwner: ComputeContext?
    /// The CPU class the kernels were chosen for: this CPU's, or a narrower one asked for.
    public let cpu: CPUClass
    /// The register block of the time loops' product (PackedProduct.swift).
    let packedKernel: PackedKernel
    /// Which code computes the large products of training and evaluation (Products.swift).
    public let productKernel: ProductKernel
    /// How the time loops share a step between the threads.
    public let timeLoop: TimeLoop
    /// The packed products' packing space.
    let productScratch = ScratchBuffer()

    /// A context with `threads` threads (clamped to at least 1) and the kernels that suit `cpu` (default: this CPU,
    /// as `CHARLM_VECTOR_BITS` may narrow it), or the products' kernel and time loop given (benchmarks compare them).
    public init(threads: Int, products: ProductKernel = .preferred, cpu: CPUClass = .current,
                timeLoop: TimeLoop = .fused) {
        // BLAS itself stays single-threaded: the team shares the products (see BLAS.swift).
        BLAS.setThreadCountOnce
        threadCount = max(1, threads)
        team = ThreadTeam(size: threadCount)
        productTeam = team
        productOwner = nil
        self.cpu = cpu
        packedKernel = cpu.packedKernel
        productKernel = products
        self.timeLoop = timeLoop
        BLAS.mapWorkBuffers(team: team)
    }

    /// For tests: time loops on a team of `threads` (shared as `timeLoop` says), products cut as `other` cuts them.
    init(threads: Int, productsAs other: ComputeContext, timeLoop: TimeLoop = .fused) {
        threadCount = max(1, threads)
        team = ThreadTeam(size: threadCount)
        productTeam = other.productTeam
        productOwner = other
        cpu = other.cpu
        packedKernel = other.packedKernel
        productKernel = other.productKernel
        self.timeLoop = timeLoop
    }

    deinit { team.shutDown() }

    /// What computes, in one line: threads, the products' kernel and the vectors it uses, the BLAS and the kernel
    /// family it picked (e.g. "2 threads; products on charlm's packed kernel (6 x 64 blocks, 512-bit vectors); BLAS:
    /// OpenBLAS, core Cooperlake, for products under 6 rows or 2^18 multiply-adds"). Where the measured table sends
    /// some kinds of product to BLAS, it names them ("weight gradients on BLAS").
    public var summary: String {
        let threads = "\(threadCount) thread\(threadCount == 1 ? "" : "s")"
        let blas = blasSummary
        let forced = cpu == CPUClass.detected ? "" : ", forced; the CPU has \(CPUClass.detected.vectorBits)"
        let packed = "charlm's packed kernel (\(PackedMatrix.blockRows) x \(packedKernel.panelWidth) blocks, "
            + "\(cpu.vectorBits)-bit vectors\(forced))"
        let onBLAS = ProductRole.allCases.filter { productKernel.choice(for: $0, cpu: cpu) == .blas }
        if onBLAS.count == ProductRole.allCases.count {
            return "\(threads); products on BLAS: \(blas); time loops on \(packed)"
        }
        let exceptions = onBLAS.isEmpty ? "" : ", " + onBLAS.map(\.description).joined(separator: " and ") + " on BLAS"
        return "\(threads); products on \(packed)\(exceptions); BLAS: \(blas), for products under 6 rows or 2^18 "
            + "multiply-adds"
    }

    /// The BLAS library, and OpenBLAS's kernel family ("OpenBLAS, core Cooperlake").
    public var blasSummary: String { BLAS.libraryName + (BLAS.libraryName == "OpenBLAS" ? ", core \(BLAS.coreName)" : "") }

    /// One thread per core. The default where a caller does not choose (tools, tests); never changed.
    public static let machine = ComputeContext(threads: ProcessInfo.processInfo.activeProcessorCount)
}

/// Asked now and then by long work (evaluation, feeding a long prompt, reading and tokenising a large text): once it
/// says stop, the work throws `CharLMError.cancelled` and leaves everything as it was. The shell asks Ctrl-C.
public struct Cancellation: Sendable {
    private let requested: @Sendable () -> Bool

    public init(_ requested: @escaping @Sendable () -> Bool) { self.requested = requested }

    /// Never stops.
    public static let never = Cancellation { false }

    /// Throws `cancelled` when a stop was asked for.
    public func check() throws {
        if requested() { throw CharLMError.cancelled }
    }
}
