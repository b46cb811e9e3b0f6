// The large matrix products of training and evaluation, C(M, N) (+)= op(A)(M, K) op(B)(K, N): layer >= 1's input
// projections and their backward, the output layer and its backward, and the weight gradients over all T*B rows.
// Each goes either to BLAS (BLAS.swift) or to charlm's own packed kernel (PackedProduct.swift), as the compute
// context says (`ProductKernel`, Compute.swift). The small ones (layer 0's V-row table, batch-1 generation) always
// go to BLAS: below `packedMinimumWork` packing costs more than it saves.
//
// Why our own kernel: BLAS's speed depends on which kernel family the library picked for the CPU, and OpenBLAS's
// pick can be pinned by the environment (`OPENBLAS_CORETYPE`) to one half as fast on the same machine. The packed
// kernel's speed depends only on the CPU's vector width, which charlm asks the CPU itself (CPUFeatures).
//
// How the packed path computes: op(B) is packed `depthBlock` rows at a time into column panels (the layout of
// PackedMatrix, K cut to the block), and the kernel runs down each block for six rows of op(A) at a time, read in
// place with strides (so a transposed A costs nothing to set up). The threads split C by panels, each packing and
// multiplying its own, with no barrier; when there are too few panels to share evenly, the caller packs each block
// and the threads split C's rows. A block of 1024 rows keeps a 64-wide panel's block at 256 KB, in the core's L2
// cache while six-row blocks of A stream past it, and makes few passes over C (each pass loads and stores the
// whole of C, 26 MB for the default model's input projection). Measured on a Zen 4 (2 cores, `charlm-bench
// gemm-speed`, GFLOP/s for blocks of 64 / 128 / 256 / 512 / 1024 rows): (6400 x 256) x (256 x 1024) 135 / 167 / 172
// / 187 / 195, and (6400 x 1024) x (1024 x 256) 115 / 136 / 165 / 187 / 203, BLAS 188-195.
//
// Results: every element of C is summed in the order k = 0, 1, ..., K-1 in float32 (cutting K into blocks stores and
// reloads the partial sums, which changes nothing), so the packed path gives the same bits whatever the panel
// width, block or thread count. BLAS sums in its own order; the two agree to float32 rounding (the tests bound the
// difference by K * 2^-23 * sum_k |a_ik b_kj|, the standard error bound of a float32 dot product).

import Synchronization

/// Which code computes the large products.
public enum ProductKernel: String, Sendable, CaseIterable {
    /// Each kind of product on the kernel measured fastest for the CPU class (`Products.measuredChoice`).
    case auto
    /// charlm's packed kernel (PackedProduct.swift) for every kind: the same speed whatever kernel the BLAS picked.
    case packed
    /// The BLAS's own gemm for every kind.
    case blas

    /// The choice for this machine: the measured table wherever charlm has its own kernels (every CPU it builds on
    /// with OpenBLAS); Accelerate on macOS, whose gemm runs on Apple's matrix units.
    public static var preferred: ProductKernel {
        #if canImport(Accelerate)
        return .blas
        #else
        return .auto
        #endif
    }

    /// The kernel (`packed` or `blas`) that computes `role`'s large products on `cpu`.
    public func choice(for role: ProductRole, cpu: CPUClass) -> ProductKernel {
        self == .auto ? Products.measuredChoice(role, cpu: cpu) : self
    }
}

/// The three kinds of large product in training and evaluation, told apart by their operands' transposes.
public enum ProductRole: CaseIterable, Sendable, CustomStringConvertible {
    /// X W^T (A as stored, B transposed): the input projections and the output layer, (T*B, in) x (in, out).
    case forward
    /// dY^T X (A transposed): the weight gradients, (out, T*B) x (T*B, in).
    case weightGradient
    /// dY W (neither transposed): the gradients of the layers' inputs, (T*B, out) x (out, in).
    case inputGradient

