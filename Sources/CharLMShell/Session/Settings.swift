// The session's settings: one value per declaration in the engine's SettingDeclarations.swift, which states the
// list of settings, their order, ranges, defaults and meanings; this file adds where each value lives and how it is
// read and shown. `set`, `show`, help and completion are generated from `Settings.keys`; every range message comes
// from the declaration, the same one the engine's validation uses. Also here: the mapping between settings, the
// engine's settings structs and a checkpoint's fields, both ways.

import CharLM
import Foundation

/// All settings of a session, with their defaults.
public struct Settings: Equatable, Sendable {
    /// The model family, and for a recurrent network its cell (`set arch`; `set cell` for the recurrent three).
    public var arch: Arch = Setting.arch.defaultChoice()
    public var embed = Setting.embed.defaultInteger
    public var hidden = Setting.hidden.defaultInteger
    public var layers = Setting.layers.defaultInteger
    public var heads = Setting.heads.defaultInteger
    public var context = Setting.context.defaultInteger
    public var bias = Setting.bias.defaultFlag
    public var dropout = Setting.dropout.defaultFloat
    public var seq = Setting.seq.defaultInteger
    public var batch = Setting.batch.defaultInteger
    public var lr = Setting.lr.defaultFloat
    public var clip = Setting.clip.defaultFloat
    public var warmup = Setting.warmup.defaultInteger
    public var decay = Setting.decay.defaultInteger
    public var wd = Setting.wd.defaultFloat
    public var val = Setting.val.defaultNumber
    public var lowercase = Setting.lowercase.defaultFlag
    public var ascii = Setting.ascii.defaultFlag
    public var seed = Setting.seed.defaultUnsigned
    public var temp = Setting.temp.defaultFloat
    public var topk = Setting.topk.defaultInteger
    public var topp = Setting.topp.defaultFloat
    public var length = Setting.length.defaultInteger
    public var samples = Setting.samples.defaultInteger
    public var bf16 = Setting.bf16.defaultFlag
    public var eval = Setting.eval.defaultInteger
    /// Where the best model is also written as validation improves; nil: off.
    public var keepbest: String?
    /// Seconds between autosaves while training; nil: off.
    public var autosave: Double?
    /// The metrics log's file; nil: off.
    public var log: String?
    public var timing = Setting.timing.defaultFlag
    public var pager = Setting.pager.defaultFlag
    public var threads = Setting.threads.defaultInteger

    public init() {}

    // MARK: The engine's settings, both ways

    public var normalization: NormalizationOptions {
        get { NormalizationOptions(lowercase: lowercase, ascii: ascii) }
        set { (lowercase, ascii) = (newValue.lowercase, newValue.ascii) }
    }
    public var training: TrainingSettings {
        get {
            TrainingSettings(sequenceLength: seq, batch: batch, learningRate: lr, clip: clip, warmupSteps: warmup, decaySteps: decay,
                             weightDecay: wd)
        }
        set {
            (seq, batch, lr, clip) = (newValue.sequenceLength, newValue.batch, newValue.learningRate, newValue.clip)
            (warmup, decay, wd) = (newValue.warmupSteps, newValue.decaySteps, newValue.weightDecay)
        }
    }
    public var sampling: SamplingSettings {
        get { SamplingSettings(temperature: temp, topK: topk, topP: topp) }
        set { (temp, topk, topp) = (newValue.temperature, newValue.topK, newValue.topP) }
    }
    // The architecture, both ways, and what the model settings must agree on: ArchitectureSettings.swift.

    // MARK: The table

    /// The table of settings, in the order `show` lists them: the engine's declarations (`Setting.all`), each with
    /// where its value lives.
    public static let keys: [SettingKey] = Setting.all.map { declaration in
        guard let storage = storage[declaration.name] else {
            preconditionFailure("the setting '\(declaration.name)' is declared but has no property in Settings")
        }
        return SettingKey(declaration: declaration, storage: storage)
    }

