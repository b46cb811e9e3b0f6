// The five small products inside causal attention, for one sequence and one head, computed only where the causal
// mask lets anything through: query t sees keys s <= t, so about half of each (T, T) product is zeros that BLAS
// would multiply anyway. Three shapes cover the five:
//
//   scores           out[t, s] = c sum_d a[t, d] b[s, d]       s <= t    Q K^T / sqrt(HS), and dY V^T
//   pastSum          out[t, :] = c sum_{s <= t} w[t, s] x[s, :]          P V, and dS K / sqrt(HS)
//   futureSum        out[s, :] = c sum_{t >= s} w[t, s] x[t, :]          P^T dY, and dS^T Q / sqrt(HS)
//
// with c a scale. w is a (T, T) weights matrix whose entries above the diagonal are zero (softmax weights, dropped
// out or not, and their gradients, as CausalAttention leaves them): pastSum and futureSum run over whole blocks of
// four rows and let those zeros add nothing. a, b, x and out are (T, HS) slices of larger rows (`stride` floats
// apart), as the heads sit in qkv (T, B, 3E) and y (T, B, E).
//
// On 16 lanes (VectorMath.swift), eight sums in registers: `scores` runs along the keys, four rows by 32 keys at a
// time, from keys transposed into (HS, T') (`transposeKeys`, T' the length rounded up to 16, zero past T); the sums
// run along HS, eight rows by 16 columns at a time. Each sum is
// taken in order of d, or of s or t, in float32 with fused multiply-adds: a different order from BLAS's, within
// float32 rounding of the naive product (CausalProductTests bounds it).
//
// Measured on 2 cores of a Zen 4 (`charlm-bench train-profile`, docs/benchmarks.md): the attention of nanoGPT's CPU
// recipe and of 6/6/192 at T 128 took about 14% and 16% of a training step on BLAS, computing every (T, T) product
// whole, 6 BLAS calls per sequence and head in the forward and 12 in the backward.

/// See the top of the file. T is `length`, HS `headSize`; every pointer is the first row of its (T, .) matrix.
struct CausalProducts {
    let length: Int, headSize: Int

    /// T rounded up to a multiple of 16: the row length of transposed keys.
    var paddedLength: Int { (length + 15) / 16 * 16 }

    /// Floats of scratch `transposeKeys` needs: (HS, T').
    var transposedCount: Int { headSize * paddedLength }

    /// Floats of one (T, HS) slice gathered into contiguous rows (`gather`).
    var sliceCount: Int { length * headSize }

    /// slice(T, HS) = x(T, HS) with rows `stride` apart, in contiguous rows. The sums walk every row of x once per
    /// block of rows; rows of qkv lie B * 3E floats apart, each in a page of its own at 6/6/192 (B 12): read in
    /// place, the two sums took 5.1% of a training step's samples there (`perf record`), gathered 3.6%.
    func gather(_ x: UnsafePointer<Float>, stride: Int, into slice: UnsafeMutablePointer<Float>) {
        for t in 0..<length { (slice + t * headSize).update(from: x + t * stride, count: headSize) }
    }

    /// keysT(HS, T') = b(T, HS) transposed, zero past column T.
    func transposeKeys(_ b: UnsafePointer<Float>, stride: Int, into keysT: UnsafeMutablePointer<Float>) {
        let (T, HS, padded) = (length, headSize, paddedLength)
        for d in 0..<HS {
            let row = keysT + d * padded
            for s in 0..<T { row[s] = b[s * stride + d] }
            (row + T).update(repeating: 0, count: padded - T)
        }
    }

