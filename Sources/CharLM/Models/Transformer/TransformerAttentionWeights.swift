// Where each head of a transformer looks over one text: the softmax weights of every block and head, as the training
// pass's own forward computes them (inference, one sequence), for the shell's `attn`. Nothing here computes attention
// anew; it runs TransformerModel's forward and copies what each block keeps for backward.

/// The attention weights of every block and head over one text of T characters.
public struct AttentionWeights: Equatable, Sendable {
    /// L, NH and T.
    public let layerCount: Int, headCount: Int, length: Int
    /// (L, NH, T, T): block l, head h, query t, key s at ((l * NH + h) * T + t) * T + s; each row sums to 1 over keys
    /// 0 ... t and is zero past t (the causal mask).
    public let values: [Float]

    public init(layerCount: Int, headCount: Int, length: Int, values: [Float]) {
        precondition(values.count == layerCount * headCount * length * length, "attention weights of the wrong size")
        self.layerCount = layerCount
        self.headCount = headCount
        self.length = length
        self.values = values
    }

    /// How much query `query` of head `head` in block `layer` attends to key `key`.
    public func weight(layer: Int, head: Int, query: Int, key: Int) -> Float {
        values[((layer * headCount + head) * length + query) * length + key]
    }

    /// The weights of query `query` over keys 0 ... query.
    public func row(layer: Int, head: Int, query: Int) -> ArraySlice<Float> {
        let start = ((layer * headCount + head) * length + query) * length
        return values[start...(start + query)]
    }
}

extension TransformerModel {
    /// Bytes `attentionWeights` allocates for a text of T characters: a pass over (T, 1) and the weights' copy.
    public func attentionWeightsBytes(length T: Int) -> Double {
        config.passBytes(length: T, batch: 1)
            + 4 * Double(config.layerCount) * Double(config.headCount) * Double(T) * Double(T)
    }

    /// The attention weights of every block and head while the model reads `tokens` from position 0 (no dropout).
    /// Throws for an empty text, a text longer than the context, a token outside the vocabulary, or weights that do
    /// not fit in memory.
    public func attentionWeights(tokens: [Int], context: ComputeContext = .machine) throws -> AttentionWeights {
        let (T, L, NH) = (tokens.count, config.layerCount, config.headCount)
        guard T > 0 else { throw CharLMError.emptyPrompt }
        try config.checkLength(T)
        if let bad = tokens.first(where: { $0 < 0 || $0 >= config.vocabularySize }) {
            throw CharLMError.tokenOutOfRange(token: bad, vocabularySize: config.vocabularySize)
        }
        try MemoryBudget.check(attentionWeightsBytes(length: T), for: "the attention weights of \(T) characters",
                               hint: "give a shorter text")
        let pass = makeTransformerPass(length: T, batch: 1, context: context)
        for (t, token) in tokens.enumerated() { pass.inputs[t] = Int32(token) }
        var unused = SeededGenerator(seed: 0)  // inference draws nothing
        pass.forward(length: T, batch: 1, mode: .inference, generator: &unused)
        // Each block keeps (B = 1, NH, T, T) weights after the softmax; the causal part is copied, the rest is zero.
        var values = [Float](repeating: 0, count: L * NH * T * T)
        for (l, block) in pass.blocks.enumerated() {
            let weights = block.weights.pointer
            for h in 0..<NH {
                for t in 0..<T {
                    let row = (h * T + t) * T
                    for s in 0...t { values[l * NH * T * T + row + s] = weights[row + s] }
                }
            }
        }
        return AttentionWeights(layerCount: L, headCount: NH, length: T, values: values)
    }
}
