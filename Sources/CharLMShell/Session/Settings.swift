// The session's settings: one value per declaration in the engine's SettingDeclarations.swift (name, group, range,
// default, meaning), with how to read and show each. `set`, `show`, help and completion are generated from
// `Settings.keys`; every range message comes from the declaration, the same one the engine's validation uses. Also
// here: the mapping between settings and a checkpoint's fields, both ways.

import CharLM
import Foundation

/// All settings of a session, with their defaults.
public struct Settings: Equatable, Sendable {
    public var cell = LayerKind(rawValue: Setting.cell.defaultText)!
    public var embed = Setting.embed.defaultInteger
    public var hidden = Setting.hidden.defaultInteger
    public var layers = Setting.layers.defaultInteger
    public var dropout = Float(Setting.dropout.defaultNumber)
    public var seq = Setting.seq.defaultInteger
    public var batch = Setting.batch.defaultInteger
    public var lr = Float(Setting.lr.defaultNumber)
    public var clip = Float(Setting.clip.defaultNumber)
    public var warmup = Setting.warmup.defaultInteger
    public var decay = Setting.decay.defaultInteger
    public var wd = Float(Setting.wd.defaultNumber)
    public var val = Setting.val.defaultNumber
    public var lowercase = Setting.lowercase.defaultText == "on"
    public var ascii = Setting.ascii.defaultText == "on"
    public var seed = UInt64(Setting.seed.defaultText)!
    public var temp = Float(Setting.temp.defaultNumber)
    public var topk = Setting.topk.defaultInteger
    public var topp = Float(Setting.topp.defaultNumber)
    public var length = Setting.length.defaultInteger
    public var samples = Setting.samples.defaultInteger
    public var bf16 = Setting.bf16.defaultText == "on"
    public var eval = Setting.eval.defaultInteger
    /// Where the best model is also written as validation improves; nil: off.
    public var keepbest: String?
    /// Seconds between autosaves while training; nil: off.
    public var autosave: Double?
    /// The metrics log's file; nil: off.
    public var log: String?
    public var timing = Setting.timing.defaultText == "on"
    public var threads = Setting.threads.defaultInteger

    public init() {}

    public var normalization: NormalizationOptions { NormalizationOptions(lowercase: lowercase, ascii: ascii) }
    public var training: TrainingSettings {
        TrainingSettings(sequenceLength: seq, batch: batch, learningRate: lr, clip: clip, warmupSteps: warmup, decaySteps: decay,
                         weightDecay: wd)
    }
    public var sampling: SamplingSettings { SamplingSettings(temperature: temp, topK: topk, topP: topp) }
    public func modelConfig(vocabularySize: Int) -> ModelConfig {
        ModelConfig(vocabularySize: vocabularySize, embeddingSize: embed, hiddenSize: hidden, layerCount: layers, dropout: dropout,
                    layerKind: cell)
    }

    /// The table of settings, in the order `show` lists them (the declarations' order).
    public static let keys: [SettingKey] = [
        .cell(Setting.cell, \.cell),
        .integer(Setting.embed, \.embed),
        .integer(Setting.hidden, \.hidden),
        .integer(Setting.layers, \.layers),
        .float(Setting.dropout, \.dropout),
        .integer(Setting.seq, \.seq),
        .integer(Setting.batch, \.batch),
        .float(Setting.lr, \.lr),
        .float(Setting.clip, \.clip),
        .integer(Setting.warmup, \.warmup),
        .integer(Setting.decay, \.decay),
        .float(Setting.wd, \.wd),
        .double(Setting.val, \.val),
        .flag(Setting.lowercase, \.lowercase),
        .flag(Setting.ascii, \.ascii),
        .unsigned(Setting.seed, \.seed),
        .float(Setting.temp, \.temp),
        .integer(Setting.topk, \.topk),
        .float(Setting.topp, \.topp),
        .integer(Setting.length, \.length),
        .integer(Setting.samples, \.samples),
        .flag(Setting.bf16, \.bf16),
        .integer(Setting.eval, \.eval),
        .file(Setting.keepbest, \.keepbest),
        .interval(Setting.autosave, \.autosave),
        .file(Setting.log, \.log),
        .flag(Setting.timing, \.timing),
        .integer(Setting.threads, \.threads),
    ]

