// How charlm computes: the threads that share the work and the kernel of the packed product. A context is made by
// whoever owns a model's work (a shell session, a benchmark, a test) and passed down explicitly: workspace ->
// model -> layers -> products. Nothing here is process-wide and mutable, so two sessions with different thread
// counts in one process do not reconfigure each other.

import CPUFeatures
import Foundation

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
    /// The register block of the time loops' product (PackedProduct.swift).
    let packedKernel: PackedKernel
    /// Which code computes the large products of training and evaluation (Products.swift).
    public let productKernel: ProductKernel
    /// The packed products' packing space.
    let productScratch = ScratchBuffer()

    /// A context with `threads` threads (clamped to at least 1) and the kernels that suit this CPU, or the
    /// products' kernel given (benchmarks compare them).
    public convenience init(threads: Int, products: ProductKernel = .preferred) {
        self.init(threads: threads, packedKernel: .preferred, products: products)
    }

    init(threads: Int, packedKernel: PackedKernel, products: ProductKernel = .preferred) {
        // BLAS itself stays single-threaded: the team shares the products (see BLAS.swift).
        BLAS.setThreadCountOnce
        threadCount = max(1, threads)
        team = ThreadTeam(size: threadCount)
        productTeam = team
        productOwner = nil
        self.packedKernel = packedKernel
        productKernel = products
        BLAS.mapWorkBuffers(team: team)
    }

    /// For tests: time loops on a team of `threads`, products cut as `other` cuts them.
    init(threads: Int, productsAs other: ComputeContext) {
        threadCount = max(1, threads)
        team = ThreadTeam(size: threadCount)
        productTeam = other.productTeam
        productOwner = other
        packedKernel = other.packedKernel
        productKernel = other.productKernel
    }

    deinit { team.shutDown() }

    /// What computes, in one line: threads, the products' kernel and the CPU's vectors it uses, the BLAS and the
    /// kernel family it picked (e.g. "2 threads; products on charlm's packed kernel (6 x 64 blocks, 512-bit
    /// vectors); BLAS: OpenBLAS, core Cooperlake, for products under 6 rows or 2^18 multiply-adds").
    public var summary: String {
        let threads = "\(threadCount) thread\(threadCount == 1 ? "" : "s")"
        let blas = BLAS.libraryName + (BLAS.libraryName == "OpenBLAS" ? ", core \(BLAS.coreName)" : "")
        let rows = PackedMatrix.blockRows
        switch productKernel {
        case .packed:
            return "\(threads); products on charlm's packed kernel (\(rows) x \(packedKernel.panelWidth) blocks, "
                + "\(Self.vectorBits)-bit vectors); BLAS: \(blas), for products under 6 rows or 2^18 multiply-adds"
        case .blas:
            return "\(threads); products on BLAS: \(blas); time loops on charlm's packed kernel "
                + "(\(rows) x \(packedKernel.panelWidth) blocks, \(Self.vectorBits)-bit vectors)"
        }
    }

    /// The width in bits of this CPU's widest vectors (512, 256 or 128).
    public static let vectorBits = Int(charlm_cpu_vector_bits())

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
