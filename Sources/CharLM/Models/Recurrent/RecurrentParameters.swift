// The recurrent family's shape (`RecurrentConfig`) and where each of its tensors lives in the one flat parameter buffer
// (and, at the same offsets, in the gradient buffer and Adam's moment buffers). Adam, clipping, zeroing and
// checkpoint I/O are then single loops over flat buffers; the recurrent code addresses tensors through the views in
// `RecurrentLayout`. How this family answers the model interface (LanguageModel.swift) is in
// RecurrentArchitecture.swift.

/// The kind of recurrent layer (`set cell`). Each kind is one file (LSTM.swift, GRU.swift, RNN.swift) implementing
/// `RecurrentLayer` (Layer.swift) and one row here: its PyTorch module name and how many gate blocks its weights
/// stack.
public enum LayerKind: String, Sendable, CaseIterable {
    /// PyTorch's nn.LSTM: gates i, f, g, o.
    case lstm
    /// PyTorch's nn.GRU: gates r, z, n.
    case gru
    /// PyTorch's nn.RNN with tanh: no gates.
    case rnn

    /// The prefix of its tensors' names in a PyTorch `state_dict` (the module's attribute name in
    /// scripts/torch_reference.py): `lstm.weight_ih_l0`, `gru.weight_ih_l0`, `rnn.weight_ih_l0`.
    public var moduleName: String { rawValue }
    /// Gate blocks stacked in W_ih, W_hh and the biases: the input projection is (gateCount * H) wide.
    public var gateCount: Int {
        switch self {
        case .lstm: return 4
        case .gru: return 3
        case .rnn: return 1
        }
    }
    /// The names of the blocks stacked in W_ih, in order.
    public var blockNames: [String] {
        switch self {
        case .lstm: return ["i", "f", "g", "o"]
        case .gru: return ["r", "z", "n"]
        case .rnn: return ["h"]
        }
    }
    /// The blocks that are gates (sigmoids in 0...1), with their index in `blockNames`: what `gates` measures.
    public var sigmoidGates: [(name: String, block: Int)] {
        switch self {
        case .lstm: return [("i", 0), ("f", 1), ("o", 3)]
        case .gru: return [("r", 0), ("z", 1)]
        case .rnn: return []
        }
    }
    /// What the layer's memory is, as `cells` names it.
    public var memoryName: String {
        switch self {
        case .lstm: return "cell state c"
        case .gru, .rnn: return "hidden state h"
        }
    }
}

/// The architecture: Embedding (V x E) -> L recurrent layers of width H -> Linear (H -> V).
public struct RecurrentConfig: Equatable, Hashable, Sendable {
    /// V: characters in the vocabulary.
    public var vocabularySize: Int
    /// E: embedding width.
    public var embeddingSize: Int
    /// H: hidden (and cell) width of every layer.
    public var hiddenSize: Int
    /// L: number of stacked layers.
    public var layerCount: Int
    /// Probability of zeroing each output of a layer that feeds another layer, in training only
    /// (PyTorch's `nn.LSTM(dropout:)`).
    public var dropout: Float
    /// What every layer is.
    public var layerKind: LayerKind

    /// Each default is its setting's (SettingDeclarations.swift).
    public init(vocabularySize: Int, embeddingSize: Int = Setting.embed.defaultInteger,
                hiddenSize: Int = Setting.hidden.defaultInteger, layerCount: Int = Setting.layers.defaultInteger,
                dropout: Float = Setting.dropout.defaultFloat, layerKind: LayerKind = Setting.cell.defaultChoice()) {
        self.vocabularySize = vocabularySize
        self.embeddingSize = embeddingSize
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.dropout = dropout
        self.layerKind = layerKind
    }

    /// Throws a readable error for a size out of range (the ranges are the settings' declarations).
    public func validate() throws {
        guard (1...65_535).contains(vocabularySize) else {
            throw vocabularySize < 1 ? CharLMError.badVocabulary(problem: "is empty: it needs at least one character")
                : CharLMError.vocabularyTooLarge(size: vocabularySize)
        }
        try Setting.embed.check(embeddingSize)
        try Setting.hidden.check(hiddenSize)
        try Setting.layers.check(layerCount)
        try Setting.dropout.check(dropout)
    }
}

/// The views of one recurrent layer, named as PyTorch names them (`lstm.weight_ih_l0`, ...). `inputSize` is E for
/// layer 0 and H above it; G is the kind's gate count.
public struct RecurrentLayerViews: Equatable, Sendable {
    public let kind: LayerKind
    public let inputSize: Int
    public let hiddenSize: Int
    /// (G*H, in), gate blocks in the kind's order.
    public let weightIH: ParameterView
    /// (G*H, H).
    public let weightHH: ParameterView
    /// (G*H).
    public let biasIH: ParameterView
    /// (G*H).
    public let biasHH: ParameterView
}

/// The table of every parameter tensor, in PyTorch `state_dict` order (`rnn` is the kind's module name, `lstm`;
/// G its gate count, 4):
///
/// | name                 | shape     |
/// |----------------------|-----------|
/// | `embedding.weight`   | (V, E)    |
/// | `rnn.weight_ih_l{k}` | (G*H, in) |
/// | `rnn.weight_hh_l{k}` | (G*H, H)  |
/// | `rnn.bias_ih_l{k}`   | (G*H)     |
/// | `rnn.bias_hh_l{k}`   | (G*H)     |
/// | `fc.weight`          | (V, H)    |
/// | `fc.bias`            | (V)       |
public struct RecurrentLayout: Equatable, Sendable {
    public let embedding: ParameterView
    public let layers: [RecurrentLayerViews]
    public let fcWeight: ParameterView
    public let fcBias: ParameterView
    /// Every view, named and flagged, in order.
    public let table: ParameterTable

    public init(config: RecurrentConfig) {
        var builder = ParameterTable.Builder()
        let (V, E, H) = (config.vocabularySize, config.embeddingSize, config.hiddenSize)
        let (kind, G) = (config.layerKind, config.layerKind.gateCount)
        let module = kind.moduleName
        // Decayed: the weight matrices that multiply an input (every W_ih and W_hh, and fc.weight); biases and the
        // embedding (a row lookup) are not.
        embedding = builder.add("embedding.weight", [V, E])
        layers = (0..<config.layerCount).map { k in
            let inputSize = k == 0 ? E : H
            return RecurrentLayerViews(
                kind: kind, inputSize: inputSize, hiddenSize: H,
                weightIH: builder.add("\(module).weight_ih_l\(k)", [G * H, inputSize], decayed: true),
                weightHH: builder.add("\(module).weight_hh_l\(k)", [G * H, H], decayed: true),
                biasIH: builder.add("\(module).bias_ih_l\(k)", [G * H]),
                biasHH: builder.add("\(module).bias_hh_l\(k)", [G * H]))
        }
        fcWeight = builder.add("fc.weight", [V, H], decayed: true)
        fcBias = builder.add("fc.bias", [V])
        table = builder.table
    }

    /// Every view in order.
    public var views: [ParameterView] { table.views }
    /// Total number of parameters (the length of the flat buffers).
    public var totalCount: Int { table.totalCount }
    /// The ranges AdamW's weight decay applies to (see `init`).
    public var decayedRanges: [Range<Int>] { table.decayedRanges }

    /// The view called `name`, or nil.
    public func view(named name: String) -> ParameterView? { table.view(named: name) }
}