    public init(_ transA: Transpose, _ transB: Transpose) {
        self = transA == .transposed ? .weightGradient : transB == .transposed ? .forward : .inputGradient
    }

    public var description: String {
        switch self {
        case .forward: "forward products"
        case .weightGradient: "weight gradients"
        case .inputGradient: "input gradients"
        }
    }
}

/// The large products, on the kernel a compute context names.
public enum Products {
    /// Rows of op(B) packed at a time (see the top of the file).
    static let depthBlock = 1024
    /// Below this many multiply-adds a product goes to BLAS whatever the context says.
    static let packedMinimumWork = 1 << 18

    /// C = op(A) op(B) + beta C, beta 0 or 1, all row-major (see `BLAS.gemm` for the arguments), on the context's
    /// product kernel.
    public static func gemm(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, context: ComputeContext
    ) {
        precondition(beta == 0 || beta == 1, "Products.gemm takes beta 0 or 1")
        let kernel = context.productKernel.choice(for: ProductRole(transA, transB), cpu: context.cpu)
        if kernel == .blas || m < PackedMatrix.blockRows || m * n * k < packedMinimumWork {
            BLAS.gemm(transA, transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc,
                      context: context)
            return
        }
        packedGemm(transA, transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, accumulate: beta == 1,
                   c: c, ldc: ldc, kernel: panelKernel(columns: n, preferred: context.packedKernel),
                   scratch: context.productScratch, team: context.productTeam)
    }

    /// The measured table: which kernel computes each kind of large product on each CPU class, the faster of the two
    /// on the default model's shape of that kind (T*B = 6400 rows, H 256, 4H 1024; `scripts/bench` measures the same
    /// three), OpenBLAS choosing its own kernels. Fixed here, never timed at run time, so a CPU class always computes
    /// the same way (and the same bits). GFLOP/s on 2 cores, packed / BLAS (docs/benchmarks.md has the commands):
    ///
    ///   class   kind (m x n x k)                  packed / BLAS                                  choice
    ///   avx512  forward (6400 x 1024 x 256)       191 / 140 (Zen 4)                              packed
    ///   avx512  weight gradient (1024 x 256 x 6400) 159 / 185 (Zen 4)                            BLAS
    ///   avx512  input gradient (6400 x 256 x 1024)  210 / 157 (Zen 4)                            packed
    ///   avx2    forward          33 / 134 (Zen 3, path before); 113 / 110 (Zen 4 at 256 bits)   BLAS
    ///   avx2    weight gradient  58 / 81 (Zen 3, path before); 118 / 119 (Zen 4 at 256 bits)    BLAS
    ///   avx2    input gradient   91 / 74 (Zen 3, path before); 104 / 108 (Zen 4 at 256 bits)    packed
    ///
    /// On AVX2 the blocked path's avx2 kernel, forced to 256 bits on the Zen 4, ties OpenBLAS's Haswell kernels on the
    /// forward and weight-gradient shapes and runs a little below on the input gradient, within this shared
    /// machine's noise; the Zen 3 figures (issue 25) are of the path before it. So BLAS keeps the two kinds it beat
    /// the packed kernel on by far on a real AVX2 CPU, and the input gradient, where the packed kernel won there,
    /// stays packed. With OpenBLAS pinned to its Haswell kernels on an AVX-512 CPU (`OPENBLAS_CORETYPE`), the weight
    /// gradient on BLAS runs about 7% slower than packed (143 / 153 on the Zen 4): the table assumes OpenBLAS's own
    /// choice. Plain CPUs (no AVX2: old x86, ARM with NEON) were not measured: BLAS, which its library tunes for them.
    static func measuredChoice(_ role: ProductRole, cpu: CPUClass) -> ProductKernel {
        switch (cpu, role) {
        case (.avx512, .forward), (.avx512, .inputGradient): .packed
        case (.avx512, .weightGradient): .blas
        case (.avx2, .inputGradient): .packed
        case (.avx2, .forward), (.avx2, .weightGradient): .blas
        case (.plain, _): .blas
        }
    }