    /// Which property holds each declared setting, by the declaration's name (a property cannot be found from its
    /// name at run time: this is the one place that pairs them).
    static let storage: [String: SettingStorage] = [
        "arch": .arch(\.arch), "embed": .integer(\.embed), "hidden": .integer(\.hidden), "layers": .integer(\.layers),
        "heads": .integer(\.heads), "context": .integer(\.context), "bias": .flag(\.bias),
        "dropout": .float(\.dropout), "seq": .integer(\.seq), "batch": .integer(\.batch), "lr": .float(\.lr),
        "clip": .float(\.clip), "warmup": .integer(\.warmup), "decay": .integer(\.decay), "wd": .float(\.wd),
        "val": .double(\.val), "lowercase": .flag(\.lowercase), "ascii": .flag(\.ascii), "seed": .unsigned(\.seed),
        "temp": .float(\.temp), "topk": .integer(\.topk), "topp": .float(\.topp), "length": .integer(\.length),
        "samples": .integer(\.samples), "bf16": .flag(\.bf16), "eval": .integer(\.eval), "keepbest": .file(\.keepbest),
        "autosave": .interval(\.autosave), "log": .file(\.log), "timing": .flag(\.timing), "pager": .flag(\.pager), "threads": .integer(\.threads),
    ]

    /// The key called `name` (or one of the aliases `len`, `temperature`, `top_k`, `top_p`; `cell`, the recurrent
    /// three of `arch`, is a key of its own that `show` does not list).
    public static func key(named name: String) -> SettingKey? {
        if name == Setting.cell.name { return cellKey }
        let canonical = ["len": "length", "temperature": "temp", "top_k": "topk", "top_p": "topp"][name] ?? name
        return keys.first { $0.name == canonical }
    }

    // MARK: Checkpoints

    /// The settings a checkpoint stores as the shell's own (`settings` metadata): those of the run not carried by the
    /// model, training or sampling fields. Not the preferences of the person or the machine (`timing`, `pager`,
    /// `threads`): loading a file made elsewhere must not turn this session's pager back on or set its threads to
    /// another machine's count.
    public var checkpointSettings: [String: String] {
        var saved: [String: String] = [:]
        for key in Self.keys where ["seed", "length", "eval"].contains(key.name) {
            saved[key.name] = key.get(self)
        }
        return saved
    }

    /// Preferences that files written before they were left out still hold: skipped when read, without a note.
    static let preferencesInOlderFiles: Set<String> = ["timing", "pager", "threads"]

    /// These settings with everything `checkpoint` restores: the architecture, normalisation, training and sampling
    /// settings, and the shell's own (`checkpointSettings`). Settings the file does not mention keep their values.
    /// The `settings` metadata may only restore the shell's own: the others come from the checked fields. An entry
    /// that is not one of them, or does not read, is left out and named in `notes`.
    public func restoring(_ checkpoint: Checkpoint) -> (settings: Settings, notes: [String]) {
        var restored = self
        restored.adoptArchitecture(of: checkpoint.architecture)
        restored.normalization = checkpoint.vocabulary.normalization
        // What the file does not hold is back to its default, so nothing of the session before leaks into it.
        var defaulted: [String] = []
        if let training = checkpoint.training {
            restored.training = training.settings
            restored.val = training.validationFraction
        } else {
            restored.training = TrainingSettings()
            if restored.training != self.training {
                defaulted.append("no training settings: seq, batch, lr, clip, warmup, decay and wd are back to their defaults")
            }
        }
        if let sampling = checkpoint.sampling {
            restored.sampling = sampling
        } else {
            restored.sampling = SamplingSettings()
            if restored.sampling != self.sampling {
                defaulted.append("no sampling settings: temp, topk and topp are back to their defaults")
            }
        }
        var leftOut: [String] = []
        let own = Set(checkpointSettings.keys)
        for (name, value) in checkpoint.settings.sorted(by: { $0.key < $1.key })
        where !Self.preferencesInOlderFiles.contains(name) {
            guard own.contains(name), let key = Self.key(named: name), (try? key.set(&restored, value)) != nil else {
                leftOut.append(name)
                continue
            }
        }
        var notes = leftOut.isEmpty ? [] : ["left out stored settings this charlm does not take from a file: " + listed(leftOut, nameLimit: 20)]
        // The model reads text as it was trained to: texts loaded from now on are normalised its way.
        for (name, was, now) in [("lowercase", lowercase, restored.lowercase), ("ascii", ascii, restored.ascii)] where was != now {
            notes.append("\(name) is now \(now ? "on" : "off"), as the model was trained; text loaded next is read that way")
        }
        notes += defaulted.map { "the file holds " + $0 }
        if let config = checkpoint.architecture as? TransformerConfig, restored.seq > config.context {
            notes.append("seq \(restored.seq) is longer than this model's context \(config.context): `set seq \(config.context)` "
                         + "(or less) before training")
        }
        return (restored, notes)
    }
}

/// One row of the settings table: a declaration and where its value lives in `Settings`.
public struct SettingKey: Sendable {
    public let declaration: SettingDeclaration
    let storage: SettingStorage
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
    public func get(_ settings: Settings) -> String { storage.get(settings) }
    /// Reads `text` into the setting, or throws the declaration's range error.
    public func set(_ settings: inout Settings, _ text: String) throws { try storage.set(&settings, text, declaration) }
}

