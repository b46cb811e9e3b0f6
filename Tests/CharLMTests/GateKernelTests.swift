// The vectorised nonlinearities of the gate kernels and the transformer's (erf for GELU, the attention's softmax)
// against Foundation's double-precision functions. (The kernels as a whole are checked against the naive per-gate
// model in ModelTests, and the transformer's against finite differences and PyTorch in TransformerTests.)

@testable import CharLM
import Foundation
import Testing

/// Evaluates a lane-wise function on `inputs`, sixteen at a time.
private func lanewise(_ inputs: [Float], _ function: (Lanes) -> Lanes) -> [Float] {
    var outputs: [Float] = []
    for start in stride(from: 0, to: inputs.count, by: 16) {
        var lanes = Lanes()
        for lane in 0..<16 where start + lane < inputs.count { lanes[lane] = inputs[start + lane] }
        let result = function(lanes)
        for lane in 0..<16 where start + lane < inputs.count { outputs.append(result[lane]) }
    }
    return outputs
}

/// Every 1/64 from -100 to 100, plus values near 0 and the clamp limits.
private let inputs: [Float] = (-6400...6400).map { Float($0) / 64 } + [1e-8, -1e-8, 1e-30, 87.5, -86.9, 88.7, -90, 0]

@Test func exponentialHasSinglePrecisionRelativeAccuracy() {
    let outputs = lanewise(inputs, exponential)
    var worst = 0.0
    for (x, y) in zip(inputs, outputs) {
        let clamped = min(max(Double(x), -87), 88)  // documented clamp
        let exact = Foundation.exp(clamped)
        worst = max(worst, abs(Double(y) - exact) / exact)
        #expect(y.isFinite && y > 0)
    }
    #expect(worst < 3e-7, "worst relative error \(worst)")
}

/// The sampler's double-precision e^x (VectorMath.swift) against the C library's, in units in the last place: every
/// 1/64 over the whole range the softmax gives it (-708 to 0), random points across the normal range, and the edges:
/// e^0 = 1 exactly, 0 below e^-708 and for -infinity, NaN kept.
@Test func doubleExponentialIsWithinTwoUnitsInTheLastPlace() {
    var generator = SeededGenerator(seed: 11)
    let grid = (0...(708 * 64)).map { -Double($0) / 64 }
    let random = (0..<20_000).map { _ in Double(generator.nextFloat(in: -708, 708)) + generator.nextUnitDouble() }
    let inputs = grid + random + [1e-300, -1e-300, 1e-10, 709, -707.9]
    var worstUnits = 0.0
    for start in stride(from: 0, to: inputs.count, by: 8) {
        var lanes = DoubleLanes(repeating: 0)
        let count = min(8, inputs.count - start)
        for lane in 0..<count { lanes[lane] = inputs[start + lane] }
        let result = exponential(lanes)
        for lane in 0..<count {
            let exact = Foundation.exp(inputs[start + lane])
            worstUnits = max(worstUnits, abs(result[lane] - exact) / exact.ulp)
        }
    }
    #expect(worstUnits <= 2, "worst error \(worstUnits) units in the last place")
    let edges = exponential(DoubleLanes(0, -708.5, -1000, -.infinity, .nan, 710, -0.0, 1))
    #expect(edges[0] == 1 && edges[6] == 1)
    #expect(edges[1] == 0 && edges[2] == 0 && edges[3] == 0)
    #expect(edges[4].isNaN)
    #expect(abs(edges[5] - Foundation.exp(709)) <= 2 * Foundation.exp(709).ulp)  // 710 limited to 709
    #expect(abs(edges[7] - M_E) <= 2 * M_E.ulp)
}

@Test func sigmoidAndTanhHaveSmallAbsoluteError() {
    let sigmoids = lanewise(inputs, sigmoid)
    let tanhs = lanewise(inputs, tanh)
    var worstSigmoid = 0.0, worstTanh = 0.0
    for (index, x) in inputs.enumerated() {
        worstSigmoid = max(worstSigmoid, abs(Double(sigmoids[index]) - 1 / (1 + Foundation.exp(-Double(x)))))
        worstTanh = max(worstTanh, abs(Double(tanhs[index]) - Foundation.tanh(Double(x))))
        #expect(sigmoids[index] >= 0 && sigmoids[index] <= 1)
        #expect(tanhs[index] >= -1 && tanhs[index] <= 1)
    }
    #expect(worstSigmoid < 2e-7, "sigmoid: worst absolute error \(worstSigmoid)")
    #expect(worstTanh < 3e-7, "tanh: worst absolute error \(worstTanh)")
    // Odd symmetry is exact: tanh takes the sign of its argument.
    #expect(zip(inputs, tanhs).allSatisfy { x, y in x == 0 || (x < 0) == (y < 0) || y == 0 })
}

@Test func errorFunctionHasSmallAbsoluteError() {
    let outputs = lanewise(inputs, errorFunction)
    var worst = 0.0
    for (x, y) in zip(inputs, outputs) {
        worst = max(worst, abs(Double(y) - Foundation.erf(Double(x))))
        #expect(y >= -1 && y <= 1)
    }
    #expect(worst < 3e-7, "worst absolute error \(worst)")
    // erf is odd, and exactly so here: the same magnitude with the argument's sign.
    #expect(zip(inputs, outputs).allSatisfy { x, y in x == 0 || (x < 0) == (y < 0) })
}

/// The attention's softmax on 16 lanes against a double-precision one, at every count across the partial groups;
/// a NaN score gives NaN weights (not a weight of e^88, as the exponential's clamp alone would).
@Test func vectorisedSoftmaxMatchesDoublePrecisionAndKeepsNaN() {
    var generator = SeededGenerator(seed: 7)
    for count in 1...50 {
        let scores = (0..<count).map { _ in Float.random(in: -30...30, using: &generator) }
        var weights = scores
        weights.withUnsafeMutableBufferPointer { softmax($0.baseAddress!, count: count) }
        let largest = Double(scores.max()!)
        let exact = scores.map { Foundation.exp(Double($0) - largest) }
        let total = exact.reduce(0, +)
        for (weight, value) in zip(weights, exact) { #expect(abs(Double(weight) - value / total) < 1e-6) }
    }
    var scores: [Float] = [0.5, .nan, 1.5, -2]
    scores.withUnsafeMutableBufferPointer { softmax($0.baseAddress!, count: 4) }
    #expect(scores.contains { $0.isNaN })
}

/// A model whose scores hold a NaN or an infinity has no finite loss: the cross-entropy says NaN (so `eval` and
/// validation refuse it) instead of skipping the bad score, as `max` alone would. Finite scores match the formula.
@Test func crossEntropyOfNonFiniteScoresIsNaN() {
    let V = 19
    var targets: [Int32] = [3]
    for bad in [Float.nan, .infinity, -.infinity] {
        for position in [0, 3, V - 1] {
            var logits = (0..<V).map { Float($0) * 0.1 }
            logits[position] = bad
            let loss = softmaxCrossEntropy(logits: &logits, targets: &targets, rows: 1, classes: V, gradient: false)
            #expect(loss.isNaN, "score \(bad) at \(position) gave loss \(loss)")
        }
    }
    var logits = (0..<V).map { Float($0) * 0.1 }
    let expected = log((0..<V).map { exp(Double($0) * 0.1) }.reduce(0, +)) - 0.3
    let loss = softmaxCrossEntropy(logits: &logits, targets: &targets, rows: 1, classes: V, gradient: false)
    #expect(abs(loss - expected) < 1e-5, "\(loss) against \(expected)")
}
