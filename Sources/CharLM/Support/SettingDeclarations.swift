// Every user-visible setting, declared once: name, group, the values it accepts, default and one-line meaning, and
// `Setting.all`, the one list of them. The engine's `validate()`s check their values against these declarations, its
// settings structs and charlm-bench's options take their defaults from them, and the shell's settings, `set`, `show`,
// help and completion are generated from them (CharLMShell/Session/Settings.swift), so a range or a default is stated
// in one place and every message about it states the same. What a setting does lives with the code that uses it;
// this file only says what it may be.

import Foundation

/// What a setting affects, which decides when a change takes effect.
public enum SettingGroup: String, Sendable {
    case model
    case data
    case training
    case sampling
    case system

    /// When a change takes effect, for the groups where that is not at once (`help SETTING` says it).
    public var note: String? {
        switch self {
        case .model: "the architecture: a trained model keeps its own until `reset`"
        case .data: "applies when text is next loaded"
        case .training, .sampling, .system: nil
        }
    }
}

/// The values a setting accepts, and the sentence that states them.
public enum SettingDomain: Sendable, Equatable {
    /// A whole number in the range.
    case integer(ClosedRange<Int>)
    /// Any whole number a UInt64 holds (seeds).
    case unsigned
    /// A finite number between `lower` and `upper`, each end included or not.
    case number(lower: Double, lowerIncluded: Bool, upper: Double, upperIncluded: Bool)
    /// on or off.
    case flag
    /// A file name, or off.
    case file
    /// A duration written with its unit (90s, 10m, 1h), in this range of seconds, or off.
    case interval(ClosedRange<Double>)
    /// One of these words.
    case choice([String])

    /// "a whole number from 1 to 8192", "a number from 0 to 100", "a number above 0, at most 1", ...
    public var rule: String {
        switch self {
        case .integer(let range): return "a whole number from \(range.lowerBound) to \(range.upperBound)"
        case .unsigned: return "a whole number from 0 to \(UInt64.max)"
        case .flag: return "on or off"
        case .file: return "a file name, or off"
        case .choice(let words): return "one of " + words.joined(separator: ", ")
        case .interval(let range):
            return "a duration from \(formatDuration(range.lowerBound)) to \(formatDuration(range.upperBound)) "
                + "written with its unit (90s, 10m, 2h), or off"
        case .number(let lower, let lowerIncluded, let upper, let upperIncluded):
            let (low, high) = (formatSettingNumber(lower), formatSettingNumber(upper))
            switch (lowerIncluded, upperIncluded) {
            case (true, true): return "a number from \(low) to \(high)"
            case (true, false): return "a number from \(low) up to but not including \(high)"
            case (false, true): return "a number above \(low), at most \(high)"
            case (false, false): return "a number above \(low) and below \(high)"
            }
        }
    }

    /// Whether `value` lies in the domain (for `.integer`, `.unsigned`, `.number`, and `.interval` in seconds).
    public func contains(_ value: Double) -> Bool {
        switch self {
        case .integer(let range): return value.rounded() == value && value >= Double(range.lowerBound) && value <= Double(range.upperBound)
        case .unsigned: return value.rounded() == value && value >= 0 && value <= Double(UInt64.max)
        case .flag, .file, .choice: return false
        case .interval(let range): return range.contains(value)
        case .number(let lower, let lowerIncluded, let upper, let upperIncluded):
            guard value.isFinite else { return false }
            return (lowerIncluded ? value >= lower : value > lower) && (upperIncluded ? value <= upper : value < upper)
        }
    }
}

/// One setting: its name, group, domain, default (as `show` prints it) and meaning.
public struct SettingDeclaration: Sendable, Equatable {
    public let name: String
    public let group: SettingGroup
    public let domain: SettingDomain
    /// The default, as typed at the prompt.
    public let defaultText: String
    /// One line: what it means.
    public let summary: String

    /// The error for a value outside the domain, or text that is no value at all.
    public func outOfRange(_ got: String) -> CharLMError {
        .outOfRange(setting: name, rule: domain.rule, got: got)
    }

    /// Throws `outOfRange` unless `value` lies in the domain.
    public func check(_ value: Int) throws {
        guard domain.contains(Double(value)) else { throw outOfRange(String(value)) }
    }

    /// Throws `outOfRange` unless `value` is finite and lies in the domain.
    public func check(_ value: Double) throws {
        guard domain.contains(value) else { throw outOfRange(formatSettingNumber(value)) }
    }

    /// Throws `outOfRange` unless `value` is finite and lies in the domain.
    public func check(_ value: Float) throws {
        guard domain.contains(Double(value)) else { throw outOfRange(formatSettingNumber(value)) }
    }

    // The default, typed: what every default in the package (the engine's settings structs, the shell's `Settings`,
    // charlm-bench's options) is read from, so each is written once, above.

