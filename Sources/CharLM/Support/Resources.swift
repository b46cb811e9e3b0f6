// What a configuration costs in memory, worked out before anything is allocated from a size a user or a file
// supplied. One function per thing charlm allocates in proportion to such a size, each written from the allocations
// it stands for (each family's model and pass buffers, Adam's moments, a loaded file),
// and `MemoryBudget.check` to refuse what the machine cannot hold, with a message saying how much and what to lower.
// The figures are computed in Double, so no product of hostile sizes can overflow; a test compares them with the
// peak memory measured for a few configurations.

import Foundation

/// Bytes that charlm allocates for a model, its training and its generation, from the shapes alone. What a family's
/// own buffers cost is the family's to say (`ModelArchitecture.modelBytes` and `passBytes`, e.g.
/// RecurrentArchitecture.swift); this adds what every family shares.
public enum MemoryModel {
    /// The model itself: its parameters and their gradients, float32.
    public static func modelBytes(_ architecture: any ModelArchitecture) -> Double { architecture.modelBytes }

    /// Adam's two moments, float32.
    public static func optimizerBytes(_ architecture: any ModelArchitecture) -> Double {
        2 * 4 * architecture.parameterCount
    }

    /// A `ModelPass` for T steps of B sequences.
    public static func workspaceBytes(_ architecture: any ModelArchitecture, length T: Int, batch B: Int) -> Double {
        architecture.passBytes(length: T, batch: B)
    }

    /// A training run: the model, Adam, and the training workspace.
    public static func trainingBytes(_ architecture: any ModelArchitecture, length T: Int, batch B: Int) -> Double {
        modelBytes(architecture) + optimizerBytes(architecture) + workspaceBytes(architecture, length: T, batch: B)
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
    public static func checkModel(_ architecture: any ModelArchitecture) throws {
        let names = architecture.sizeNames
        try check(MemoryModel.modelBytes(architecture), for: "a model of \(names.full)", hint: "lower \(names.allSettings)")
    }

    /// Throws `notEnoughMemory` unless training buffers for T x B (and, when `withOptimizer`, Adam's moments) fit
    /// beside the model.
    public static func checkTraining(_ architecture: any ModelArchitecture, length T: Int, batch B: Int,
                                     withOptimizer: Bool) throws {
        let bytes = MemoryModel.workspaceBytes(architecture, length: T, batch: B)
            + (withOptimizer ? MemoryModel.optimizerBytes(architecture) : 0)
        let names = architecture.sizeNames
        try check(bytes, for: "training with seq \(T) and batch \(B) (\(names.short))",
                  hint: "lower seq or batch (or \(names.mainSettings), then `reset`)")
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
