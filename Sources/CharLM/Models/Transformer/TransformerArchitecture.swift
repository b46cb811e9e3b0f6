// How the transformer family answers the model interface (Models/LanguageModel.swift): its settings as an
// architecture (the checkpoint `config` it reads and writes, what it costs in memory, the context as the longest
// window), and the model as a LanguageModel and a TrainableLanguageModel. The network itself is TransformerModel.swift.
//
// Checkpoint config: {"arch": "transformer", "vocab_size", "embed", "layers", "heads", "context", "bias",
// "dropout"} (nanoGPT's n_embd, n_layer, n_head, block_size, bias, dropout); Checkpoint.swift adds "lowercase" and
// "ascii". The tied head is written as `transformer.wte.weight` and again as `lm_head.weight` (nanoGPT's state_dict
// holds both), and a file with either or both (equal) reads.

import Foundation

extension TransformerConfig: ModelArchitecture {
    public var kindName: String { "transformer" }

    public var parameters: ParameterTable { TransformerLayout(config: self).table }

    public var summary: String {
        "Transformer, E \(embeddingSize), L \(layerCount), heads \(headCount), context \(context)"
            + (bias ? ", bias" : "") + (dropout > 0 ? ", dropout \(formatSettingNumber(dropout))" : "")
            + ", V \(vocabularySize): \(grouped(TransformerLayout(config: self).totalCount)) parameters"
    }

    /// Parameters in a model of this shape (Double: a hostile config's count may not fit an Int): the embeddings,
    /// and per block the two LayerNorms, c_attn (3E x E), the attention's c_proj (E x E), c_fc (4E x E) and the MLP's
    /// c_proj (E x 4E), each with its bias when bias is on; the final LayerNorm. The head is the token embedding.
    public var parameterCount: Double {
        let (V, E, L, C) = (Double(vocabularySize), Double(embeddingSize), Double(layerCount), Double(context))
        let biases = bias ? 1.0 : 0.0
        let block = 2 * E * (1 + biases) + (3 * E * E + 3 * E * biases) + (E * E + E * biases)
            + (4 * E * E + 4 * E * biases) + (4 * E * E + E * biases)
        return V * E + C * E + L * block + E * (1 + biases)
    }

    /// The parameters and their gradients, float32.
    public var modelBytes: Double { 2 * 4 * parameterCount }

    /// A `TransformerPass` for T steps of B sequences (N = T B rows): per block, the stream entering it and after
    /// its attention (2E per row), both LayerNorms' outputs (2E) and statistics (4), qkv (3E), the heads' outputs (E),
    /// c_fc's output and its GELU (8E), and the attention weights (B, NH, T, T); with dropout, the masks on the
    /// weights and on both branches. Then the final stream and ln_f (2E, 2 statistics), the logits (V), the branch
    /// and the attention scratch shared by the blocks (E, and (B, NH, T, T)), the backward gradients (7E: the
    /// stream's, a LayerNorm output's, the heads' outputs', and 4E for qkv's or c_fc's), the embedding's dropout mask.
    /// TransformerTests checks this against the floats a pass allocates.
    public func passBytes(length T: Int, batch B: Int) -> Double {
        let (V, E, L, NH) = (Double(vocabularySize), Double(embeddingSize), Double(layerCount), Double(headCount))
        let (rows, attention) = (Double(T) * Double(B), Double(B) * NH * Double(T) * Double(T))
        let masks = dropout > 0 ? 1.0 : 0.0
        let block = rows * (16 * E + 4) + attention + masks * (attention + 2 * rows * E)
        let shared = rows * (2 * E + 2 + V + E + 7 * E) + attention + masks * rows * E
        return 4 * (L * block + shared) + 2 * 4 * rows  // float32, plus the Int32 inputs and targets
    }

    /// What a pass for inference only holds (TransformerPass `forInference`): the blocks' activations, one shared
    /// (B, NH, T, T) buffer of attention weights, no masks and no gradients.
    public func inferencePassBytes(length T: Int, batch B: Int) -> Double {
        let (V, E, L, NH) = (Double(vocabularySize), Double(embeddingSize), Double(layerCount), Double(headCount))
        let (rows, attention) = (Double(T) * Double(B), Double(B) * NH * Double(T) * Double(T))
        return 4 * (L * rows * (16 * E + 4) + attention + rows * (3 * E + 2 + V)) + 2 * 4 * rows
    }