    /// The panel width for N columns: the CPU's widest unless padding N to a multiple of it would waste more than a
    /// quarter of the work, where the narrow panels waste less (V = 65 characters: 80 columns against 128). Narrow
    /// panels run at about half the wide ones' rate, so a few padded columns cost less: measured with `charlm-bench
    /// gemm-speed` on a Zen 4, (6400 x 912) x (912 x 304) ran at 82 GFLOP/s in panels of 16 and the GRU's
    /// H 304 trained at 19,300 tokens/s when every N that is no multiple of 64 took narrow panels.
    static func panelKernel(columns N: Int, preferred: PackedKernel) -> PackedKernel {
        guard preferred == .wide else { return preferred }
        let width = PackedKernel.wide.panelWidth
        let padded = (N + width - 1) / width * width
        return 4 * (padded - N) > N ? .narrow : .wide
    }

    /// C(M, N) (+)= op(A) op(B) on the packed kernel with panels of `kernel`'s width; see the top of the file.
    static func packedGemm(
        _ transA: Transpose, _ transB: Transpose, m M: Int, n N: Int, k K: Int,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, accumulate: Bool,
        c: UnsafeMutablePointer<Float>, ldc: Int, kernel: PackedKernel, scratch: ScratchBuffer, team: ThreadTeam
    ) {
        if M == 0 || N == 0 { return }
        if K == 0 {
            if !accumulate { for i in 0..<M { (c + i * ldc).update(repeating: 0, count: N) } }
            return
        }
        let aMatrix = transA == .none ? StridedMatrix(a, rowStep: lda, depthStep: 1)
                                      : StridedMatrix(a, rowStep: 1, depthStep: lda)
        let bPanels = PanelSource(b: b, ldb: ldb, transposed: transB == .transposed, columns: N,
                                  width: kernel.panelWidth)
        if kernel == .avx2 {
            blockedGemm(aMatrix, bPanels, m: M, k: K, accumulate: accumulate, c: c, ldc: ldc, kernel: kernel,
                        scratch: scratch, team: team)
            return
        }
        let width = kernel.panelWidth
        let panelCount = bPanels.count
        let depthBlock = min(K, Self.depthBlock)
        // (panel, depthBlock, width): one block of op(B)'s rows, every panel, each panel in its own slot (threads
        // on different blocks never overlap).
        scratch.withPointer(count: panelCount * depthBlock * width) { packed in
            /// Packs rows `depth` of op(B) for `panels`.
            func pack(_ depth: Range<Int>, panels: Range<Int>) {
                bPanels.pack(depth, panels: panels, into: packed, panelStride: depthBlock * width)
            }
            /// C(rows, columns of `panels`) (+)= op(A)(rows, depth) * the packed block.
            func multiply(_ depth: Range<Int>, panels: Range<Int>, rows: Range<Int>) {
                let part = aMatrix.fromDepth(depth.lowerBound)
                multiplyPanels(kernel, storage: packed, panelStride: depthBlock * width, depth: depth.count,
                               columns: N, panels: panels,
                               a: StridedMatrix(part.base + rows.lowerBound * part.rowStep, rowStep: part.rowStep,
                                                depthStep: part.depthStep),
                               rows: rows.count, into: c + rows.lowerBound * ldc, ldc: ldc,
                               accumulate: accumulate || depth.lowerBound > 0)
            }
            let blocks = depthBlocks(K, by: depthBlock)
            // Each thread its own panels only when they share evenly or are many: 9 panels on 2 threads (5 and 4)
            // ran (6400 x 518) x (518 x 518) at 93-98 GFLOP/s, against 174-189 with the rows split (`charlm-bench
            // gemm-speed`, Zen 4), and the vanilla RNN at H 518 trained at 19,400 tokens/s against about 26,500.
            if panelCount % team.size == 0 || panelCount >= 16 * team.size {
                // each thread its own panels, packed and multiplied block after block: no barrier
                team.runParts(work: M * N * K) { member in
                    let panels = member.share(of: panelCount)
                    if panels.isEmpty { return }
                    for depth in blocks {
                        pack(depth, panels: panels)
                        multiply(depth, panels: panels, rows: 0..<M)
                    }
                }
            } else {
                // too few panels to share evenly: the caller packs each block, the threads split C's rows
                for depth in blocks {
                    pack(depth, panels: 0..<panelCount)
                    team.runParts(work: M * N * depth.count) { member in
                        let rows = member.share(of: M)
                        if !rows.isEmpty { multiply(depth, panels: 0..<panelCount, rows: rows) }
                    }
                }
            }
        }
    }
}

