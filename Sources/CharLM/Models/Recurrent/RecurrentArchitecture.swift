// How the recurrent family (LSTM, GRU, vanilla RNN) answers the model interface (Models/LanguageModel.swift): its
// settings as an architecture (the checkpoint `config` it reads and writes, what it costs in memory), and the
// recurrent model as a LanguageModel and a TrainableLanguageModel. The network itself is RecurrentModel.swift.
//
// Checkpoint config: {"embed", "hidden", "layers", "dropout", "cell"}; "cell" is "lstm", "gru" or "rnn": absent,
// the tensors' module name decides (a PyTorch export), else lstm (files from before cells had a name).

import Foundation

extension RecurrentConfig: ModelArchitecture {
    public var kindName: String { layerKind.rawValue }

    public var parameters: ParameterTable { RecurrentLayout(config: self).table }

    public var summary: String {
        "\(layerKind.rawValue.uppercased()), E \(embeddingSize), H \(hiddenSize), L \(layerCount)"
            + (dropout > 0 ? ", dropout \(formatSettingNumber(dropout))" : "")
            + ", V \(vocabularySize): \(grouped(RecurrentLayout(config: self).totalCount)) parameters"
    }

    /// Parameters in a model of this shape (Double: a hostile config's count may not fit an Int).
    public var parameterCount: Double {
        let (V, E, H, L) = (Double(vocabularySize), Double(embeddingSize), Double(hiddenSize), Double(layerCount))
        let P = Double(layerKind.gateCount) * H
        let firstLayer = P * E + P * H + 2 * P
        let otherLayers = (L - 1) * (P * H + P * H + 2 * P)
        return V * E + firstLayer + otherLayers + V * H + V
    }

    /// The parameters and their gradients, float32.
    public var modelBytes: Double { 2 * 4 * parameterCount }

    /// A `ModelWorkspace` for T steps of B sequences: inputs and targets, layer 0's input table and its gradient,
    /// each layer's activations (gates, cells, hidden states), backward scratch and packed recurrent weights, the
    /// dropout masks and dropped outputs, logits, and the output and input gradients.
    public func passBytes(length T: Int, batch B: Int) -> Double {
        let (V, H, L) = (Double(vocabularySize), Double(hiddenSize), Double(layerCount))
        let (t, b) = (Double(T), Double(B))
        let P = Double(layerKind.gateCount) * H
        let rows = t * b
        var floats = 0.0
        floats += 2 * V * P  // input table and its gradient
        // Per layer: the time loop's hidden states, scratch and packed W_hh (Recurrence.swift), and what the kind
        // keeps: the LSTM its gates (T, B, P), cells (T+1, B, H) and dc (B, H); the GRU its gates and its recurrent
        // product (T, B, P) each; the RNN its pre-activations (T, B, H).
        let loop = TimeLoopBuffers.floatCount(hiddenSize: H, width: P, length: t, batch: b)
        let kept: Double
        switch layerKind {
        case .lstm: kept = rows * P + (t + 1) * b * H + b * H
        case .gru: kept = 2 * rows * P
        case .rnn: kept = rows * P
        }
        floats += L * (loop + kept)
        if dropout > 0 { floats += 2 * (L - 1) * rows * H }  // masks and dropped outputs
        floats += rows * V  // logits
        floats += rows * H + (dropout > 0 && L > 1 ? rows * H : 0)  // output gradient, and the input's under dropout
        return 4 * floats + 2 * 4 * rows  // float32, plus the Int32 inputs and targets
    }

    public var sizeNames: ModelSizeNames {
        ModelSizeNames(full: "E \(embeddingSize), H \(hiddenSize), L \(layerCount), V \(vocabularySize)",
                       short: "H \(hiddenSize), L \(layerCount)", allSettings: "hidden, layers or embed",
                       mainSettings: "hidden or layers")
    }

    public var checkpointConfig: [(key: String, json: String)] {
        [("vocab_size", String(vocabularySize)), ("embed", String(embeddingSize)), ("hidden", String(hiddenSize)),
         ("layers", String(layerCount)), ("dropout", String(Double(dropout))), ("cell", jsonString(layerKind.rawValue))]
    }

    public func makeModel(parameters: [Float]?) throws -> any TrainableLanguageModel {
        try RecurrentModel(config: self, parameters: parameters)
    }

