// What a configuration costs in memory, worked out before anything is allocated from a size a user or a file
// supplied. One function per thing charlm allocates in proportion to such a size, each written from the allocations
// it stands for (Model.swift's workspace, each layer kind's activations and packed weights, Adam's moments, a loaded file),
// and `MemoryBudget.check` to refuse what the machine cannot hold, with a message saying how much and what to lower.
// The figures are computed in Double, so no product of hostile sizes can overflow; a test compares them with the
// peak memory measured for a few configurations.

import Foundation

/// Bytes that charlm allocates for a model, its training and its generation, from the shapes alone.
public enum MemoryModel {
    /// Parameters in a model of this shape (Double: a hostile config's count may not fit an Int).
    public static func parameterCount(_ config: ModelConfig) -> Double {
        let (V, E, H, L) = (Double(config.vocabularySize), Double(config.embeddingSize), Double(config.hiddenSize),
                            Double(config.layerCount))
        let P = Double(config.layerKind.gateCount) * H
        let firstLayer = P * E + P * H + 2 * P
        let otherLayers = (L - 1) * (P * H + P * H + 2 * P)
        return V * E + firstLayer + otherLayers + V * H + V
    }

    /// The model itself: its parameters and their gradients (CharModel), float32.
    public static func modelBytes(_ config: ModelConfig) -> Double { 2 * 4 * parameterCount(config) }

    /// Adam's two moments, float32.
    public static func optimizerBytes(_ config: ModelConfig) -> Double { 2 * 4 * parameterCount(config) }

    /// A `ModelWorkspace` for T steps of B sequences: inputs and targets, layer 0's input table and its gradient,
    /// each layer's activations (gates, cells, hidden states), backward scratch and packed recurrent weights, the
    /// dropout masks and dropped outputs, logits, and the output and input gradients.
    public static func workspaceBytes(_ config: ModelConfig, length T: Int, batch B: Int) -> Double {
        let (V, H, L) = (Double(config.vocabularySize), Double(config.hiddenSize), Double(config.layerCount))
        let (t, b) = (Double(T), Double(B))
        let P = Double(config.layerKind.gateCount) * H
        let rows = t * b
        var floats = 0.0
        floats += 2 * V * P  // input table and its gradient
        // Per layer: the time loop's hidden states, scratch and packed W_hh (Recurrence.swift), and what the kind
        // keeps: the LSTM its gates (T, B, P), cells (T+1, B, H) and dc (B, H); the GRU its gates and its recurrent
        // product (T, B, P) each; the RNN its pre-activations (T, B, H).
        let loop = TimeLoopBuffers.floatCount(hiddenSize: H, width: P, length: t, batch: b)
        let kept: Double
        switch config.layerKind {
        case .lstm: kept = rows * P + (t + 1) * b * H + b * H
        case .gru: kept = 2 * rows * P
        case .rnn: kept = rows * P
        }
        floats += L * (loop + kept)
        if config.dropout > 0 { floats += 2 * (L - 1) * rows * H }  // masks and dropped outputs
        floats += rows * V  // logits
        floats += rows * H + (L > 1 ? rows * H : 0)  // output and input gradients
        return 4 * floats + 2 * 4 * rows  // float32, plus the Int32 inputs and targets
    }

    /// A training run: the model, Adam, and the training workspace.
    public static func trainingBytes(_ config: ModelConfig, length T: Int, batch B: Int) -> Double {
        modelBytes(config) + optimizerBytes(config) + workspaceBytes(config, length: T, batch: B)
    }

    /// Loading a file of `size` bytes: the bytes themselves, and what is made from them before they are released
    /// (a corpus's tokens, at most 2 bytes per byte; a checkpoint's tensors as float32, at most twice the bytes
    /// of half-precision data, and their flat copy).
    public static func loadingBytes(fileSize size: Int) -> Double { 5 * Double(size) }
}

/// Refuses what the machine cannot hold.
public enum MemoryBudget {
    /// The share of the available memory charlm lets one request take: the rest is the process's own (its code,
    /// the corpus, the history) and everyone else's.
    public static let usableShare = 0.8

    /// The largest request that passes `check` now.
    public static var usableBytes: Double { Double(availableMemoryBytes()) * usableShare }

    /// Throws `notEnoughMemory` unless a model of `config` fits.
    public static func checkModel(_ config: ModelConfig) throws {
        try check(MemoryModel.modelBytes(config),
                  for: "a model of E \(config.embeddingSize), H \(config.hiddenSize), L \(config.layerCount), V \(config.vocabularySize)",
                  hint: "lower hidden, layers or embed")
    }

    /// Throws `notEnoughMemory` unless training buffers for T x B (and, when `withOptimizer`, Adam's moments) fit
    /// beside the model.
    public static func checkTraining(_ config: ModelConfig, length T: Int, batch B: Int, withOptimizer: Bool) throws {
        let bytes = MemoryModel.workspaceBytes(config, length: T, batch: B)
            + (withOptimizer ? MemoryModel.optimizerBytes(config) : 0)
        try check(bytes, for: "training with seq \(T) and batch \(B) (H \(config.hiddenSize), L \(config.layerCount))",
                  hint: "lower seq or batch (or hidden or layers, then `reset`)")
    }

    /// Throws `notEnoughMemory` when `bytes` is more than `usableShare` of the memory available now.
    ///
    /// - Parameters:
    ///   - what: what needs it ("a model with hidden 8192 and 16 layers").
    ///   - hint: what to lower ("lower hidden, layers or embed").
    public static func check(_ bytes: Double, for what: String, hint: String) throws {
        let available = availableMemoryBytes()
        if bytes > Double(available) * usableShare {
            throw CharLMError.notEnoughMemory(what: what, bytes: Int(min(bytes, 9e18)), available: available, hint: hint)
        }
    }
}
