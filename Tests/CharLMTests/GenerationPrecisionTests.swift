// Generation from bfloat16 copies of the weights (PackedProduct.swift's BFloat16Panels, Stepper.swift): the
// rounding against its definition, the kernel against the naive product of the rounded weights, and the bound the
// `bf16` setting states (docs/settings.md): teacher-forced over real text, every next-character distribution of a
// trained model stays within total variation 0.02 of float32's, and the text's loss within 0.005 nats/char.

@testable import CharLM
import Foundation
import Testing

@Test func bfloat16RoundingIsToTheNearestWithTiesToEven() {
    var generator = SeededGenerator(seed: 41)
    for _ in 0..<20_000 {
        let x = Float(bitPattern: UInt32(truncatingIfNeeded: generator.next()) & 0x7F7F_FFFF)
            * (generator.next() % 2 == 0 ? 1 : -1)
        let rounded = BFloat16Panels.float(bfloat16Bits: BFloat16Panels.bfloat16Bits(x))
        // the two bfloat16 values around x, in Double: x with its low 16 bits cleared, and that plus one bfloat16
        // step (2^(exponent - 7)) away from zero, which past the largest bfloat16 rounds to infinity as a Float
        let below = Float(bitPattern: x.bitPattern & 0xFFFF_0000)
        let exponent = max(1, Int((x.bitPattern >> 23) & 0xFF))
        let step = Double(sign: x < 0 ? .minus : .plus, exponent: exponent - 127 - 7, significand: 1)
        let above = Double(below) + step
        let (dBelow, dAbove) = (abs(Double(x) - Double(below)), abs(above - Double(x)))
        let expected = dBelow < dAbove ? below : dAbove < dBelow ? Float(above)
            : ((below.bitPattern >> 16) % 2 == 0 ? below : Float(above))
        #expect(rounded == expected, "\(x)")
    }
    #expect(BFloat16Panels.float(bfloat16Bits: BFloat16Panels.bfloat16Bits(.nan)).isNaN)
    #expect(BFloat16Panels.float(bfloat16Bits: BFloat16Panels.bfloat16Bits(.infinity)) == .infinity)
}

/// The kernel against a triple loop in Double over the same rounded weights: K even and odd, N past a panel.
@Test(arguments: [(K: 1, N: 5), (K: 16, N: 64), (K: 33, N: 130), (K: 256, N: 65)])
func bfloat16RowProductMatchesTheNaiveProductOfTheRoundedWeights(shape: (K: Int, N: Int)) {
    let (K, N) = shape
    var generator = SeededGenerator(seed: 42)
    let w = (0..<(K * N)).map { _ in generator.nextFloat(in: -1, 1) }
    let a = (0..<K).map { _ in generator.nextFloat(in: -1, 1) }
    let start = (0..<(N + 3)).map { _ in generator.nextFloat(in: -1, 1) }
    let panels = BFloat16Panels(rows: K, columns: N)
    for k in 0..<K { for n in 0..<N { panels.set(row: k, column: n, w[k * N + n]) } }
    for accumulate in [true, false] {
        var c = start
        a.withUnsafeBufferPointer { aBuffer in
            c.withUnsafeMutableBufferPointer { cBuffer in
                panels.multiplyRow(aBuffer.baseAddress!, panels: 0..<panels.panelCount, into: cBuffer.baseAddress!,
                                   accumulate: accumulate)
            }
        }
        for n in 0..<N {
            var sum = accumulate ? Double(start[n]) : 0
            var magnitude = abs(sum)
            for k in 0..<K {
                let rounded = Double(BFloat16Panels.float(bfloat16Bits: BFloat16Panels.bfloat16Bits(w[k * N + n])))
                sum += Double(a[k]) * rounded
                magnitude += abs(Double(a[k]) * rounded)
            }
            #expect(abs(Double(c[n]) - sum) <= Double(K + 1) * 0x1p-23 * magnitude + 1e-30, "K \(K) column \(n)")
        }
        #expect(Array(c[N...]) == Array(start[N...]), "columns past N untouched")
    }
}