    public func makeModel(generator: inout SeededGenerator) throws -> any TrainableLanguageModel {
        try RecurrentModel(config: self, generator: &generator)
    }

    public func isEqual(to other: any ModelArchitecture) -> Bool { (other as? RecurrentConfig) == self }

    /// The recurrent architecture of a checkpoint's config: every config the transformer's reader leaves (one without
    /// a cell is an LSTM or names its module through its tensors).
    static func read(_ config: CheckpointConfig) throws -> (any ModelArchitecture)? {
        let json = config.json
        let layerKind: LayerKind
        let knownCells = LayerKind.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        if let value = json["cell"] {
            guard let name = value.string, let kind = LayerKind(rawValue: name) else {
                let found = value.string.map { "\"\(abbreviated(spelledVisibly($0), limit: 20))\"" } ?? "not a string"
                throw CheckpointProblem("config `cell` is \(found); charlm knows \(knownCells)")
            }
            layerKind = kind
        } else {
            // Files from before cells had a name are LSTMs; a PyTorch export without the key names its module.
            let present = LayerKind.allCases.filter { config.tensorNames.contains($0.moduleName + ".weight_ih_l0") }
            guard present.count <= 1 else {
                throw CheckpointProblem("it holds the tensors of several cells (" + present.map { "\($0.moduleName).*" }.joined(separator: ", ")
                                        + ") and its config does not say which it is: add \"cell\" (\(knownCells)) to `config`")
            }
            layerKind = present.first ?? .lstm
        }
        let architecture = RecurrentConfig(
            vocabularySize: config.vocabularySize, embeddingSize: try config.integer("embed"),
            hiddenSize: try config.integer("hidden"), layerCount: try config.integer("layers"), dropout: try config.dropout(),
            layerKind: layerKind)
        do { try architecture.validate() } catch { throw CheckpointProblem("its config is unusable: \(error)") }
        return architecture
    }

    /// What to add when tensor `name` is missing: a file whose config names one cell and whose tensors are another's
    /// says so.
    public func missingTensorHint(tensorNames: Set<String>) -> String? {
        LayerKind.allCases.first { $0 != layerKind && tensorNames.contains($0.moduleName + ".weight_ih_l0") }.map {
            "; the config says cell \(layerKind.rawValue) but the tensors are those of cell \($0.rawValue) (\($0.moduleName).*)"
        }
    }
}

/// `text` with control, C1 and format characters spelled U+XXXX, so that nothing in it reaches a terminal as one.
func spelledVisibly(_ text: String) -> String {
    text.unicodeScalars.map { actsOnATerminal($0) ? "U+" + String($0.value, radix: 16, uppercase: true) : String($0) }.joined()
}

extension RecurrentModel: TrainableLanguageModel {
    public var vocabularySize: Int { config.vocabularySize }
    public var architecture: any ModelArchitecture { config }
    public var summary: String { config.summary }

    public func makePass(length T: Int, batch B: Int, context: ComputeContext) -> ModelPass {
        makeWorkspace(length: T, batch: B, context: context)
    }

    public func makeScorer(length T: Int, batch B: Int, context: ComputeContext) throws -> WindowScorer {
        try MemoryBudget.check(config.passBytes(length: T, batch: B), for: "evaluating with seq \(T) and batch \(B)",
                               hint: "lower seq or batch")
        return makeWorkspace(length: T, batch: B, context: context)
    }

    public func makeDecoder(batch: Int, context: ComputeContext, weights: GenerationWeights) throws -> Decoder? {
        try RecurrentDecoder(model: self, batch: batch, context: context, weights: weights)
    }
}

extension ModelWorkspace: ModelPass {
    public func forward(length T: Int, batch B: Int, mode: ForwardMode, generator: inout SeededGenerator) {
        model.forward(length: T, batch: B, workspace: self, mode: mode, generator: &generator)
    }

    public func backward(length T: Int, batch B: Int) {
        model.backward(length: T, batch: B, workspace: self)
    }

    public func crossEntropySum(length T: Int, batch B: Int) -> Double {
        var unused = SeededGenerator(seed: 0)  // inference mode draws nothing
        model.forward(length: T, batch: B, workspace: self, mode: .inference, generator: &unused)
        return model.loss(length: T, batch: B, workspace: self, gradient: false) * Double(T * B)
    }
}