    /// The key called `name` (or one of the aliases `len`, `temperature`, `top_k`, `top_p`).
    public static func key(named name: String) -> SettingKey? {
        let canonical = ["len": "length", "temperature": "temp", "top_k": "topk", "top_p": "topp"][name] ?? name
        return keys.first { $0.name == canonical }
    }

    // MARK: Checkpoints

    /// The settings a checkpoint stores as the shell's own (`settings` metadata): those not carried by the model,
    /// training or sampling fields.
    public var checkpointSettings: [String: String] {
        var saved: [String: String] = [:]
        for key in Self.keys where key.group == .system || ["length", "eval"].contains(key.name) {
            saved[key.name] = key.get(self)
        }
        return saved
    }

    /// These settings with everything `checkpoint` restores: the architecture, normalisation, training and sampling
    /// settings, and the shell's own (`checkpointSettings`). Settings the file does not mention keep their values.
    /// The `settings` metadata may only restore the shell's own: the others come from the checked fields. An entry
    /// that is not one of them, or does not read, is left out and named in `notes`.
    public func restoring(_ checkpoint: Checkpoint) -> (settings: Settings, notes: [String]) {
        var restored = self
        // The recurrent family's settings; a family of its own settings maps them here too.
        if let config = checkpoint.architecture as? ModelConfig {
            restored.cell = config.layerKind
            restored.embed = config.embeddingSize
            restored.hidden = config.hiddenSize
            restored.layers = config.layerCount
            restored.dropout = config.dropout
        }
        restored.lowercase = checkpoint.vocabulary.normalization.lowercase
        restored.ascii = checkpoint.vocabulary.normalization.ascii
        // What the file does not hold is back to its default, so nothing of the session before leaks into it.
        let defaults = Settings()
        var defaulted: [String] = []
        if checkpoint.training == nil {
            (restored.seq, restored.batch, restored.lr) = (defaults.seq, defaults.batch, defaults.lr)
            (restored.clip, restored.warmup, restored.decay) = (defaults.clip, defaults.warmup, defaults.decay)
            restored.wd = defaults.wd
            if restored.training != training {
                defaulted.append("no training settings: seq, batch, lr, clip, warmup, decay and wd are back to their defaults")
            }
        }
        if checkpoint.sampling == nil {
            (restored.temp, restored.topk, restored.topp) = (defaults.temp, defaults.topk, defaults.topp)
            if (restored.temp, restored.topk, restored.topp) != (temp, topk, topp) {
                defaulted.append("no sampling settings: temp, topk and topp are back to their defaults")
            }
        }
        if let training = checkpoint.training {
            restored.seq = training.settings.sequenceLength
            restored.batch = training.settings.batch
            restored.lr = training.settings.learningRate
            restored.clip = training.settings.clip
            restored.warmup = training.settings.warmupSteps
            restored.decay = training.settings.decaySteps
            restored.wd = training.settings.weightDecay
            restored.val = training.validationFraction
        }
        if let sampling = checkpoint.sampling {
            restored.temp = sampling.temperature
            restored.topk = sampling.topK
            restored.topp = sampling.topP
        }
        var leftOut: [String] = []
        let own = Set(checkpointSettings.keys)
        for (name, value) in checkpoint.settings.sorted(by: { $0.key < $1.key }) {
            guard own.contains(name), let key = Self.key(named: name), (try? key.set(&restored, value)) != nil else {
                leftOut.append(abbreviated(name, limit: 20))
                continue
            }
        }
        var notes = leftOut.isEmpty ? [] : ["left out stored settings this charlm does not take from a file: " + leftOut.joined(separator: ", ")]
        notes += defaulted.map { "the file holds " + $0 }
        return (restored, notes)
    }
}

/// One row of the settings table: a declaration and where its value lives in `Settings`.
public struct SettingKey: Sendable {
    public let declaration: SettingDeclaration
    public var name: String { declaration.name }
    public var group: SettingGroup { declaration.group }
    public var summary: String { declaration.summary }
    /// The values completion offers (`on`/`off` for flags, `off` for files and durations; file names are completed
    /// by the `set` command).
    public var suggestions: [String] {
        switch declaration.domain {
        case .flag: return ["on", "off"]
        case .file, .interval: return ["off"]
        case .choice(let words): return words
        default: return []
        }
    }
    /// The value as `show` prints it and `set` reads it.
    public let get: @Sendable (Settings) -> String
    /// Reads `text` into the setting, or throws the declaration's range error.
    public let set: @Sendable (inout Settings, String) throws -> Void

