// The BLAS wrapper against a naive triple loop; clipping and Adam against values worked out by hand and against
// themselves on other team sizes; the flat buffers' scans and where they start.

@testable import CharLM
import Testing

private func randomFloats(_ count: Int, seed: UInt64) -> [Float] {
    var generator = SeededGenerator(seed: seed)
    return (0..<count).map { _ in generator.nextFloat(in: -1, 1) }
}

@Test(arguments: [false, true], [false, true])
func gemmMatchesNaiveTripleLoop(transA: Bool, transB: Bool) {
    let (m, n, k) = (5, 7, 3)
    // Strided: every matrix is stored with two spare columns, so leading dimensions exceed the logical widths.
    let (aRows, aColumns) = transA ? (k, m) : (m, k)
    let (bRows, bColumns) = transB ? (n, k) : (k, n)
    let (lda, ldb, ldc) = (aColumns + 2, bColumns + 2, n + 2)
    let a = randomFloats(aRows * lda, seed: 1)
    let b = randomFloats(bRows * ldb, seed: 2)
    var c = randomFloats(m * ldc, seed: 3)
    let expected = naiveGemm(
        transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb,
        beta: 2, c: c, ldc: ldc)
    c.withUnsafeMutableBufferPointer { cBuffer in
        BLAS.gemm(transA ? .transposed : .none, transB ? .transposed : .none, m: m, n: n, k: k, alpha: 0.5,
                  a: a, lda: lda, b: b, ldb: ldb, beta: 2, c: cBuffer.baseAddress!, ldc: ldc, context: .machine)
    }
    for i in 0..<m {
        for j in 0..<n { #expect(abs(Double(c[i * ldc + j]) - expected[i * ldc + j]) < 1e-5) }
        // The spare columns are untouched.
        for j in n..<ldc { #expect(Double(c[i * ldc + j]) == expected[i * ldc + j]) }
    }
}

/// A thread's rows go to BLAS in parts of at most `BLAS.rowsPerCall` (to bound OpenBLAS's packing buffer): with more
/// rows than that per thread, on one thread and on two, every row, the last part's too, still matches the naive
/// product, A stored as is and transposed.
@Test(arguments: [1, 2], [false, true])
func gemmWithMoreRowsThanOneCallTakes(threads: Int, transA: Bool) {
    let (m, n, k) = (2 * threads * BLAS.rowsPerCall + 37, 9, 5)
    let lda = transA ? m : k
    let a = randomFloats(m * k, seed: 7)
    let b = randomFloats(k * n, seed: 8)
    var c = randomFloats(m * n, seed: 9)
    let expected = naiveGemm(
        transA: transA, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: n, beta: 1, c: c, ldc: n)
    c.withUnsafeMutableBufferPointer { cBuffer in
        BLAS.gemm(transA ? .transposed : .none, .none, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: n, beta: 1,
                  c: cBuffer.baseAddress!, ldc: n, context: ComputeContext(threads: threads))
    }
    let worst = (0..<m * n).map { abs(Double(c[$0]) - expected[$0]) }.max()!
    #expect(worst < 1e-5)
}

@Test(arguments: [false, true])
func gemvMatchesNaiveLoop(transposed: Bool) {
    let (rows, cols, lda) = (6, 4, 5)
    let a = randomFloats(rows * lda, seed: 4)
    let x = randomFloats(transposed ? rows : cols, seed: 5)
    var y = randomFloats(transposed ? cols : rows, seed: 6)
    // y as a one-column matrix: y = 1.5 * op(A) x + 0.25 y.
    let expected = naiveGemm(
        transA: transposed, transB: false, m: y.count, n: 1, k: x.count, alpha: 1.5, a: a, lda: lda, b: x, ldb: 1,
        beta: 0.25, c: y, ldc: 1)
    y.withUnsafeMutableBufferPointer { yBuffer in
        BLAS.gemv(transposed ? .transposed : .none, rows: rows, cols: cols, alpha: 1.5, a: a, lda: lda, x: x,
                  beta: 0.25, y: yBuffer.baseAddress!, context: .machine)
    }
    for i in 0..<y.count { #expect(abs(Double(y[i]) - expected[i]) < 1e-5) }
}

@Test func adamTwoStepsMatchTheFormulaByHand() {
    // One parameter p0 = 1, lr 0.1, beta1 0.9, beta2 0.999, eps 1e-8; gradients 0.5 then -0.25.
    // Step 1: m = 0.1 * 0.5 = 0.05;  v = 0.001 * 0.25 = 0.00025;  corrections 1 - 0.9 = 0.1, 1 - 0.999 = 0.001
    //         p = 1 - (0.1 / 0.1) * 0.05 / (sqrt(0.00025) / sqrt(0.001) + 1e-8) = 1 - 0.05 / 0.50000001 = 0.900000002
    // Step 2: m = 0.9 * 0.05 + 0.1 * (-0.25) = 0.02;  v = 0.999 * 0.00025 + 0.001 * 0.0625 = 0.00031225
    //         corrections 1 - 0.81 = 0.19, 1 - 0.998001 = 0.001999
    //         p = 0.900000002 - (0.1 / 0.19) * 0.02 / (sqrt(0.00031225) / sqrt(0.001999) + 1e-8) = 0.87336630
    let parameters = FloatBuffer([1])
    let gradients = FloatBuffer([0.5])
    let adam = Adam(parameterCount: 1, settings: AdamSettings(learningRate: 0.1))
    adam.update(parameters: parameters, gradients: gradients)
    #expect(abs(adam.firstMoment[0] - 0.05) < 1e-7)
    // Float32 holds 1 - 0.999 as 0.000999987, a relative error of 1.3e-5; moments are compared relatively.
    #expect(abs(adam.secondMoment[0] - 0.00025) / 0.00025 < 2e-5)
    #expect(abs(parameters[0] - 0.900000002) < 1e-6)
    gradients[0] = -0.25
    adam.update(parameters: parameters, gradients: gradients)
    #expect(abs(adam.firstMoment[0] - 0.02) < 1e-7)
    #expect(abs(adam.secondMoment[0] - 0.00031225) / 0.00031225 < 2e-5)
    #expect(abs(parameters[0] - 0.87336630) < 1e-6)
    #expect(adam.stepCount == 2)
}

@Test func clippingScalesToTheMaximumNormOnlyWhenAbove() {
    // Norm of (3, 4) is 5. With max 1 the coefficient is 1 / (5 + 1e-6); with max 10 nothing changes.
    let gradients = FloatBuffer([3, 4])
    let norm = clipGradientNorm(gradients, maxNorm: 1)
    #expect(norm == 5)
    #expect(abs(gradients[0] - 0.6) < 1e-6 && abs(gradients[1] - 0.8) < 1e-6)
    let unclipped = FloatBuffer([3, 4])
    clipGradientNorm(unclipped, maxNorm: 10)
    #expect(unclipped.array == [3, 4])
}

@Test func clipAndAdamGiveTheSameBitsOnOneThreadAsOnThree() {
    // 70,001 parameters: many clip blocks and 16-lane groups, a partial last of each; half of them decayed.
    let count = 70_001
    let initial = randomFloats(count, seed: 11)
    let gradientValues = randomFloats(count, seed: 12).map { $0 * 3 }
    var settings = AdamSettings(learningRate: 0.01, weightDecay: 0.1)
    settings.beta2 = 0.99
    func run(_ context: ComputeContext?) -> (norm: Double, parameters: [Float], moments: [Float]) {
        let parameters = FloatBuffer(initial)
        let adam = Adam(parameterCount: count, settings: settings, decayedRanges: [5..<35_000, 40_000..<count])
        var norm = 0.0
        for _ in 0..<3 {
            let gradients = FloatBuffer(gradientValues)
            norm = clipGradientNorm(gradients, maxNorm: 1, context: context)
            adam.update(parameters: parameters, gradients: gradients, context: context)
        }
        return (norm, parameters.array, adam.firstMoment.array + adam.secondMoment.array)
    }
    let alone = run(nil)
    let shared = run(ComputeContext(threads: 3))
    #expect(alone.norm == shared.norm)
    #expect(alone.parameters == shared.parameters)
    #expect(alone.moments == shared.moments)
    // the norm against a double-precision sum in order
    let exact = gradientValues.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
    #expect(abs(alone.norm - exact) <= 1e-12 * exact)
    // and the update did something: every decayed parameter moved
    #expect(alone.parameters[10] != initial[10])
}

@Test func firstNonFiniteFindsTheFirstNaNOrInfinityAnywhere() {
    // positions around the 16-lane groups and in a partial last group, against the element-by-element answer
    for count in [1, 5, 16, 17, 40, 1000] {
        #expect(FloatBuffer(randomFloats(count, seed: 3)).firstNonFinite() == nil)
        for position in Set([0, 7, 15, 16, 17, count / 2, count - 1]) where position < count {
            for bad in [Float.nan, .infinity, -.infinity] {
                var values = randomFloats(count, seed: 4)
                values[position] = bad
                if position + 3 < count { values[position + 3] = .nan }  // a later one does not count
                #expect(FloatBuffer(values).firstNonFinite() == position, "count \(count), \(bad) at \(position)")
            }
        }
    }
    // the largest finite values are finite
    #expect(FloatBuffer([Float](repeating: .greatestFiniteMagnitude, count: 33)).firstNonFinite() == nil)
}

@Test func buffersStartOnACacheLine() {
    // Sizes that malloc serves from its small bins, its large ones and with mmap (16 bytes into a page), each while
    // other allocations of odd sizes are live, so that a buffer placed by malloc alone would be off the line.
    var keep: [AnyObject] = []
    for count in [1, 3, 17, 1000, 65_537, 1_048_576 + 5] {
        keep.append([Float](repeating: 0, count: count % 7 + 1) as AnyObject)
        let buffer = FloatBuffer(count: count)
        #expect(Int(bitPattern: buffer.pointer) % FloatBuffer.alignment == 0, "count \(count)")
        #expect(buffer.array.allSatisfy { $0 == 0 }, "count \(count)")
        let panels = BFloat16Panels(rows: count % 300 + 1, columns: 65)
        #expect(Int(bitPattern: panels.storage) % FloatBuffer.alignment == 0, "count \(count)")
        keep.append(buffer)
        keep.append(panels)
    }
    #expect(FloatBuffer.alignment == 64)
}

@Test func zeroingOnATeamZeroesEveryElement() {
    let buffer = FloatBuffer(randomFloats(100_003, seed: 5))
    buffer.zero(team: ComputeContext(threads: 3).team)
    #expect(buffer.array.allSatisfy { $0 == 0 })
}
