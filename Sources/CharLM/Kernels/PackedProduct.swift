// Our own matrix product, C(B, N) (+)= A(B, K) * W(K, N), made for the two products inside every recurrent layer's
// time loop (Recurrence.swift; P = gateCount * H: 4H for the LSTM, 3H for the GRU, H for the RNN):
//   forward   product_t(B, P) (+)= h_{t-1}(B, H)     * W_hh^T(H, P)
//   backward  dh_{t-1}(B, H)  (+)= dproduct_t(B, P) * W_hh(P, H)
// Each runs T times per pass with the same W and a small B (64 by default). BLAS repacks W on every call and, at
// this size, reaches about 70% of what it does on large products; here W is packed once per pass, each thread of the
// team always takes the same panels (so its part of W stays in its core's cache from one step to the next), and one
// register-blocked kernel does the arithmetic. The same kernel also serves the large products when the compute
// context picks it (Products.swift, which packs W a block of rows at a time) and generation's stepper (Stepper.swift,
// on its interleaved gate panels); everything else goes to BLAS (BLAS.swift).
//
// Layout: W is cut into column panels of the kernel's width (64 or 16); panel p holds rows k = 0..<K of its columns,
// one after the other, (K, width) contiguous, zero-padded past column N. The kernel keeps a (6, width) block of C in
// registers while it runs down K, reading one row of the panel and one value of each of the six rows of A per k.
// A last block with fewer than six rows sends the missing rows' results to a scratch row; a panel past column N
// runs the same kernel on a copy of C.
//
// The block's width follows the CPU class's registers (`PackedKernel`, picked by `CPUClass`): with AVX-512's 32
// registers of 16 lanes, (6, 64) is 24 accumulators, 24 fused multiply-adds per 4 loads and 6 broadcasts. With AVX2's
// 16 registers of 8 lanes the same block would need 48 and spill to memory (measured on a Zen 3 machine: 28 GFLOP/s
// against 70-86 for (6, 16)), so there the block is (6, 16) in 8-lane halves, as in BLIS's and OpenBLAS's Haswell
// sgemm: 12 accumulators, 2 for the panel's row, 1 for the broadcast. Its rows are 8-lane vectors whatever the
// machine, so forced to 256 bits (`CHARLM_VECTOR_BITS`) an AVX-512 CPU runs the same 256-bit instructions. Every
// kernel adds the products of each element of C in the same order (k = 0, 1, ...), so all give the same results bit
// for bit.
//
// The kernel reads A either in place, with strides (`StridedMatrix`: the time loops, the large products on the wide
// kernel), or packed six rows at a time (`PackedRows`: the large products' blocked path, Products.swift).

import CPUFeatures

/// The register block of the packed product's kernel; `CPUClass.packedKernel` picks one for the CPU.
enum PackedKernel: CaseIterable {
    /// (6, 64) blocks of 16-lane vectors: for CPUs with 512-bit vectors (AVX-512).
    case wide
    /// (6, 16) blocks of 16-lane vectors: one AVX-512 register per row (narrow panels on AVX-512), four NEON ones.
    case narrow
    /// (6, 16) blocks of two 8-lane vectors per row: 256-bit registers (AVX2), on any x86 CPU.
    case avx2

    /// Columns per panel, the width of a block of C.
    var panelWidth: Int {
        switch self {
        case .wide: Row64.width
        case .narrow: Row16.width
        case .avx2: Row16Halves.width
        }
    }
}

/// W (K, N) packed in column panels for `multiply`.
final class PackedMatrix {
    /// Rows of A per kernel call.
    static let blockRows = 6

    let rows: Int, columns: Int
    let kernel: PackedKernel
    /// Columns per panel: the kernel's block width.
    var panelWidth: Int { kernel.panelWidth }
    /// ceil(N / panelWidth).
    let panelCount: Int
    /// (panelCount, K, panelWidth).
    let storage: FloatBuffer

    init(rows K: Int, columns N: Int, kernel: PackedKernel) {
        rows = K
        columns = N
        self.kernel = kernel
        panelCount = (N + kernel.panelWidth - 1) / kernel.panelWidth
        storage = FloatBuffer(count: panelCount * K * kernel.panelWidth)
    }