/// The bfloat16 stepper computes, in float32, with the weights it reads rounded to bfloat16 and nothing else changed:
/// so for every cell it gives the float32 stepper's logits for a copy of the model whose W_hh, W_ih above layer 0
/// and fc.weight are rounded to bfloat16 (layer 0's input table stays float32 in both), within the bound the float32
/// stepper keeps to the training path (1e-5; the sums are in the same order, so in practice the same bits). The
/// bound on a trained model's distributions is the test after this one.
@Test(arguments: LayerKind.allCases)
func bfloat16StepperComputesWithTheRoundedWeights(cell: LayerKind) throws {
    let (V, H, L, T) = (13, 70, 2, 8)
    let config = RecurrentConfig(vocabularySize: V, embeddingSize: 9, hiddenSize: H, layerCount: L, layerKind: cell)
    var generator = SeededGenerator(seed: 51)
    let model = try RecurrentModel(config: config, generator: &generator)
    let rounded = try RecurrentModel(config: config, parameters: model.parameters.array)
    let roundedViews = model.layout.layers.enumerated().flatMap { l, views in
        l == 0 ? [views.weightHH] : [views.weightHH, views.weightIH]
    } + [model.layout.fcWeight]
    for view in roundedViews {
        let p = rounded.parameters.pointer + view.offset
        for i in 0..<view.count { p[i] = BFloat16Panels.float(bfloat16Bits: BFloat16Panels.bfloat16Bits(p[i])) }
    }
    #expect(rounded.parameters.array != model.parameters.array)
    let context = ComputeContext(threads: 2)
    let half = Stepper(config: config, batch: 1, weights: .bfloat16)
    let float = Stepper(config: config, batch: 1, weights: .float32)
    half.refresh(from: model, context: context)
    float.refresh(from: rounded, context: context)
    let zero = model.makeWorkspace(length: 1, batch: 1, context: context)
    zero.resetState(batch: 1)
    half.loadState(from: zero)
    float.loadState(from: zero)
    var worst: Float = 0
    for t in 0..<T {
        var token = Int32(t * 5 % V)
        half.step(tokens: &token, context: context)
        float.step(tokens: &token, context: context)
        for v in 0..<V { worst = max(worst, abs(half.logits.pointer[v] - float.logits.pointer[v])) }
    }
    #expect(worst < 1e-5, "\(cell): largest logit difference \(worst)")
}

private let sharedModel = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../../shared/models/tinyshakespeare-h256-pytorch.safetensors").standardizedFileURL.path
private let sharedCorpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../../shared/data/tinyshakespeare.txt").standardizedFileURL.path
private let sharedPresent = FileManager.default.fileExists(atPath: sharedModel)
    && FileManager.default.fileExists(atPath: sharedCorpus)

/// Total variation and cross-entropy of float32 and bfloat16 steppers fed the same text (teacher forcing).
private func compareWeights(model: RecurrentModel, tokens: [Int]) -> (worstVariation: Double, meanVariation: Double,
                                                                  lossFloat: Double, lossHalf: Double) {
    let context = ComputeContext(threads: 2)
    let steppers = [GenerationWeights.float32, .bfloat16].map { Stepper(config: model.config, batch: 1, weights: $0) }
    let zero = model.makeWorkspace(length: 1, batch: 1, context: context)
    zero.resetState(batch: 1)
    for stepper in steppers {
        stepper.refresh(from: model, context: context)
        stepper.loadState(from: zero)
    }
    let V = model.config.vocabularySize
    func softmax(_ logits: UnsafePointer<Float>) -> [Double] {
        let top = (0..<V).map { Double(logits[$0]) }.max()!
        let e = (0..<V).map { exp(Double(logits[$0]) - top) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }
    var (worst, total, lossFloat, lossHalf) = (0.0, 0.0, 0.0, 0.0)
    for t in 0..<(tokens.count - 1) {
        var input = Int32(tokens[t])
        for stepper in steppers { stepper.step(tokens: &input, context: context) }
        let (p, q) = (softmax(steppers[0].logits.pointer), softmax(steppers[1].logits.pointer))
        let variation = 0.5 * zip(p, q).map { abs($0 - $1) }.reduce(0, +)
        worst = max(worst, variation)
        total += variation
        lossFloat -= log(p[tokens[t + 1]])
        lossHalf -= log(q[tokens[t + 1]])
    }
    let steps = Double(tokens.count - 1)
    return (worst, total / steps, lossFloat / steps, lossHalf / steps)
}

@Test(.enabled(if: sharedPresent, "../shared/models and ../shared/data are absent: the bound is checked on the shared trained model"))
func bfloat16GenerationStaysWithinTheStatedBoundOfFloat32() throws {
    let checkpoint = try Checkpoint.load(from: sharedModel)
    let model = try RecurrentModel(config: checkpoint.config, parameters: checkpoint.parameters)
    let corpus = try Corpus.load(path: sharedCorpus, normalization: checkpoint.vocabulary.normalization)
    // 3,000 characters of the validation split (the last 10%), which the model was not trained on
    let start = corpus.tokens.count * 9 / 10
    let tokens = (start..<(start + 3000)).map { Int(corpus.tokens[$0]) }
    let result = compareWeights(model: model, tokens: tokens)
    #expect(result.worstVariation <= 0.02, "largest total variation \(result.worstVariation)")
    #expect(abs(result.lossHalf - result.lossFloat) <= 0.005, "loss \(result.lossFloat) against \(result.lossHalf)")
    print("bfloat16 against float32 over 3,000 validation characters: total variation mean \(result.meanVariation), "
          + "largest \(result.worstVariation); loss \(result.lossFloat) against \(result.lossHalf) nats/char")
}
