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
    /// charlm's packed kernel (PackedProduct.swift): the same speed whatever kernel the BLAS picked.
    case packed
    /// The BLAS's own gemm.
    case blas

    /// The choice for this machine: the packed kernel wherever charlm has one for the CPU's vectors (every CPU it
    /// builds on with OpenBLAS); Accelerate on macOS, whose gemm runs on Apple's matrix units.
    public static var preferred: ProductKernel {
        #if canImport(Accelerate)
        return .blas
        #else
        return .packed
        #endif
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
        if context.productKernel == .blas || m < PackedMatrix.blockRows || m * n * k < packedMinimumWork {
            BLAS.gemm(transA, transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc,
                      context: context)
            return
        }
        packedGemm(transA, transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, accumulate: beta == 1,
                   c: c, ldc: ldc, kernel: panelKernel(columns: n, preferred: context.packedKernel),
                   scratch: context.productScratch, team: context.productTeam)
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
        let width = kernel.panelWidth
        let panelCount = (N + width - 1) / width
        let depthBlock = min(K, Self.depthBlock)
        let aMatrix = transA == .none ? StridedMatrix(a, rowStep: lda, depthStep: 1)
                                      : StridedMatrix(a, rowStep: 1, depthStep: lda)
        // (panel, depthBlock, width): one block of op(B)'s rows, every panel, each panel in its own slot (threads
        // on different blocks never overlap).
        scratch.withPointer(count: panelCount * depthBlock * width) { packed in
            /// Packs rows `depth` of op(B) for `panels`.
            func pack(_ depth: Range<Int>, panels: Range<Int>) {
                for p in panels {
                    let panel = packed + p * depthBlock * width
                    let firstColumn = p * width
                    let panelColumns = min(width, N - firstColumn)
                    if panelColumns < width { panel.update(repeating: 0, count: depth.count * width) }
                    if transB == .none {
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
            let blocks = stride(from: 0, to: K, by: depthBlock).map { $0..<min(K, $0 + depthBlock) }
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