    /// Packs `panels` of W(K, N) = source, stored row-major (`transposed` false), or of W = source^T where source is
    /// stored (N, K) (`transposed` true). Columns past N stay zero.
    func pack(_ source: UnsafePointer<Float>, transposed: Bool, panels: Range<Int>) {
        let (K, N, width) = (rows, columns, panelWidth)
        for p in panels {
            let panel = storage.pointer + p * K * width
            let firstColumn = p * width
            let panelColumns = min(width, N - firstColumn)
            if transposed {
                // column j of W is row j of source: read each source row once, write it down the panel
                for j in 0..<panelColumns {
                    let sourceRow = source + (firstColumn + j) * K
                    for k in 0..<K { panel[k * width + j] = sourceRow[k] }
                }
            } else {
                for k in 0..<K { (panel + k * width).update(from: source + k * N + firstColumn, count: panelColumns) }
            }
        }
    }

    /// C(M, columns of `panels`) (+)= A(M, K) * W: adds to C when `accumulate`, else overwrites it.
    /// A and C are row-major with row strides `lda` and `ldc`. Touches only the columns of `panels`, so threads
    /// that take different panels can write to the same C.
    func multiply(
        _ a: UnsafePointer<Float>, lda: Int, rows M: Int, panels: Range<Int>, into c: UnsafeMutablePointer<Float>,
        ldc: Int, accumulate: Bool
    ) {
        multiplyPanels(kernel, storage: storage.pointer, panelStride: rows * panelWidth, depth: rows,
                       columns: columns, panels: panels,
                       a: StridedMatrix(a, rowStep: lda, depthStep: 1), rows: M, into: c, ldc: ldc,
                       accumulate: accumulate)
    }
}

/// Where the kernel reads A (M, K): six rows at a time, each row's element k at `depthStep` floats after its element
/// k - 1.
protocol KernelRows {
    /// Floats between a row's elements k and k + 1.
    var depthStep: Int { get }
    /// Rows r ..< r + 6 of A's M; rows past M may be any row of A (their results are dropped).
    func sixRows(from r: Int, of M: Int) -> SixRows
}

/// A (M, K) matrix read in place: element (i, k) at `base + i * rowStep + k * depthStep`. A row-major matrix with
/// row stride `ld` is (ld, 1); the transpose of one is (1, ld).
struct StridedMatrix: KernelRows {
    let base: UnsafePointer<Float>
    let rowStep: Int
    let depthStep: Int

    init(_ base: UnsafePointer<Float>, rowStep: Int, depthStep: Int) {
        self.base = base
        self.rowStep = rowStep
        self.depthStep = depthStep
    }

    /// The same matrix from depth `k` on.
    func fromDepth(_ k: Int) -> StridedMatrix {
        StridedMatrix(base + k * depthStep, rowStep: rowStep, depthStep: depthStep)
    }

    /// The same matrix from row `i` on.
    func fromRow(_ i: Int) -> StridedMatrix {
        StridedMatrix(base + i * rowStep, rowStep: rowStep, depthStep: depthStep)
    }

    /// Past the last row, the last row again.
    @inline(__always) func sixRows(from r: Int, of M: Int) -> SixRows {
        func row(_ i: Int) -> UnsafePointer<Float> { base + min(r + i, M - 1) * rowStep }
        return (row(0), row(1), row(2), row(3), row(4), row(5))
    }
}

/// A (M, K) packed by `pack` in groups of six rows: group g is (K, 6), element (6g + j, k) at
/// `base + (g * K + k) * 6 + j`, rows past M zero. The kernel then reads one contiguous stream of A.
struct PackedRows: KernelRows {
    /// (ceil(M / 6), K, 6).
    let base: UnsafePointer<Float>
    /// K: the depth of each group.
    let depth: Int
    var depthStep: Int { PackedMatrix.blockRows }

    /// Floats that `pack` writes for M rows of depth K.
    static func count(rows M: Int, depth K: Int) -> Int {
        (M + PackedMatrix.blockRows - 1) / PackedMatrix.blockRows * PackedMatrix.blockRows * K
    }