    /// The default as an integer (for `.integer` declarations).
    public var defaultInteger: Int { Int(defaultText)! }
    /// The default as a whole number (for `.unsigned` declarations).
    public var defaultUnsigned: UInt64 { UInt64(defaultText)! }
    /// The default as a number (for `.number` declarations).
    public var defaultNumber: Double { Double(defaultText)! }
    /// The default as a float32 number (for `.number` declarations stored as Float).
    public var defaultFloat: Float { Float(defaultNumber) }
    /// The default as on (true) or off (false) (for `.flag` declarations).
    public var defaultFlag: Bool { defaultText == "on" }
    /// The default as one of a `.choice` declaration's words, read as `T` (`LayerKind` for `cell`).
    public func defaultChoice<T: RawRepresentable>(_ type: T.Type = T.self) -> T where T.RawValue == String {
        T(rawValue: defaultText)!
    }
}

/// The declarations, in the order `show` lists them.
public enum Setting {
    public static let arch = SettingDeclaration(
        name: "arch", group: .model, domain: .choice(LayerKind.allCases.map(\.rawValue) + ["transformer"]),
        defaultText: "lstm", summary: "the model: lstm, gru, rnn (vanilla, tanh) or transformer")
    /// The recurrent three of `arch` under their old name: `set cell gru` is `set arch gru` (not in `all`: `show`
    /// lists `arch`).
    public static let cell = SettingDeclaration(
        name: "cell", group: .model, domain: .choice(LayerKind.allCases.map(\.rawValue)), defaultText: "lstm",
        summary: "recurrent cell: lstm, gru or rnn (vanilla, tanh); `arch` says the same and also names the transformer")
    public static let embed = SettingDeclaration(
        name: "embed", group: .model, domain: .integer(1...8192), defaultText: "64", summary: "embedding width E")
    public static let hidden = SettingDeclaration(
        name: "hidden", group: .model, domain: .integer(1...8192), defaultText: "256",
        summary: "hidden width H of each recurrent layer")
    public static let layers = SettingDeclaration(
        name: "layers", group: .model, domain: .integer(1...16), defaultText: "2",
        summary: "number of layers L: recurrent layers, or transformer blocks")
    public static let dropout = SettingDeclaration(
        name: "dropout", group: .model, domain: .number(lower: 0, lowerIncluded: true, upper: 1, upperIncluded: false),
        defaultText: "0",
        summary: "dropout while training: between recurrent layers, or in the transformer")
    // The transformer's own settings (Models/Transformer/).
    public static let heads = SettingDeclaration(
        name: "heads", group: .model, domain: .integer(1...256), defaultText: "4",
        summary: "attention heads per transformer layer (must divide embed)")
    public static let context = SettingDeclaration(
        name: "context", group: .model, domain: .integer(1...10_000), defaultText: "256",
        summary: "the transformer's context (block size): the most characters it attends over")
    public static let bias = SettingDeclaration(
        name: "bias", group: .model, domain: .flag, defaultText: "off",
        summary: "biases in the transformer's linear layers and LayerNorms")
    public static let seq = SettingDeclaration(
        name: "seq", group: .training, domain: .integer(1...10_000), defaultText: "100",
        summary: "characters per training window T")
    public static let batch = SettingDeclaration(
        name: "batch", group: .training, domain: .integer(1...4096), defaultText: "64", summary: "windows per batch B")
    public static let lr = SettingDeclaration(
        name: "lr", group: .training, domain: .number(lower: 0, lowerIncluded: false, upper: 1, upperIncluded: true),
        defaultText: "0.002", summary: "Adam learning rate")
    public static let clip = SettingDeclaration(
        name: "clip", group: .training, domain: .number(lower: 0, lowerIncluded: true, upper: 1e6, upperIncluded: true),
        defaultText: "5", summary: "gradient-norm limit (0 = off)")
    public static let warmup = SettingDeclaration(
        name: "warmup", group: .training, domain: .integer(0...10_000_000), defaultText: "0",
        summary: "steps of linear learning-rate warm-up (0 = none)")
    public static let decay = SettingDeclaration(
        name: "decay", group: .training, domain: .integer(0...10_000_000), defaultText: "0",
        summary: "step at which lr has decayed (cosine) to lr/10 (0 = constant)")
    public static let wd = SettingDeclaration(
        name: "wd", group: .training, domain: .number(lower: 0, lowerIncluded: true, upper: 10, upperIncluded: true),
        defaultText: "0", summary: "AdamW weight decay on the weight matrices (0 = plain Adam)")
    public static let keepbest = SettingDeclaration(
        name: "keepbest", group: .training, domain: .file, defaultText: "off",
        summary: "also write the best model so far to this file as validation improves")
    public static let autosave = SettingDeclaration(
        name: "autosave", group: .training, domain: .interval(1...(365 * 24 * 3600)), defaultText: "off",
        summary: "while training, and at its end, save the session this often (where a bare `save` writes)")
    public static let log = SettingDeclaration(
        name: "log", group: .training, domain: .file, defaultText: "off",
        summary: "append a line per step and validation to this file (CSV; .jsonl/.json: JSON lines)")
    public static let val = SettingDeclaration(
        name: "val", group: .data, domain: .number(lower: 0, lowerIncluded: true, upper: 1, upperIncluded: false),
        defaultText: "0.1", summary: "share of the corpus kept for validation")
    public static let lowercase = SettingDeclaration(
        name: "lowercase", group: .data, domain: .flag, defaultText: "on", summary: "lowercase the text when loading")
    public static let ascii = SettingDeclaration(
        name: "ascii", group: .data, domain: .flag, defaultText: "on",
        summary: "fold to ASCII when loading (é -> e, ’ -> ')")
    public static let seed = SettingDeclaration(
        name: "seed", group: .system, domain: .unsigned, defaultText: "1337",
        summary: "seed for initialisation, batches and sampling")
    public static let temp = SettingDeclaration(
        name: "temp", group: .sampling, domain: .number(lower: 0, lowerIncluded: true, upper: 100, upperIncluded: true),
        defaultText: "1", summary: "sampling temperature (0 = always the most likely)")
    public static let topk = SettingDeclaration(
        name: "topk", group: .sampling, domain: .integer(0...65_535), defaultText: "0",
        summary: "sample from the k most likely only (0 = off)")
    public static let topp = SettingDeclaration(
        name: "topp", group: .sampling, domain: .number(lower: 0, lowerIncluded: false, upper: 1, upperIncluded: true),
        defaultText: "1", summary: "sample from the smallest set with this mass (1 = off)")
    public static let length = SettingDeclaration(
        name: "length", group: .sampling, domain: .integer(1...1_000_000), defaultText: "500",
        summary: "characters `gen` writes by default")
    public static let samples = SettingDeclaration(
        name: "samples", group: .sampling, domain: .integer(1...256), defaultText: "1",
        summary: "independent samples `gen` writes, generated together")
    public static let bf16 = SettingDeclaration(
        name: "bf16", group: .sampling, domain: .flag, defaultText: "off",
        summary: "LSTM, GRU and RNN `gen` reads bfloat16 weights: faster, within 2% of float32")
    public static let eval = SettingDeclaration(
        name: "eval", group: .training, domain: .integer(0...1_000_000), defaultText: "250",
        summary: "validate every this many steps while training (0 = only at the end)")
    public static let timing = SettingDeclaration(
        name: "timing", group: .system, domain: .flag, defaultText: "off",
        summary: "print how long each command took (psql's \\timing)")
    public static let pager = SettingDeclaration(
        name: "pager", group: .system, domain: .flag, defaultText: "on",
        summary: "at a terminal, output taller than the screen goes through $PAGER (default less -FRX), as psql's \\pset pager")
    public static let threads = SettingDeclaration(
        name: "threads", group: .system, domain: .integer(1...256),
        defaultText: String(min(256, max(1, ProcessInfo.processInfo.activeProcessorCount))), summary: "compute threads")

