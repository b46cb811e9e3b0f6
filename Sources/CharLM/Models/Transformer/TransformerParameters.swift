// The transformer family's shape (`TransformerConfig`) and where each of its tensors lives in the one flat parameter
// buffer (and, at the same offsets, in the gradient buffer and Adam's moments), under the names nanoGPT's `GPT`
// (karpathy/nanoGPT model.py) gives them in its `state_dict`. How the family answers the model interface is
// TransformerArchitecture.swift; the network itself is TransformerModel.swift.
//
// Shapes, as everywhere in this folder: V vocabulary, E embedding width (n_embd), L layers (blocks), NH heads, HS = E /
// NH the width of one head, C the context (block_size), T steps, B sequences, N = T * B rows. PyTorch's Linear stores
// its weight (out, in), and so do we.

/// The architecture: token and position embeddings -> L pre-LayerNorm blocks (causal self-attention, MLP) -> final
/// LayerNorm -> a head tied to the token embedding. nanoGPT's `GPTConfig`.
public struct TransformerConfig: Equatable, Hashable, Sendable {
    /// V: characters in the vocabulary.
    public var vocabularySize: Int
    /// E: the width of the residual stream (n_embd).
    public var embeddingSize: Int
    /// L: blocks (n_layer).
    public var layerCount: Int
    /// NH: attention heads per block (n_head); divides E.
    public var headCount: Int
    /// C: the most positions the model sees at once (block_size): the rows of `wpe`.
    public var context: Int
    /// Whether the linear layers and LayerNorms have biases (nanoGPT's `bias`).
    public var bias: Bool
    /// Probability of zeroing an element, in training only: after the embeddings, on the attention weights, and on
    /// each branch's output before it joins the residual stream (nanoGPT's `dropout`).
    public var dropout: Float

    /// Each default is its setting's (SettingDeclarations.swift).
    public init(vocabularySize: Int, embeddingSize: Int = Setting.embed.defaultInteger,
                layerCount: Int = Setting.layers.defaultInteger, headCount: Int = Setting.heads.defaultInteger,
                context: Int = Setting.context.defaultInteger, bias: Bool = Setting.bias.defaultFlag,
                dropout: Float = Setting.dropout.defaultFloat) {
        self.vocabularySize = vocabularySize
        self.embeddingSize = embeddingSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.context = context
        self.bias = bias
        self.dropout = dropout
    }

    /// HS: the width of one head.
    public var headSize: Int { embeddingSize / headCount }

    /// Throws a readable error for a size out of range (the ranges are the settings' declarations) or heads that do
    /// not divide embed.
    public func validate() throws {
        guard (1...65_535).contains(vocabularySize) else {
            throw vocabularySize < 1 ? CharLMError.badVocabulary(problem: "is empty: it needs at least one character")
                : CharLMError.vocabularyTooLarge(size: vocabularySize)
        }
        try Setting.embed.check(embeddingSize)
        try Setting.layers.check(layerCount)
        try Setting.heads.check(headCount)
        try Setting.context.check(context)
        try Setting.dropout.check(dropout)
        guard embeddingSize % headCount == 0 else {
            throw CharLMError.outOfRange(setting: "heads", rule: "a divisor of embed (\(embeddingSize)), as each head "
                                            + "takes an equal share of the embedding",
                                         got: String(headCount))
        }
    }
}

/// The views of one block, `transformer.h.{i}.*`. The biases are nil when the model has none.
public struct TransformerBlockViews: Equatable, Sendable {
    /// (E) ln_1's weight and bias.
    public let ln1Weight: ParameterView
    public let ln1Bias: ParameterView?
    /// (3E, E) the query, key and value projections stacked in that order; (3E) bias.
    public let attentionWeight: ParameterView
    public let attentionBias: ParameterView?
    /// (E, E) the attention's output projection; (E) bias.
    public let attentionProjectionWeight: ParameterView
    public let attentionProjectionBias: ParameterView?
    /// (E) ln_2's weight and bias.
    public let ln2Weight: ParameterView
    public let ln2Bias: ParameterView?
    /// (4E, E) the MLP's expansion; (4E) bias.
    public let mlpWeight: ParameterView
    public let mlpBias: ParameterView?
    /// (E, 4E) the MLP's output projection; (E) bias.
    public let mlpProjectionWeight: ParameterView
    public let mlpProjectionBias: ParameterView?
}

