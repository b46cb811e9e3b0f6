// `attentionWeights` (what the shell's `attn` draws) against the Double twin's softmax rows
// (TransformerReference.swift), and its refusals.

@testable import CharLM
import Foundation
import Testing

@Test(arguments: [TinyTransformer(T: 5, B: 1), TinyTransformer(V: 9, E: 8, L: 1, heads: 4, context: 7, T: 6, B: 1, bias: true)])
func attentionWeightsAreTheNaiveTwinsSoftmax(shape: TinyTransformer) throws {
    let model = try makeTransformer(shape.config, seed: 5)
    let tokens = randomSequences(B: 1, T: shape.T, V: shape.V, seed: 6)[0]
    let weights = try model.attentionWeights(tokens: tokens)
    #expect(weights.layerCount == shape.L && weights.headCount == shape.heads && weights.length == shape.T)
    var worst = 0.0, rows = 0
    _ = NaiveTransformer(model: model).run(inputs: [tokens]) { _, l, h, t, reference in
        rows += 1
        for s in 0..<shape.T {
            let expected = s <= t ? reference[s] : 0  // nothing past the query
            worst = max(worst, abs(Double(weights.weight(layer: l, head: h, query: t, key: s)) - expected))
        }
        #expect(weights.row(layer: l, head: h, query: t).count == t + 1)
    }
    #expect(rows == shape.L * shape.heads * shape.T)
    #expect(worst < 1e-5, "largest difference \(worst)")
    // Attention far from uniform, so the comparison means something.
    #expect(weights.values.contains { $0 > 0.6 && $0 < 0.99 })
}

@Test func attentionWeightsRefuseWhatTheModelCannotRead() throws {
    let model = try makeTransformer(TinyTransformer().config, seed: 5)
    #expect(throws: CharLMError.sequenceLongerThanContext(seq: 6, context: 5)) { try model.attentionWeights(tokens: [0, 1, 2, 3, 4, 5]) }
    #expect(throws: CharLMError.emptyPrompt) { try model.attentionWeights(tokens: []) }
    #expect(throws: CharLMError.tokenOutOfRange(token: 6, vocabularySize: 6)) { try model.attentionWeights(tokens: [1, 6]) }
}