    /// Packs rows `rows` and depths `depth` of `source` into `destination` (`count(rows:depth:)` floats) and returns
    /// them as a `PackedRows` of M = rows.count.
    static func pack(_ source: StridedMatrix, rows: Range<Int>, depth: Range<Int>,
                     into destination: UnsafeMutablePointer<Float>) -> PackedRows {
        let (K, width) = (depth.count, PackedMatrix.blockRows)
        let start = source.fromRow(rows.lowerBound).fromDepth(depth.lowerBound)
        let M = rows.count
        for g in 0..<(M + width - 1) / width {
            let group = destination + g * K * width
            let groupRows = min(width, M - g * width)
            if groupRows < width || start.depthStep != 1 {
                // A transposed (its six values of each depth are contiguous), or the last group of rows: a depth
                // at a time, zero past row M
                for k in 0..<K {
                    let from = start.base + g * width * start.rowStep + k * start.depthStep
                    let to = group + k * width
                    for j in 0..<width { to[j] = j < groupRows ? from[j * start.rowStep] : 0 }
                }
            } else {
                // A as stored: six rows, each's K values contiguous, read side by side
                let r = start.base + g * width * start.rowStep
                let (r0, r1, r2) = (r, r + start.rowStep, r + 2 * start.rowStep)
                let (r3, r4, r5) = (r + 3 * start.rowStep, r + 4 * start.rowStep, r + 5 * start.rowStep)
                for k in 0..<K {
                    let to = group + k * width
                    to[0] = r0[k]; to[1] = r1[k]; to[2] = r2[k]; to[3] = r3[k]; to[4] = r4[k]; to[5] = r5[k]
                }
            }
        }
        return PackedRows(base: destination, depth: K)
    }

    @inline(__always) func sixRows(from r: Int, of M: Int) -> SixRows {
        let group = base + r / PackedMatrix.blockRows * depth * PackedMatrix.blockRows
        return (group, group + 1, group + 2, group + 3, group + 4, group + 5)
    }
}

/// C(M, columns of `panels`) (+)= A(M, K) * W(K, N), W packed in `storage` with `kernel`'s width: panel p's (K, width)
/// rows start at `p * panelStride`. Adds to C when `accumulate`, else overwrites it; touches only the columns of
/// `panels`. A read in place.
func multiplyPanels(
    _ kernel: PackedKernel, storage: UnsafePointer<Float>, panelStride: Int, depth K: Int, columns N: Int,
    panels: Range<Int>, a: StridedMatrix, rows M: Int, into c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool
) {
    multiplyPanels(kernel, storage: storage, panelStride: panelStride, depth: K, columns: N, panels: panels,
                   anyRows: a, rows: M, into: c, ldc: ldc, accumulate: accumulate)
}

/// The same with A packed: one function per kind of A, so that callers in other files (compiled apart in debug
/// builds) call code specialised for theirs.
func multiplyPanels(
    _ kernel: PackedKernel, storage: UnsafePointer<Float>, panelStride: Int, depth K: Int, columns N: Int,
    panels: Range<Int>, a: PackedRows, rows M: Int, into c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool
) {
    multiplyPanels(kernel, storage: storage, panelStride: panelStride, depth: K, columns: N, panels: panels,
                   anyRows: a, rows: M, into: c, ldc: ldc, accumulate: accumulate)
}

@inline(__always)
private func multiplyPanels(
    _ kernel: PackedKernel, storage: UnsafePointer<Float>, panelStride: Int, depth K: Int, columns N: Int,
    panels: Range<Int>, anyRows a: some KernelRows, rows M: Int, into c: UnsafeMutablePointer<Float>, ldc: Int,
    accumulate: Bool
) {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: PackedMatrix.blockRows * kernel.panelWidth) { tile in
        // Each case a call of its own, so that each is specialised for its row type.
        @inline(__always) func run<Row: PanelRow>(_ row: Row.Type) {
            multiplyPanels(Row.self, storage: storage, panelStride: panelStride, depth: K, columns: N,
                           panels: panels, a: a, rows: M, into: c, ldc: ldc, accumulate: accumulate,
                           tile: tile.baseAddress!)
        }
        switch kernel {
        case .wide: run(Row64.self)
        case .narrow: run(Row16.self)
        case .avx2: run(Row16Halves.self)
        }
    }
}