// MARK: the blocked path (the avx2 kernel)
//
// Registers of 8 lanes make each multiply-add of the (6, 16) block half the work of the wide kernel's, so the kernel
// must be fed from the nearest caches, as in BLIS's and OpenBLAS's Haswell sgemm: op(B) is packed `blockedDepth` = 512
// rows at a time (a 16-column panel's block is 32 KB, in L1 or L2 while rows of A stream past it), and op(A)
// `blockedRows` = 168 rows at a time into groups of six (`PackedRows`: 336 KB, in L2, read as one contiguous stream,
// where reading A in place walks six rows 1-4 KB apart). Blocks of 512 rows rather than BLIS's 256 halve the passes
// over C (each loads and stores all of it): on the input gradient (6400 x 1024) x (1024 x 256), one thread, 256 / 512
// / 1024 rows ran at 76-82 / 81-93 / 87-98 GFLOP/s and the weight gradient at 72-84 / 70-84 / 74-79 (Zen 4 forced to
// 256 bits, `charlm-bench gemm-speed --threads 1 --vector-bits 256`). The threads pack each block of op(B) together, a
// share of its panels each, and then each multiplies its own share of C's rows by the whole block, packing its own
// blocks of A: two barriers per block of op(B).
//
// Before it, AVX2 CPUs ran the (6, 16) block on the wide kernel's path (A in place, op(B) in blocks of 1024 rows): on
// a Zen 3, 33.5 GFLOP/s on (6400 x 256) x (256 x 1024), where OpenBLAS's Haswell kernels reached 134 (issue 25).

extension Products {
    /// Rows of op(B) per packed block in the blocked path.
    static let blockedDepth = 512
    /// Rows of op(A) per packed block in the blocked path (a multiple of six).
    static let blockedRows = 168

    /// C(M, N) (+)= op(A)(M, K) op(B)(K, N) with both operands packed in cache-sized blocks; see above.
    static func blockedGemm(
        _ a: StridedMatrix, _ b: PanelSource, m M: Int, k K: Int, accumulate: Bool, c: UnsafeMutablePointer<Float>,
        ldc: Int, kernel: PackedKernel, scratch: ScratchBuffer, team: ThreadTeam
    ) {
        let (width, groupRows) = (kernel.panelWidth, PackedMatrix.blockRows)
        let depthBlock = min(K, blockedDepth)
        let panelStride = depthBlock * width
        let bFloats = b.count * panelStride
        let aFloats = PackedRows.count(rows: blockedRows, depth: depthBlock)
        let groups = (M + groupRows - 1) / groupRows
        // A product too small to share runs on the caller alone (as `runParts` would run it).
        let team = M * b.columns * K < ThreadTeam.minimumSharedWork ? ThreadTeam.solo : team
        // (panels, depthBlock, width) for op(B)'s block, shared; then one A block per thread.
        scratch.withPointer(count: bFloats + team.size * aFloats) { space in
            team.run { member in
                let packedA = space + bFloats + member.index * aFloats
                // Every thread packs its share of op(B)'s panels and multiplies its share of C's rows (in groups
                // of six) by all of them; barriers keep the block whole while it is read.
                let share = member.share(of: groups)
                let rows = min(M, share.lowerBound * groupRows)..<min(M, share.upperBound * groupRows)
                for depth in depthBlocks(K, by: depthBlock) {
                    if depth.lowerBound > 0 { member.barrier() }  // everyone done with the previous block
                    b.pack(depth, panels: member.share(of: b.count), into: space, panelStride: panelStride)
                    member.barrier()
                    for first in stride(from: rows.lowerBound, to: rows.upperBound, by: blockedRows) {
                        let block = first..<min(rows.upperBound, first + blockedRows)
                        let packed = PackedRows.pack(a, rows: block, depth: depth, into: packedA)
                        multiplyPanels(kernel, storage: space, panelStride: panelStride, depth: depth.count,
                                       columns: b.columns, panels: 0..<b.count, a: packed, rows: block.count,
                                       into: c + first * ldc, ldc: ldc,
                                       accumulate: accumulate || depth.lowerBound > 0)
                    }
                }
            }
        }
    }