    static func integer(_ declaration: SettingDeclaration, _ path: WritableKeyPath<Settings, Int> & Sendable) -> SettingKey {
        SettingKey(declaration: declaration, get: { String($0[keyPath: path]) }) { settings, text in
            guard let value = Int(text) else { throw declaration.outOfRange(text) }
            do { try declaration.check(value) } catch { throw declaration.outOfRange(text) }
            settings[keyPath: path] = value
        }
    }

    static func unsigned(_ declaration: SettingDeclaration, _ path: WritableKeyPath<Settings, UInt64> & Sendable) -> SettingKey {
        SettingKey(declaration: declaration, get: { String($0[keyPath: path]) }) { settings, text in
            guard let value = UInt64(text) else { throw declaration.outOfRange(text) }
            settings[keyPath: path] = value
        }
    }

    static func float(_ declaration: SettingDeclaration, _ path: WritableKeyPath<Settings, Float> & Sendable) -> SettingKey {
        SettingKey(declaration: declaration, get: { formatNumber($0[keyPath: path]) }) { settings, text in
            // In range as typed, and still in range (and not rounded to 0) as the float32 it is stored as.
            guard let number = decimalNumber(text), declaration.domain.contains(number),
                  declaration.domain.contains(Double(Float(number))), Float(number) != 0 || number == 0 else {
                throw declaration.outOfRange(text)
            }
            settings[keyPath: path] = Float(number) + 0  // -0 becomes 0
        }
    }

    static func double(_ declaration: SettingDeclaration, _ path: WritableKeyPath<Settings, Double> & Sendable) -> SettingKey {
        SettingKey(declaration: declaration, get: { formatSettingNumber($0[keyPath: path]) }) { settings, text in
            guard let value = decimalNumber(text), declaration.domain.contains(value) else { throw declaration.outOfRange(text) }
            settings[keyPath: path] = value + 0
        }
    }

    /// A file name or `off` (a file called off is `./off`). `~` is expanded when the file is used.
    static func file(_ declaration: SettingDeclaration, _ path: WritableKeyPath<Settings, String?> & Sendable) -> SettingKey {
        SettingKey(declaration: declaration, get: { $0[keyPath: path] ?? "off" }) { settings, text in
            guard !text.isEmpty, !text.hasSuffix("/") else { throw declaration.outOfRange(text) }
            settings[keyPath: path] = text.lowercased() == "off" ? nil : text
        }
    }

    /// A duration with its unit (90s, 10m, 2h) or `off`.
    static func interval(_ declaration: SettingDeclaration, _ path: WritableKeyPath<Settings, Double?> & Sendable) -> SettingKey {
        SettingKey(declaration: declaration, get: { $0[keyPath: path].map(formatDuration) ?? "off" }) { settings, text in
            if text.lowercased() == "off" {
                settings[keyPath: path] = nil
                return
            }
            guard let seconds = parseDuration(text), declaration.domain.contains(seconds) else { throw declaration.outOfRange(text) }
            settings[keyPath: path] = seconds
        }
    }

    /// One of the layer kinds, by name.
    static func cell(_ declaration: SettingDeclaration, _ path: WritableKeyPath<Settings, LayerKind> & Sendable) -> SettingKey {
        SettingKey(declaration: declaration, get: { $0[keyPath: path].rawValue }) { settings, text in
            guard let kind = LayerKind(rawValue: text.lowercased()) else { throw declaration.outOfRange(text) }
            settings[keyPath: path] = kind
        }
    }

    static func flag(_ declaration: SettingDeclaration, _ path: WritableKeyPath<Settings, Bool> & Sendable) -> SettingKey {
        SettingKey(declaration: declaration, get: { $0[keyPath: path] ? "on" : "off" }) { settings, text in
            switch text.lowercased() {
            case "on", "true", "yes", "1": settings[keyPath: path] = true
            case "off", "false", "no", "0": settings[keyPath: path] = false
            default: throw declaration.outOfRange(text)
            }
        }
    }
}
