// Every user-visible setting, as one table: name, summary, what changing it affects, how to parse, validate and
// show it. `set`, `show`, help and completion are all generated from `Settings.keys`.

import CharLM
import Foundation

/// What a setting affects, which decides what happens when it changes.
public enum SettingGroup: String, Sendable {
    /// The architecture: a trained model needs `reset` to take it.
    case model
    /// How text is read: applies to the next `load`.
    case data
    case training
    case sampling
    case system
}

/// All settings of a session, with their defaults.
public struct Settings: Equatable, Sendable {
    public var embed = 64
    public var hidden = 256
    public var layers = 2
    public var dropout: Float = 0
    public var seq = 100
    public var batch = 64
    public var lr: Float = 2e-3
    public var clip: Float = 5
    public var warmup = 0
    public var decay = 0
    public var val = 0.1
    public var lowercase = true
    public var ascii = true
    public var seed: UInt64 = 1337
    public var temp: Float = 1
    public var topk = 0
    public var topp: Float = 1
    public var length = 500
    public var eval = 250
    public var threads = ProcessInfo.processInfo.activeProcessorCount

    public init() {}

    public var normalization: NormalizationOptions { NormalizationOptions(lowercase: lowercase, ascii: ascii) }
    public var training: TrainingSettings { TrainingSettings(steps: seq, batch: batch, learningRate: lr, clip: clip, warmupSteps: warmup, decaySteps: decay) }
    public var sampling: SamplingSettings { SamplingSettings(temperature: temp, topK: topk, topP: topp) }
    public func modelConfig(vocabularySize: Int) -> ModelConfig {
        ModelConfig(vocabularySize: vocabularySize, embeddingSize: embed, hiddenSize: hidden, layerCount: layers, dropout: dropout)
    }

    /// The table of settings, in the order `show` lists them.
    public static let keys: [SettingKey] = [
        .integer("embed", \.embed, 1...8192, .model, "embedding width E"),
        .integer("hidden", \.hidden, 1...8192, .model, "LSTM hidden width H"),
        .integer("layers", \.layers, 1...16, .model, "number of LSTM layers L"),
        .float("dropout", \.dropout, .model, "dropout between LSTM layers, training only", "must be >= 0 and < 1") { $0 >= 0 && $0 < 1 },
        .integer("seq", \.seq, 1...10_000, .training, "characters per training window T"),
        .integer("batch", \.batch, 1...4096, .training, "windows per batch B"),
        .float("lr", \.lr, .training, "Adam learning rate", "must be > 0 and <= 1") { $0 > 0 && $0 <= 1 },
        .float("clip", \.clip, .training, "gradient-norm limit (0 = off)", "must be >= 0") { $0 >= 0 },
        .integer("warmup", \.warmup, 0...10_000_000, .training, "steps of linear learning-rate warm-up (0 = none)"),
        .integer("decay", \.decay, 0...10_000_000, .training, "step at which lr has decayed (cosine) to lr/10 (0 = constant)"),
        SettingKey(name: "val", group: .data, summary: "share of the corpus kept for validation",
                   get: { String($0.val) },
                   set: { settings, text in
                       guard let value = Double(text), value >= 0, value < 0.5 else {
                           throw ShellError("val must be >= 0 and < 0.5; got \(text)")
                       }
                       settings.val = value
                   }),
        .flag("lowercase", \.lowercase, .data, "lowercase the text when loading"),
        .flag("ascii", \.ascii, .data, "fold to ASCII when loading (é -> e, ’ -> ')"),
        SettingKey(name: "seed", group: .system, summary: "seed for initialisation, batches and sampling",
                   get: { String($0.seed) },
                   set: { settings, text in
                       guard let value = UInt64(text) else { throw ShellError("seed must be a whole number >= 0; got \(text)") }
                       settings.seed = value
                   }),
        .float("temp", \.temp, .sampling, "sampling temperature (0 = always the most likely)", "must be >= 0") { $0 >= 0 && $0 <= 100 },
        .integer("topk", \.topk, 0...65_535, .sampling, "sample from the k most likely only (0 = off)"),
        .float("topp", \.topp, .sampling, "sample from the smallest set with this mass (1 = off)", "must be > 0 and <= 1") { $0 > 0 && $0 <= 1 },
        .integer("length", \.length, 0...1_000_000, .sampling, "characters `gen` writes by default"),
        .integer("eval", \.eval, 0...1_000_000, .training, "validate every this many steps while training (0 = only at the end)"),
        .integer("threads", \.threads, 1...256, .system, "compute threads"),
    ]

    /// The key called `name` (or one of the aliases `len`, `temperature`).
    public static func key(named name: String) -> SettingKey? {
        let canonical = ["len": "length", "temperature": "temp", "top_k": "topk", "top_p": "topp"][name] ?? name
        return keys.first { $0.name == canonical }
    }
}

/// One row of the settings table.
public struct SettingKey: Sendable {
    public let name: String
    public let group: SettingGroup
    public let summary: String
    /// The values completion offers (`on`/`off` for flags).
    public var suggestions: [String] = []
    public let get: @Sendable (Settings) -> String
    public let set: @Sendable (inout Settings, String) throws -> Void

    init(name: String, group: SettingGroup, summary: String, suggestions: [String] = [],
         get: @escaping @Sendable (Settings) -> String, set: @escaping @Sendable (inout Settings, String) throws -> Void) {
        self.name = name
        self.group = group
        self.summary = summary
        self.suggestions = suggestions
        self.get = get
        self.set = set
    }

    static func integer(_ name: String, _ path: WritableKeyPath<Settings, Int> & Sendable, _ range: ClosedRange<Int>,
                        _ group: SettingGroup, _ summary: String) -> SettingKey {
        SettingKey(name: name, group: group, summary: summary, get: { String($0[keyPath: path]) }) { settings, text in
            guard let value = Int(text), range.contains(value) else {
                throw ShellError("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound); got \(text)")
            }
            settings[keyPath: path] = value
        }
    }

    static func float(_ name: String, _ path: WritableKeyPath<Settings, Float> & Sendable, _ group: SettingGroup, _ summary: String,
                      _ rule: String, _ valid: @escaping @Sendable (Float) -> Bool) -> SettingKey {
        SettingKey(name: name, group: group, summary: summary, get: { formatNumber($0[keyPath: path]) }) { settings, text in
            guard let value = Float(text), value.isFinite, valid(value) else { throw ShellError("\(name) \(rule); got \(text)") }
            settings[keyPath: path] = value
        }
    }

    static func flag(_ name: String, _ path: WritableKeyPath<Settings, Bool> & Sendable, _ group: SettingGroup, _ summary: String) -> SettingKey {
        SettingKey(name: name, group: group, summary: summary, suggestions: ["on", "off"], get: { $0[keyPath: path] ? "on" : "off" }) { settings, text in
            switch text.lowercased() {
            case "on", "true", "yes", "1": settings[keyPath: path] = true
            case "off", "false", "no", "0": settings[keyPath: path] = false
            default: throw ShellError("\(name) must be on or off; got \(text)")
            }
        }
    }
}

/// A Float as people write it: 0.002, 5, 0.8.
func formatNumber(_ value: Float) -> String {
    let text = String(value)
    return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
}

/// An error in a shell command, with the message to show.
public struct ShellError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