    /// out(T, T)[t, s] = scale * a[t, :] . b[s, :], b given as `keysT` (`transposeKeys`), for the keys of every
    /// 16-key group that starts at or before t. Entries past the diagonal within that last group are written too
    /// (the callers' softmax ignores and then zeroes them); entries past it are left as they were.
    func scores(_ a: UnsafePointer<Float>, stride: Int, keysT: UnsafePointer<Float>, scale: Float,
                into out: UnsafeMutablePointer<Float>) {
        let (T, HS, padded) = (length, headSize, paddedLength)
        for first in Swift.stride(from: 0, to: T, by: 4) {
            let rows = min(4, T - first)
            // a block's missing rows repeat its last (computed, not stored)
            let a0 = a + first * stride, a1 = a + (first + min(1, rows - 1)) * stride
            let a2 = a + (first + min(2, rows - 1)) * stride, a3 = a + (first + rows - 1) * stride
            /// Stores one block row's 16 scores from key s.
            @inline(always) func put(_ sums: Lanes, row: Int, key s: Int) {
                if row < rows { store(sums * scale, out + (first + row) * T + s, lanes: min(16, T - s)) }
            }
            // keys in pairs of 16-key groups (eight sums in registers), then a last single group
            let keyEnd = first + rows
            var s = 0
            while s + 16 < keyEnd {
                var (c0, c1, c2, c3) = (Lanes(), Lanes(), Lanes(), Lanes())
                var (e0, e1, e2, e3) = (Lanes(), Lanes(), Lanes(), Lanes())
                for d in 0..<HS {
                    let key = keysT + d * padded + s
                    let (near, far) = (load(key), load(key + 16))
                    let (x0, x1, x2, x3) = (Lanes(repeating: a0[d]), Lanes(repeating: a1[d]), Lanes(repeating: a2[d]),
                                            Lanes(repeating: a3[d]))
                    c0.addProduct(x0, near); e0.addProduct(x0, far)
                    c1.addProduct(x1, near); e1.addProduct(x1, far)
                    c2.addProduct(x2, near); e2.addProduct(x2, far)
                    c3.addProduct(x3, near); e3.addProduct(x3, far)
                }
                put(c0, row: 0, key: s); put(c1, row: 1, key: s); put(c2, row: 2, key: s); put(c3, row: 3, key: s)
                put(e0, row: 0, key: s + 16); put(e1, row: 1, key: s + 16)
                put(e2, row: 2, key: s + 16); put(e3, row: 3, key: s + 16)
                s += 32
            }
            if s < keyEnd {
                var (c0, c1, c2, c3) = (Lanes(), Lanes(), Lanes(), Lanes())
                for d in 0..<HS {
                    let key = load(keysT + d * padded + s)
                    c0.addProduct(Lanes(repeating: a0[d]), key)
                    c1.addProduct(Lanes(repeating: a1[d]), key)
                    c2.addProduct(Lanes(repeating: a2[d]), key)
                    c3.addProduct(Lanes(repeating: a3[d]), key)
                }
                put(c0, row: 0, key: s); put(c1, row: 1, key: s); put(c2, row: 2, key: s); put(c3, row: 3, key: s)
            }
        }
    }