    /// Every declaration, in the order `show` lists them.
    public static let all: [SettingDeclaration] = [
        arch, embed, hidden, layers, heads, context, bias, dropout, seq, batch, lr, clip, warmup, decay, wd, val, lowercase, ascii, seed, temp, topk,
        topp, length, samples, bf16, eval, keepbest, autosave, log, timing, pager, threads,
    ]
}

/// Seconds as a duration with its unit, the way `autosave` and `train` read them: 90s, 10m, 1.5h.
public func formatDuration(_ seconds: Double) -> String {
    if seconds >= 3600 && (seconds / 3600 * 10).rounded() == seconds / 3600 * 10 { return formatSettingNumber(seconds / 3600) + "h" }
    if seconds >= 60 && (seconds / 60 * 10).rounded() == seconds / 60 * 10 { return formatSettingNumber(seconds / 60) + "m" }
    return formatSettingNumber((seconds * 1000).rounded() / 1000) + "s"
}

/// Reads a duration written with its unit (90s, 10m, 2h, 1.5h); nil for anything else.
public func parseDuration(_ text: String) -> Double? {
    let lowered = text.lowercased()
    for (suffix, scale) in [("s", 1.0), ("m", 60.0), ("h", 3600.0)] where lowered.hasSuffix(suffix) {
        let number = lowered.dropLast()
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let value = Double(number),
              value.isFinite else { return nil }
        return value * scale
    }
    return nil
}

/// A number as people write it: 0.002, 5, 0.8, 1e-06 (the shortest text that reads back as the same value).
public func formatSettingNumber(_ value: Double) -> String { withoutPointZero(String(value)) }

/// A Float as people write it: 0.002, not 0.0020000000949949026.
public func formatSettingNumber(_ value: Float) -> String { withoutPointZero(String(value)) }

private func withoutPointZero(_ text: String) -> String { text.hasSuffix(".0") ? String(text.dropLast(2)) : text }