    /// 0..<K cut into blocks of `depthBlock` (the last may be shorter).
    static func depthBlocks(_ K: Int, by depthBlock: Int) -> [Range<Int>] {
        stride(from: 0, to: K, by: depthBlock).map { $0..<min(K, $0 + depthBlock) }
    }
}

/// op(B) (K, N), to be packed into column panels of `width` (PackedMatrix's layout, K cut to a block of rows).
struct PanelSource {
    let b: UnsafePointer<Float>
    let ldb: Int
    /// Whether op(B) = B^T, B stored (N, K); else op(B) = B stored (K, N).
    let transposed: Bool
    /// N.
    let columns: Int
    let width: Int

    /// ceil(N / width) panels.
    var count: Int { (columns + width - 1) / width }

    /// Packs rows `depth` of op(B) for `panels`: panel p's (depth.count, width) rows at `p * panelStride`, zero past
    /// column N.
    func pack(_ depth: Range<Int>, panels: Range<Int>, into packed: UnsafeMutablePointer<Float>, panelStride: Int) {
        for p in panels {
            let panel = packed + p * panelStride
            let firstColumn = p * width
            let panelColumns = min(width, columns - firstColumn)
            if panelColumns < width { panel.update(repeating: 0, count: depth.count * width) }
            if !transposed {
                // op(B) = B (K, N): each row's columns are contiguous
                for (i, k) in depth.enumerated() {
                    (panel + i * width).update(from: b + k * ldb + firstColumn, count: panelColumns)
                }
            } else {
                // op(B) = B^T, B stored (N, K): column j of op(B) is row j of B
                for j in 0..<panelColumns {
                    let sourceRow = b + (firstColumn + j) * ldb
                    for (i, k) in depth.enumerated() { panel[i * width + j] = sourceRow[k] }
                }
            }
        }
    }
}

/// A float buffer that grows to the largest size asked of it and is reused: the packed products' scratch. One
/// owner at a time normally; a second caller while it is in use (tests sharing `ComputeContext.machine` in parallel)
/// gets a buffer of its own for that call.
final class ScratchBuffer: @unchecked Sendable {
    private var storage = FloatBuffer(count: 0)
    private let busy = Atomic<Bool>(false)

    /// Runs `body` with at least `count` floats (contents undefined).
    func withPointer<Result>(count: Int, _ body: (UnsafeMutablePointer<Float>) -> Result) -> Result {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            let ownBuffer = FloatBuffer(count: count)
            return withExtendedLifetime(ownBuffer) { body(ownBuffer.pointer) }
        }
        defer { busy.store(false, ordering: .releasing) }
        if storage.count < count { storage = FloatBuffer(count: count) }
        return body(storage.pointer)
    }
}