private func multiplyPanels<Row: PanelRow, Rows: KernelRows>(
    _ row: Row.Type, storage: UnsafePointer<Float>, panelStride: Int, depth K: Int, columns N: Int,
    panels: Range<Int>, a: Rows, rows M: Int, into c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
    tile: UnsafeMutablePointer<Float>
) {
    let (width, blockRows, step) = (Row.width, PackedMatrix.blockRows, a.depthStep)
    tile.update(repeating: 0, count: blockRows * width)  // initialised: the kernel may read its first row
    for p in panels {
        let panel = storage + p * panelStride
        let firstColumn = p * width
        let panelColumns = min(width, N - firstColumn)
        if M == 1 {
            // One row (generation): the six-row kernel would compute it six times.
            let cRow = panelColumns == width ? c + firstColumn : tile
            if panelColumns < width {
                tile.update(repeating: 0, count: width)
                if accumulate { tile.update(from: c + firstColumn, count: panelColumns) }
            }
            multiplyRow(Row.self, a.sixRows(from: 0, of: 1).0, step: step, panel, depth: K, c: cRow,
                        accumulate: accumulate)
            if panelColumns < width { (c + firstColumn).update(from: tile, count: panelColumns) }
            continue
        }
        var r = 0
        while r < M {
            // A's six rows; past the last row, any row (those results are dropped).
            let aRows = a.sixRows(from: r, of: M)
            if panelColumns == width {
                // C's six rows; past the last row, the tile's first row, a scratch row whose values are dropped.
                func cRow(_ i: Int) -> UnsafeMutablePointer<Float> {
                    r + i < M ? c + (r + i) * ldc + firstColumn : tile
                }
                let cRows = (cRow(0), cRow(1), cRow(2), cRow(3), cRow(4), cRow(5))
                // The next block's rows of C, towards the cache while this one computes: the kernel reads its block
                // of C before its first multiply-add, and a miss there stalls it (C is often far larger than L2).
                for i in min(M, r + blockRows)..<min(M, r + 2 * blockRows) {
                    let next = c + i * ldc + firstColumn
                    for line in stride(from: 0, to: width, by: 16) { charlm_prefetch_for_write(next + line) }
                }
                if M - r <= 4 {
                    // The last rows, at most four (a batch of 64 or 16 rows ends so): the four-row kernel does a
                    // third fewer multiply-adds than the six-row one (the rows past M still go to the tile).
                    multiplyFourRows(Row.self, (aRows.0, aRows.1, aRows.2, aRows.3), step: step, panel, depth: K,
                                     cRows: (cRows.0, cRows.1, cRows.2, cRows.3), accumulate: accumulate)
                } else {
                    multiplyBlock(Row.self, aRows, step: step, panel, depth: K, cRows: cRows, accumulate: accumulate)
                }
            } else {
                // A panel past column N: through the (6, width) tile, zero past the panel's columns.
                let validRows = min(blockRows, M - r)
                tile.update(repeating: 0, count: blockRows * width)
                if accumulate {
                    for i in 0..<validRows {
                        (tile + i * width).update(from: c + (r + i) * ldc + firstColumn, count: panelColumns)
                    }
                }
                multiplyBlock(Row.self, aRows, step: step, panel, depth: K,
                              cRows: (tile, tile + width, tile + 2 * width, tile + 3 * width, tile + 4 * width,
                                      tile + 5 * width),
                              accumulate: accumulate)
                for i in 0..<validRows {
                    (c + (r + i) * ldc + firstColumn).update(from: tile + i * width, count: panelColumns)
                }
            }
            r += blockRows
        }
    }
}