/// Where a setting's value lives in `Settings`, and how it is shown and read as text (range errors from the
/// declaration).
struct SettingStorage: Sendable {
    let get: @Sendable (Settings) -> String
    let set: @Sendable (inout Settings, String, SettingDeclaration) throws -> Void

    static func integer(_ path: WritableKeyPath<Settings, Int> & Sendable) -> SettingStorage {
        SettingStorage(get: { String($0[keyPath: path]) }) { settings, text, declaration in
            guard let value = Int(text) else { throw declaration.outOfRange(text) }
            do { try declaration.check(value) } catch { throw declaration.outOfRange(text) }
            settings[keyPath: path] = value
        }
    }

    static func unsigned(_ path: WritableKeyPath<Settings, UInt64> & Sendable) -> SettingStorage {
        SettingStorage(get: { String($0[keyPath: path]) }) { settings, text, declaration in
            guard let value = UInt64(text) else { throw declaration.outOfRange(text) }
            settings[keyPath: path] = value
        }
    }

    static func float(_ path: WritableKeyPath<Settings, Float> & Sendable) -> SettingStorage {
        SettingStorage(get: { formatNumber($0[keyPath: path]) }) { settings, text, declaration in
            // In range as typed, and still in range (and not rounded to 0) as the float32 it is stored as.
            guard let number = decimalNumber(text), declaration.domain.contains(number) else { throw declaration.outOfRange(text) }
            guard declaration.domain.contains(Double(Float(number))), Float(number).isNormal || number == 0 else {
                throw CharLMError.outOfRange(setting: declaration.name, rule: declaration.domain.rule
                    + ", and a 32-bit float (at least 1.2e-38, or 0)", got: text)
            }
            settings[keyPath: path] = Float(number) + 0  // -0 becomes 0
        }
    }

    static func double(_ path: WritableKeyPath<Settings, Double> & Sendable) -> SettingStorage {
        SettingStorage(get: { formatSettingNumber($0[keyPath: path]) }) { settings, text, declaration in
            guard let value = decimalNumber(text), declaration.domain.contains(value) else { throw declaration.outOfRange(text) }
            settings[keyPath: path] = value + 0
        }
    }

    /// A file name or `off` (a file called off is `./off`). `~` is expanded when the file is used.
    static func file(_ path: WritableKeyPath<Settings, String?> & Sendable) -> SettingStorage {
        SettingStorage(get: { $0[keyPath: path] ?? "off" }) { settings, text, declaration in
            guard !text.isEmpty, !text.hasSuffix("/") else { throw declaration.outOfRange(text) }
            // `on` (or yes, true) is a switch, not the name of a file to write.
            guard !["on", "yes", "true"].contains(text.lowercased()) else {
                throw CharLMError.outOfRange(setting: declaration.name, rule: "a file name (there is no `on`: name the file), or off", got: text)
            }
            settings[keyPath: path] = text.lowercased() == "off" ? nil : text
        }
    }

    /// A duration with its unit (90s, 10m, 2h) or `off`.
    static func interval(_ path: WritableKeyPath<Settings, Double?> & Sendable) -> SettingStorage {
        SettingStorage(get: { $0[keyPath: path].map(formatDuration) ?? "off" }) { settings, text, declaration in
            if text.lowercased() == "off" {
                settings[keyPath: path] = nil
                return
            }
            guard let seconds = parseDuration(text), declaration.domain.contains(seconds) else { throw declaration.outOfRange(text) }
            settings[keyPath: path] = seconds
        }
    }

    /// One of the architectures, by name.
    static func arch(_ path: WritableKeyPath<Settings, Arch> & Sendable) -> SettingStorage {
        SettingStorage(get: { $0[keyPath: path].rawValue }) { settings, text, declaration in
            guard let arch = Arch(rawValue: text.lowercased()) else { throw declaration.outOfRange(text) }
            settings[keyPath: path] = arch
        }
    }

    static func flag(_ path: WritableKeyPath<Settings, Bool> & Sendable) -> SettingStorage {
        SettingStorage(get: { $0[keyPath: path] ? "on" : "off" }) { settings, text, declaration in
            switch text.lowercased() {
            case "on", "true", "yes", "1": settings[keyPath: path] = true
            case "off", "false", "no", "0": settings[keyPath: path] = false
            default: throw declaration.outOfRange(text)
            }
        }
    }
}