/// The table of every parameter tensor, in nanoGPT's `state_dict` order (`.bias` rows only with bias on):
///
/// | name                                  | shape   | decayed |
/// |---------------------------------------|---------|---------|
/// | `transformer.wte.weight` (`lm_head.weight`, tied) | (V, E) | yes |
/// | `transformer.wpe.weight`              | (C, E)  | yes     |
/// | `transformer.h.{i}.ln_1.weight`, `.bias` | (E)  | no      |
/// | `transformer.h.{i}.attn.c_attn.weight` | (3E, E) | yes    |
/// | `transformer.h.{i}.attn.c_attn.bias`  | (3E)    | no      |
/// | `transformer.h.{i}.attn.c_proj.weight` | (E, E) | yes     |
/// | `transformer.h.{i}.attn.c_proj.bias`  | (E)     | no      |
/// | `transformer.h.{i}.ln_2.weight`, `.bias` | (E)  | no      |
/// | `transformer.h.{i}.mlp.c_fc.weight`   | (4E, E) | yes     |
/// | `transformer.h.{i}.mlp.c_fc.bias`     | (4E)    | no      |
/// | `transformer.h.{i}.mlp.c_proj.weight` | (E, 4E) | yes     |
/// | `transformer.h.{i}.mlp.c_proj.bias`   | (E)     | no      |
/// | `transformer.ln_f.weight`, `.bias`    | (E)     | no      |
///
/// Decayed as nanoGPT's `configure_optimizers` groups them: every tensor of two or more dimensions (the embeddings
/// included; the tied weight is one tensor, decayed once), no bias or LayerNorm weight.
public struct TransformerLayout: Equatable, Sendable {
    /// (V, E) token embedding, also the output head: logits = x wte^T.
    public let tokenEmbedding: ParameterView
    /// (C, E) position embedding.
    public let positionEmbedding: ParameterView
    public let blocks: [TransformerBlockViews]
    /// (E) the final LayerNorm's weight and bias.
    public let lnFinalWeight: ParameterView
    public let lnFinalBias: ParameterView?
    /// Every view, named and flagged, in order.
    public let table: ParameterTable

    public init(config: TransformerConfig) {
        var builder = ParameterTable.Builder()
        let (V, E, C) = (config.vocabularySize, config.embeddingSize, config.context)
        /// A matrix: decayed.
        func weight(_ name: String, _ shape: [Int]) -> ParameterView { builder.add(name, shape, decayed: true) }
        /// A vector (a bias, a LayerNorm's weight): not decayed.
        func vector(_ name: String, _ size: Int) -> ParameterView { builder.add(name, [size]) }
        /// A bias, when the model has them.
        func bias(_ name: String, _ size: Int) -> ParameterView? { config.bias ? vector(name, size) : nil }
        tokenEmbedding = builder.add("transformer.wte.weight", [V, E], decayed: true, aliases: ["lm_head.weight"])
        positionEmbedding = weight("transformer.wpe.weight", [C, E])
        blocks = (0..<config.layerCount).map { i in
            let prefix = "transformer.h.\(i)."
            return TransformerBlockViews(
                ln1Weight: vector(prefix + "ln_1.weight", E), ln1Bias: bias(prefix + "ln_1.bias", E),
                attentionWeight: weight(prefix + "attn.c_attn.weight", [3 * E, E]),
                attentionBias: bias(prefix + "attn.c_attn.bias", 3 * E),
                attentionProjectionWeight: weight(prefix + "attn.c_proj.weight", [E, E]),
                attentionProjectionBias: bias(prefix + "attn.c_proj.bias", E),
                ln2Weight: vector(prefix + "ln_2.weight", E), ln2Bias: bias(prefix + "ln_2.bias", E),
                mlpWeight: weight(prefix + "mlp.c_fc.weight", [4 * E, E]), mlpBias: bias(prefix + "mlp.c_fc.bias", 4 * E),
                mlpProjectionWeight: weight(prefix + "mlp.c_proj.weight", [E, 4 * E]),
                mlpProjectionBias: bias(prefix + "mlp.c_proj.bias", E))
        }
        lnFinalWeight = vector("transformer.ln_f.weight", E)
        lnFinalBias = bias("transformer.ln_f.bias", E)
        table = builder.table
    }

    /// Every view in order.
    public var views: [ParameterView] { table.views }
    /// Total number of parameters (the length of the flat buffers).
    public var totalCount: Int { table.totalCount }
}