/// One row of a block of C, held in registers while the kernel runs down K.
private protocol PanelRow {
    /// Columns: the panel width.
    static var width: Int { get }
    init(zero: ())
    /// Loads `width` floats.
    init(_ p: UnsafePointer<Float>)
    /// Stores `width` floats.
    func store(_ p: UnsafeMutablePointer<Float>)
    /// self += x * w
    mutating func add(_ x: Float, times w: Self)
}

/// 64 lanes as four 16-lane vectors: one AVX-512 register each (the wide kernel).
private struct Row64: PanelRow {
    static var width: Int { 64 }
    var v0, v1, v2, v3: Lanes

    @inline(__always) init(zero: ()) { v0 = Lanes(); v1 = Lanes(); v2 = Lanes(); v3 = Lanes() }

    @inline(__always) init(_ p: UnsafePointer<Float>) {
        v0 = load(p); v1 = load(p + 16); v2 = load(p + 32); v3 = load(p + 48)
    }

    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>) {
        CharLM.store(v0, p); CharLM.store(v1, p + 16); CharLM.store(v2, p + 32); CharLM.store(v3, p + 48)
    }

    @inline(__always) mutating func add(_ x: Float, times w: Row64) {
        let lanes = Lanes(repeating: x)
        v0.addProduct(lanes, w.v0); v1.addProduct(lanes, w.v1); v2.addProduct(lanes, w.v2); v3.addProduct(lanes, w.v3)
    }
}

/// 16 lanes as one 16-lane vector: one AVX-512 register, or four NEON ones (the narrow kernel).
private struct Row16: PanelRow {
    static var width: Int { 16 }
    var v: Lanes

    @inline(__always) init(zero: ()) { v = Lanes() }
    @inline(__always) init(_ p: UnsafePointer<Float>) { v = load(p) }
    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>) { CharLM.store(v, p) }
    @inline(__always) mutating func add(_ x: Float, times w: Row16) { v.addProduct(Lanes(repeating: x), w.v) }
}

/// 16 lanes as two 8-lane vectors: two 256-bit registers on any x86 CPU (the avx2 kernel). A (6, 16) block of these
/// is 12 accumulators; with the panel row's two and the broadcast, 15 of AVX2's 16 registers.
private struct Row16Halves: PanelRow {
    typealias Half = SIMD8<Float>
    static var width: Int { 16 }
    var low, high: Half

    @inline(__always) init(zero: ()) { low = Half(); high = Half() }

    @inline(__always) init(_ p: UnsafePointer<Float>) {
        low = UnsafeRawPointer(p).loadUnaligned(as: Half.self)
        high = UnsafeRawPointer(p + 8).loadUnaligned(as: Half.self)
    }

    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: low, as: Half.self)
        UnsafeMutableRawPointer(p + 8).storeBytes(of: high, as: Half.self)
    }

    @inline(__always) mutating func add(_ x: Float, times w: Row16Halves) {
        let lanes = Half(repeating: x)
        low.addProduct(lanes, w.low); high.addProduct(lanes, w.high)
    }
}

/// Six row pointers into A.
typealias SixRows = (
    UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
    UnsafePointer<Float>
)
/// Six row pointers into C.
private typealias SixMutableRows = (
    UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
    UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>
)

/// c(width) (+)= a(K) * panel(K, width) for a single row of A, element k at a + k * step: the six-row kernel's
/// arithmetic for one row, in the same order (k = 0, 1, ...), so a row's results are the same bits either way.
@inline(__always)
private func multiplyRow<Row: PanelRow>(
    _ row: Row.Type, _ a: UnsafePointer<Float>, step: Int, _ panel: UnsafePointer<Float>, depth K: Int,
    c: UnsafeMutablePointer<Float>, accumulate: Bool
) {
    var sum = accumulate ? Row(UnsafePointer(c)) : Row(zero: ())
    var (x, w) = (a, panel)
    for _ in 0..<K {
        sum.add(x.pointee, times: Row(w))
        x += step
        w += Row.width
    }
    sum.store(c)
}