    /// out[t, :] = scale * sum_{s <= t} w[t, s] x[s, :], w (T, T) zero above the diagonal; out overwritten.
    func pastSum(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, stride: Int, scale: Float,
                 into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let T = length
        for first in Swift.stride(from: 0, to: T, by: 8) {
            let rows = min(8, T - first)
            // the block's rows of w; missing ones repeat its last (computed, not stored)
            @inline(always) func row(_ i: Int) -> UnsafePointer<Float> { w + (first + min(i, rows - 1)) * T }
            let (w0, w1, w2, w3, w4, w5, w6, w7) = (row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7))
            // row first + i sees s <= first + i: the block's last row sees the most, the others' extra weights are 0
            let sources = first + rows
            @inline(always) func columns(_ d: Int, _ lanes: Int) {
                var (c0, c1, c2, c3) = (Lanes(), Lanes(), Lanes(), Lanes())
                var (c4, c5, c6, c7) = (Lanes(), Lanes(), Lanes(), Lanes())
                for s in 0..<sources {
                    let value = load(x + s * stride + d, lanes: lanes)
                    c0.addProduct(Lanes(repeating: w0[s]), value)
                    c1.addProduct(Lanes(repeating: w1[s]), value)
                    c2.addProduct(Lanes(repeating: w2[s]), value)
                    c3.addProduct(Lanes(repeating: w3[s]), value)
                    c4.addProduct(Lanes(repeating: w4[s]), value)
                    c5.addProduct(Lanes(repeating: w5[s]), value)
                    c6.addProduct(Lanes(repeating: w6[s]), value)
                    c7.addProduct(Lanes(repeating: w7[s]), value)
                }
                storeRows((c0, c1, c2, c3, c4, c5, c6, c7), rows: rows, scale: scale, lanes: lanes,
                          into: out + first * outStride + d, stride: outStride)
            }
            forEachGroup(headSize, columns)
        }
    }

    /// out[s, :] = scale * sum_{t >= s} w[t, s] x[t, :], w (T, T) zero above the diagonal; out overwritten.
    func futureSum(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, stride: Int, scale: Float,
                   into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let T = length
        for first in Swift.stride(from: 0, to: T, by: 8) {
            let rows = min(8, T - first)
            // columns first ..< first + 8 of w; a block's missing ones repeat its last (computed, not stored)
            @inline(always) func column(_ i: Int) -> Int { first + min(i, rows - 1) }
            let (k0, k1, k2, k3) = (column(0), column(1), column(2), column(3))
            let (k4, k5, k6, k7) = (column(4), column(5), column(6), column(7))
            @inline(always) func columns(_ d: Int, _ lanes: Int) {
                var (c0, c1, c2, c3) = (Lanes(), Lanes(), Lanes(), Lanes())
                var (c4, c5, c6, c7) = (Lanes(), Lanes(), Lanes(), Lanes())
                // t from the block's first row: w[t, s] is 0 for the block's later s while t < s
                for t in first..<T {
                    let value = load(x + t * stride + d, lanes: lanes)
                    let weights = w + t * T
                    c0.addProduct(Lanes(repeating: weights[k0]), value)
                    c1.addProduct(Lanes(repeating: weights[k1]), value)
                    c2.addProduct(Lanes(repeating: weights[k2]), value)
                    c3.addProduct(Lanes(repeating: weights[k3]), value)
                    c4.addProduct(Lanes(repeating: weights[k4]), value)
                    c5.addProduct(Lanes(repeating: weights[k5]), value)
                    c6.addProduct(Lanes(repeating: weights[k6]), value)
                    c7.addProduct(Lanes(repeating: weights[k7]), value)
                }
                storeRows((c0, c1, c2, c3, c4, c5, c6, c7), rows: rows, scale: scale, lanes: lanes,
                          into: out + first * outStride + d, stride: outStride)
            }
            forEachGroup(headSize, columns)
        }
    }
}

/// Stores the first `rows` of eight rows of sums, scaled, `lanes` wide, rows `stride` floats apart.
@inline(always) private func storeRows(_ sums: (Lanes, Lanes, Lanes, Lanes, Lanes, Lanes, Lanes, Lanes), rows: Int,
                                       scale: Float, lanes: Int, into out: UnsafeMutablePointer<Float>, stride: Int) {
    store(sums.0 * scale, out, lanes: lanes)
    if rows > 1 { store(sums.1 * scale, out + stride, lanes: lanes) }
    if rows > 2 { store(sums.2 * scale, out + 2 * stride, lanes: lanes) }
    if rows > 3 { store(sums.3 * scale, out + 3 * stride, lanes: lanes) }
    if rows > 4 { store(sums.4 * scale, out + 4 * stride, lanes: lanes) }
    if rows > 5 { store(sums.5 * scale, out + 5 * stride, lanes: lanes) }
    if rows > 6 { store(sums.6 * scale, out + 6 * stride, lanes: lanes) }
    if rows > 7 { store(sums.7 * scale, out + 7 * stride, lanes: lanes) }
}
