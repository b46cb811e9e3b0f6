// The causal attention's own products (CausalProducts.swift) against naive double-precision loops: every length around
// their blocks of 4 and 8 rows and 16 and 32 keys, head sizes around 16 lanes, strided rows, a scale. Each result must
// be within the float32 error bound of a dot product (see `withinFloat32Bound`), and whatever the products do not
// cover must be left as it was.

import Testing
@testable import CharLM

private func randomFloats(_ count: Int, seed: UInt64) -> [Float] {
    var generator = SeededGenerator(seed: seed)
    return (0..<count).map { _ in generator.nextFloat(in: -1, 1) }
}

/// |fast - exact| <= (n + 2) 2^-23 sum |terms|: n float32 multiply-adds and the scale's product, each rounding once.
private func withinFloat32Bound(_ fast: Float, _ exact: Double, terms: Int, magnitude: Double) -> Bool {
    abs(Double(fast) - exact) <= Double(terms + 2) * 0x1p-23 * magnitude + 1e-30
}

/// (T, T) weights, zero above the diagonal, as the softmax and its gradient leave them.
private func lowerTriangular(_ T: Int, seed: UInt64) -> [Float] {
    var w = randomFloats(T * T, seed: seed)
    for t in 0..<T { for s in (t + 1)..<max(t + 1, T) { w[t * T + s] = 0 } }
    return w
}

private let lengths = [1, 3, 4, 5, 8, 9, 16, 17, 31, 33, 64]
private let headSizes = [1, 5, 16, 20, 32, 33]

@Test(arguments: lengths, headSizes)
func causalScoresMatchTheNaiveProductOnAndBelowTheDiagonal(length T: Int, headSize HS: Int) {
    let stride = HS + 3  // the heads' rows sit inside wider rows
    let (a, b) = (randomFloats(T * stride, seed: 1), randomFloats(T * stride, seed: 2))
    let products = CausalProducts(length: T, headSize: HS)
    let scale: Float = 0.375
    var keysT = [Float](repeating: .nan, count: products.transposedCount)
    let sentinel: Float = 12345
    var out = [Float](repeating: sentinel, count: T * T)
    a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in
            keysT.withUnsafeMutableBufferPointer { keysT in
                out.withUnsafeMutableBufferPointer { out in
                    products.transposeKeys(b.baseAddress!, stride: stride, into: keysT.baseAddress!)
                    products.scores(a.baseAddress!, stride: stride, keysT: keysT.baseAddress!, scale: scale,
                                    into: out.baseAddress!)
                }
            }
        }
    }
    for t in 0..<T {
        for s in 0..<T {
            let value = out[t * T + s]
            if s <= t {
                var exact = 0.0, magnitude = 0.0
                for d in 0..<HS {
                    let term = Double(a[t * stride + d]) * Double(b[s * stride + d])
                    exact += term
                    magnitude += abs(term)
                }
                #expect(withinFloat32Bound(value, exact * Double(scale), terms: HS, magnitude: magnitude * Double(scale)),
                        "T \(T) HS \(HS): score (\(t), \(s)) = \(value), exact \(exact * Double(scale))")
            } else if s >= (t / 4 * 4 + 4 + 15) / 16 * 16 {
                // past the last 16-key group any row of t's block of four reaches: untouched
                #expect(value == sentinel, "T \(T) HS \(HS): (\(t), \(s)) written")
            }
        }
    }
}

@Test(arguments: lengths, headSizes)
func causalSumsMatchTheNaiveProductsOfThePastAndTheFuture(length T: Int, headSize HS: Int) {
    let (stride, outStride) = (HS + 5, HS + 2)
    let w = lowerTriangular(T, seed: 3)
    let x = randomFloats(T * stride, seed: 4)
    let products = CausalProducts(length: T, headSize: HS)
    let scale: Float = 1.25
    var past = [Float](repeating: .nan, count: T * outStride)
    var future = [Float](repeating: .nan, count: T * outStride)
    w.withUnsafeBufferPointer { w in
        x.withUnsafeBufferPointer { x in
            past.withUnsafeMutableBufferPointer { past in
                products.pastSum(w.baseAddress!, x.baseAddress!, stride: stride, scale: scale, into: past.baseAddress!,
                                 outStride: outStride)
            }
            future.withUnsafeMutableBufferPointer { future in
                products.futureSum(w.baseAddress!, x.baseAddress!, stride: stride, scale: scale,
                                   into: future.baseAddress!, outStride: outStride)
            }
        }
    }
    for row in 0..<T {
        for d in 0..<outStride {
            guard d < HS else {
                // the columns between heads are not the products' to write
                #expect(past[row * outStride + d].isNaN && future[row * outStride + d].isNaN)
                continue
            }
            // past: row t = row, over s <= t; future: row s = row, over t >= s
            var (pastExact, pastMagnitude, futureExact, futureMagnitude) = (0.0, 0.0, 0.0, 0.0)
            for s in 0...row {
                let term = Double(w[row * T + s]) * Double(x[s * stride + d])
                pastExact += term
                pastMagnitude += abs(term)
            }
            for t in row..<T {
                let term = Double(w[t * T + row]) * Double(x[t * stride + d])
                futureExact += term
                futureMagnitude += abs(term)
            }
            let s = Double(scale)
            #expect(withinFloat32Bound(past[row * outStride + d], pastExact * s, terms: T, magnitude: pastMagnitude * s),
                    "T \(T) HS \(HS): past (\(row), \(d)) = \(past[row * outStride + d]), exact \(pastExact * s)")
            #expect(withinFloat32Bound(future[row * outStride + d], futureExact * s, terms: T,
                                       magnitude: futureMagnitude * s),
                    "T \(T) HS \(HS): future (\(row), \(d)) = \(future[row * outStride + d]), exact \(futureExact * s)")
        }
    }
}