/// C(6, width) (+)= A(6, K) * panel(K, width): the kernel. Element k of A's row j is at aRows.j + k * step.
@inline(__always)
private func multiplyBlock<Row: PanelRow>(
    _ row: Row.Type, _ aRows: SixRows, step: Int, _ panel: UnsafePointer<Float>, depth K: Int,
    cRows: SixMutableRows, accumulate: Bool
) {
    var (a0, a1, a2, a3, a4, a5) = aRows
    let (c0, c1, c2, c3, c4, c5) = cRows
    var s0 = Row(zero: ()), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0
    if accumulate {
        s0 = Row(c0); s1 = Row(c1); s2 = Row(c2); s3 = Row(c3); s4 = Row(c4); s5 = Row(c5)
    }
    var w = panel
    for _ in 0..<K {
        let row = Row(w)
        s0.add(a0.pointee, times: row); s1.add(a1.pointee, times: row); s2.add(a2.pointee, times: row)
        s3.add(a3.pointee, times: row); s4.add(a4.pointee, times: row); s5.add(a5.pointee, times: row)
        w += Row.width
        a0 += step; a1 += step; a2 += step; a3 += step; a4 += step; a5 += step
    }
    s0.store(c0); s1.store(c1); s2.store(c2); s3.store(c3); s4.store(c4); s5.store(c5)
}

/// C(4, width) (+)= A(4, K) * panel(K, width): `multiplyBlock` for a last block of at most four rows (rows past M
/// point at any row, their results dropped), with the same sums in the same order.
@inline(__always)
private func multiplyFourRows<Row: PanelRow>(
    _ row: Row.Type, _ aRows: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>),
    step: Int, _ panel: UnsafePointer<Float>, depth K: Int,
    cRows: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
            UnsafeMutablePointer<Float>),
    accumulate: Bool
) {
    var (a0, a1, a2, a3) = aRows
    let (c0, c1, c2, c3) = cRows
    var s0 = Row(zero: ()), s1 = s0, s2 = s0, s3 = s0
    if accumulate { s0 = Row(c0); s1 = Row(c1); s2 = Row(c2); s3 = Row(c3) }
    var w = panel
    for _ in 0..<K {
        let row = Row(w)
        s0.add(a0.pointee, times: row); s1.add(a1.pointee, times: row)
        s2.add(a2.pointee, times: row); s3.add(a3.pointee, times: row)
        w += Row.width
        a0 += step; a1 += step; a2 += step; a3 += step
    }
    s0.store(c0); s1.store(c1); s2.store(c2); s3.store(c3)
}

// MARK: bfloat16 panels, for one-row products (generation)
//
// A bfloat16 is the top 16 bits of a float32 (8 exponent bits, 7 stored mantissa bits): half the bytes, and a
// relative rounding error of at most 2^-9. Generation at batch 1 reads every weight once per character, so its speed
// is the rate at which the weights stream from the caches; halving their bytes lets a core's share of an H 256
// model's weights stay in its own cache, and halves the traffic of larger ones. Arithmetic stays float32: a
// bfloat16 becomes a float32 by a 16-bit shift.
//
// Layout: 64-column panels as PackedMatrix's, with rows k = 2p and 2p+1 of a panel sharing one 32-bit lane per
// column: low half row 2p, high half row 2p+1 (row K, past an odd K, is zero). The kernel loads 16 lanes, shifts
// them left for row 2p and masks them for row 2p+1: two float32 vectors for the cost of one load and two integer
// operations.

/// W (K, N) rounded to bfloat16 and packed for `multiplyRow`.
final class BFloat16Panels {
    /// Columns per panel.
    static let width = 64
    let rows: Int, columns: Int
    /// ceil(N / 64).
    let panelCount: Int
    /// ceil(K / 2): lanes per column of a panel.
    let pairCount: Int
    /// (panelCount, pairCount, 64) lanes.
    let storage: UnsafeMutablePointer<UInt32>

