// The model's shape and where each parameter tensor lives in the one flat parameter buffer (and, at the same
// offsets, in the gradient buffer and Adam's moment buffers). Adam, clipping, zeroing and checkpoint I/O are then
// single loops over flat buffers; everything else addresses tensors through the views in `ParameterLayout`.

/// The architecture: Embedding (V x E) -> L LSTM layers of width H -> Linear (H -> V).
public struct ModelConfig: Equatable, Hashable, Sendable {
    /// V: characters in the vocabulary.
    public var vocabularySize: Int
    /// E: embedding width.
    public var embeddingSize: Int
    /// H: hidden (and cell) width of every LSTM layer.
    public var hiddenSize: Int
    /// L: number of stacked LSTM layers.
    public var layerCount: Int
    /// Probability of zeroing each output of an LSTM layer that feeds another LSTM layer, in training only
    /// (PyTorch's `nn.LSTM(dropout:)`).
    public var dropout: Float

    public init(vocabularySize: Int, embeddingSize: Int = 64, hiddenSize: Int = 256, layerCount: Int = 2, dropout: Float = 0) {
        self.vocabularySize = vocabularySize
        self.embeddingSize = embeddingSize
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.dropout = dropout
    }

    /// Throws a readable error for a size out of range.
    public func validate() throws {
        func check(_ name: String, _ value: Int, _ range: ClosedRange<Int>) throws {
            guard range.contains(value) else {
                throw CharLMError.invalidSetting(
                    name: name, message: "must be between \(range.lowerBound) and \(range.upperBound); got \(value)")
            }
        }
        try check("vocabulary size", vocabularySize, 1...65_535)
        try check("embed", embeddingSize, 1...8192)
        try check("hidden", hiddenSize, 1...8192)
        try check("layers", layerCount, 1...16)
        guard dropout >= 0 && dropout < 1 else {
            throw CharLMError.invalidSetting(name: "dropout", message: "must be >= 0 and < 1; got \(dropout)")
        }
    }
}

/// One named tensor inside the flat buffers.
public struct ParameterView: Equatable, Sendable {
    /// PyTorch's `state_dict` name, e.g. `lstm.weight_ih_l0`.
    public let name: String
    /// Row-major shape, as PyTorch reports it.
    public let shape: [Int]
    /// First element's offset in the flat buffer.
    public let offset: Int
    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
}

/// The views of one LSTM layer. `inputSize` is E for layer 0 and H above it.
public struct LSTMLayerViews: Equatable, Sendable {
    public let inputSize: Int
    /// (4H, in), gate order i, f, g, o.
    public let weightIH: ParameterView
    /// (4H, H), gate order i, f, g, o.
    public let weightHH: ParameterView
    /// (4H).
    public let biasIH: ParameterView
    /// (4H).
    public let biasHH: ParameterView
}

/// The table of every parameter tensor, in PyTorch `state_dict` order:
///
/// | name                 | shape     |
/// |----------------------|-----------|
/// | `embedding.weight`   | (V, E)    |
/// | `lstm.weight_ih_l{k}`| (4H, in)  |
/// | `lstm.weight_hh_l{k}`| (4H, H)   |
/// | `lstm.bias_ih_l{k}`  | (4H)      |
/// | `lstm.bias_hh_l{k}`  | (4H)      |
/// | `fc.weight`          | (V, H)    |
/// | `fc.bias`            | (V)       |
public struct ParameterLayout: Equatable, Sendable {
    public let embedding: ParameterView
    public let layers: [LSTMLayerViews]
    public let fcWeight: ParameterView
    public let fcBias: ParameterView
    /// Every view in order.
    public let views: [ParameterView]
    /// Total number of parameters (the length of the flat buffers).
    public let totalCount: Int

    public init(config: ModelConfig) {
        var offset = 0
        var views: [ParameterView] = []
        func add(_ name: String, _ shape: [Int]) -> ParameterView {
            let view = ParameterView(name: name, shape: shape, offset: offset)
            offset += view.count
            views.append(view)
            return view
        }
        let (V, E, H) = (config.vocabularySize, config.embeddingSize, config.hiddenSize)
        embedding = add("embedding.weight", [V, E])
        layers = (0..<config.layerCount).map { k in
            let inputSize = k == 0 ? E : H
            return LSTMLayerViews(
                inputSize: inputSize,
                weightIH: add("lstm.weight_ih_l\(k)", [4 * H, inputSize]),
                weightHH: add("lstm.weight_hh_l\(k)", [4 * H, H]),
                biasIH: add("lstm.bias_ih_l\(k)", [4 * H]),
                biasHH: add("lstm.bias_hh_l\(k)", [4 * H]))
        }
        fcWeight = add("fc.weight", [V, H])
        fcBias = add("fc.bias", [V])
        self.views = views
        totalCount = offset
    }

    /// The view called `name`, or nil.
    public func view(named name: String) -> ParameterView? { views.first { $0.name == name } }
}