    public var sizeNames: ModelSizeNames {
        ModelSizeNames(full: "E \(embeddingSize), L \(layerCount), heads \(headCount), context \(context), V \(vocabularySize)",
                       short: "E \(embeddingSize), L \(layerCount), heads \(headCount)",
                       allSettings: "embed, layers or context", mainSettings: "embed or layers")
    }

    /// Windows of at most the context.
    public func checkLength(_ T: Int) throws {
        guard T <= context else { throw CharLMError.sequenceLongerThanContext(seq: T, context: context) }
    }

    public var checkpointConfig: [(key: String, json: String)] {
        [("arch", jsonString(kindName)), ("vocab_size", String(vocabularySize)), ("embed", String(embeddingSize)),
         ("layers", String(layerCount)), ("heads", String(headCount)), ("context", String(context)),
         ("bias", String(bias)), ("dropout", String(Double(dropout)))]
    }

    public func makeModel(parameters: [Float]?) throws -> any TrainableLanguageModel {
        try TransformerModel(config: self, parameters: parameters)
    }

    public func makeModel(generator: inout SeededGenerator) throws -> any TrainableLanguageModel {
        try TransformerModel(config: self, generator: &generator)
    }

    public func isEqual(to other: any ModelArchitecture) -> Bool { (other as? TransformerConfig) == self }

    /// The architecture of a checkpoint's config when its `arch` is "transformer"; nil for a config without `arch`
    /// or naming a recurrent cell (the recurrent family's), a problem for any other `arch`.
    static func read(_ config: CheckpointConfig) throws -> (any ModelArchitecture)? {
        let json = config.json
        guard let arch = json["arch"] else { return nil }
        let recurrent = LayerKind.allCases.map(\.rawValue)
        guard let name = arch.string, name == "transformer" else {
            if let name = arch.string, recurrent.contains(name) { return nil }
            let found = arch.string.map { "\"\(abbreviated(spelledVisibly($0), limit: 20))\"" } ?? "not a string"
            throw CheckpointProblem("config `arch` is \(found); charlm knows "
                                    + (["transformer"] + recurrent).map { "\"\($0)\"" }.joined(separator: ", "))
        }
        guard let bias = json["bias"]?.bool else { throw CheckpointProblem("config `bias` is missing or not true/false") }
        let architecture = TransformerConfig(
            vocabularySize: config.vocabularySize, embeddingSize: try config.integer("embed"),
            layerCount: try config.integer("layers"), headCount: try config.integer("heads"),
            context: try config.integer("context"), bias: bias, dropout: try config.dropout())
        do { try architecture.validate() } catch { throw CheckpointProblem("its config is unusable: \(error)") }
        return architecture
    }

    /// What to add when tensor `name` is missing: a file without biases read with bias on says so.
    public func missingTensorHint(tensorNames: Set<String>) -> String? {
        guard bias, !tensorNames.contains("transformer.ln_f.bias") else { return nil }
        return "; the config says bias on but the file has no biases (was it trained with bias off?)"
    }
}

extension TransformerModel: TrainableLanguageModel {
    public var vocabularySize: Int { config.vocabularySize }
    public var architecture: any ModelArchitecture { config }
    public var summary: String { config.summary }

    public func makePass(length T: Int, batch B: Int, context: ComputeContext) -> ModelPass {
        makeTransformerPass(length: T, batch: B, context: context)
    }

    public func makeScorer(length T: Int, batch B: Int, context: ComputeContext) throws -> WindowScorer {
        try config.checkLength(T)
        try MemoryBudget.check(config.passBytes(length: T, batch: B), for: "evaluating with seq \(T) and batch \(B)",
                               hint: "lower seq or batch")
        return makeTransformerPass(length: T, batch: B, context: context)
    }

    public func makeDecoder(batch: Int, context: ComputeContext, weights: GenerationWeights) throws -> Decoder? {
        try TransformerDecoder(model: self, batch: batch, context: context)
    }
}