    init(rows K: Int, columns N: Int) {
        rows = K
        columns = N
        panelCount = (N + Self.width - 1) / Self.width
        pairCount = (K + 1) / 2
        let count = max(1, panelCount * pairCount * Self.width)
        // on a cache line, as FloatBuffer's (a panel's row of 64 lanes is 4 lines)
        storage = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<UInt32>.stride,
                                                   alignment: FloatBuffer.alignment)
            .bindMemory(to: UInt32.self, capacity: count)
        storage.initialize(repeating: 0, count: count)
    }

    deinit { UnsafeMutableRawPointer(storage).deallocate() }

    /// Bytes held.
    var byteCount: Int { 4 * panelCount * pairCount * Self.width }

    /// `value` rounded to the nearest bfloat16 (ties to even), as its 16 bits. NaN stays NaN.
    static func bfloat16Bits(_ value: Float) -> UInt32 {
        let bits = value.bitPattern
        if value.isNaN { return (bits >> 16) | 0x40 }
        return (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16
    }

    /// The float32 a bfloat16 stands for.
    static func float(bfloat16Bits bits: UInt32) -> Float { Float(bitPattern: bits << 16) }

    /// Stores W[k][n] = `value`, rounded to bfloat16.
    func set(row k: Int, column n: Int, _ value: Float) {
        let lane = storage + ((n / Self.width) * pairCount + k / 2) * Self.width + n % Self.width
        let half = Self.bfloat16Bits(value)
        lane.pointee = k % 2 == 0 ? (lane.pointee & 0xFFFF_0000) | half : (lane.pointee & 0xFFFF) | (half << 16)
    }

    /// c(columns of `panels`) (+)= a(K) * W, W's bfloat16 values widened to float32, each column summed in the order
    /// k = 0, 1, ... Touches only the columns of `panels` (a panel past column N goes through a 64-value tile).
    func multiplyRow(_ a: UnsafePointer<Float>, panels: Range<Int>, into c: UnsafeMutablePointer<Float>,
                     accumulate: Bool) {
        let (K, width) = (rows, Self.width)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: width) { tileBuffer in
            let tile = tileBuffer.baseAddress!
            for p in panels {
                let firstColumn = p * width
                let panelColumns = min(width, columns - firstColumn)
                let out = panelColumns == width ? c + firstColumn : tile
                if panelColumns < width {
                    tile.update(repeating: 0, count: width)
                    if accumulate { tile.update(from: c + firstColumn, count: panelColumns) }
                }
                var s0 = Lanes(), s1 = Lanes(), s2 = Lanes(), s3 = Lanes()
                if accumulate || panelColumns < width {
                    s0 = load(out); s1 = load(out + 16); s2 = load(out + 32); s3 = load(out + 48)
                }
                var lanes = UnsafeRawPointer(storage + p * pairCount * width)
                let high = SIMD16<UInt32>(repeating: 0xFFFF_0000)
                @inline(__always) func widen(_ v: SIMD16<UInt32>) -> (even: Lanes, odd: Lanes) {
                    (unsafeBitCast(v &<< 16, to: Lanes.self), unsafeBitCast(v & high, to: Lanes.self))
                }
                for pair in 0..<pairCount {
                    let k = 2 * pair
                    let x0 = Lanes(repeating: a[k]), x1 = Lanes(repeating: k + 1 < K ? a[k + 1] : 0)
                    let w0 = widen(lanes.loadUnaligned(as: SIMD16<UInt32>.self))
                    let w1 = widen(lanes.loadUnaligned(fromByteOffset: 64, as: SIMD16<UInt32>.self))
                    let w2 = widen(lanes.loadUnaligned(fromByteOffset: 128, as: SIMD16<UInt32>.self))
                    let w3 = widen(lanes.loadUnaligned(fromByteOffset: 192, as: SIMD16<UInt32>.self))
                    s0.addProduct(x0, w0.even); s1.addProduct(x0, w1.even)
                    s2.addProduct(x0, w2.even); s3.addProduct(x0, w3.even)
                    s0.addProduct(x1, w0.odd); s1.addProduct(x1, w1.odd)
                    s2.addProduct(x1, w2.odd); s3.addProduct(x1, w3.odd)
                    lanes += 4 * width
                }
                store(s0, out); store(s1, out + 16); store(s2, out + 32); store(s3, out + 48)
                if panelColumns < width { (c + firstColumn).update(from: tile, count: panelColumns) }
            }
        }
    }
}
