// The errors CharLM throws. Each case carries the offending value and renders a message that says what was wrong
// and what to do about it. Libraries throw; only the executable decides exit codes.

import Foundation

/// Everything that can go wrong in the engine, with a human-readable `description`.
public enum CharLMError: Error, Equatable, CustomStringConvertible {
    case fileNotFound(path: String)
    case isDirectory(path: String)
    /// A FIFO, a device or a socket where a file was expected.
    case notARegularFile(path: String, kind: String)
    /// `limit` says what sets the maximum ("what fits in memory now", "a prompt file").
    case fileTooLarge(path: String, bytes: Int, maximum: Int, limit: String)
    /// What a configuration needs is more than the machine has: `what` needs `bytes`, `available` can be had.
    case notEnoughMemory(what: String, bytes: Int, available: Int, hint: String)
    /// A number a file or a user supplied that is beyond what charlm counts to.
    case tooLarge(what: String, value: String, maximum: String)
    /// Ctrl-C stopped the work; nothing was changed.
    case cancelled
    case unreadable(path: String, reason: String)
    case emptyFile(path: String)
    case binaryFile(path: String, reason: String)
    case nothingLeftAfterNormalization(path: String, removed: Int)
    case vocabularyTooLarge(size: Int)
    case corpusTooShort(split: String, tokens: Int, needed: Int, seq: Int)
    /// A setting's value outside what its declaration (SettingDeclarations.swift) accepts; `rule` states the range.
    case outOfRange(setting: String, rule: String, got: String)
    /// T steps asked of a model that sees at most `context` positions (the transformer).
    case sequenceLongerThanContext(seq: Int, context: Int)
    case parameterCountMismatch(expected: Int, got: Int)
    case batchShapeMismatch(sequences: Int, length: Int)
    case optimizerStateMismatch
    case emptyPrompt
    case badVocabulary(problem: String)
    case tokenOutOfRange(token: Int, vocabularySize: Int)
    case nonFiniteLoss(step: Int, loss: Double)
    case nonFiniteGradient(step: Int)
    case nonFiniteValidation(step: Int)
    /// An update left a parameter NaN or infinite.
    case nonFiniteParameters(step: Int, index: Int)
    /// The corpus was split with no validation part (`val` 0).
    case noValidationSplit
    /// Something asked for that cannot be done as things are; the text says why and what to do.
    case refused(String)
    case badCheckpoint(path: String, problem: String)
    case saveFailed(path: String, reason: String)
    case appendFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "no such file '\(path)': check the path"
        case .isDirectory(let path):
            return "'\(path)' is a directory, not a text file: name a file inside it"
        case .notARegularFile(let path, let kind):
            return "'\(path)' is \(kind), not a regular file: name a file"
        case .fileTooLarge(let path, let bytes, let maximum, let limit):
            // Rounded sizes that read alike ("10 MB ... 10 MB") are said in bytes.
            let (size, most) = formatBytes(bytes) == formatBytes(maximum)
                ? ("\(grouped(bytes)) bytes", "\(grouped(maximum)) bytes") : (formatBytes(bytes), formatBytes(maximum))
            return "'\(path)' is \(size) or more; the most for \(limit) is \(most)"
        case .notEnoughMemory(let what, let bytes, let available, let hint):
            // the check allows `usableShare` of what is available (Resources.swift): say both, or the figures disagree
            let usable = Int(Double(available) * MemoryBudget.usableShare)
            return "\(what) needs about \(formatBytes(bytes)) of memory; the machine has \(formatBytes(available)) available, "
                + "of which charlm takes at most \(Int(MemoryBudget.usableShare * 100))% (\(formatBytes(usable))): \(hint)"
        case .tooLarge(let what, let value, let maximum):
            return "\(what) is \(value); charlm counts to at most \(maximum)"
        case .cancelled:
            return "stopped by Ctrl-C; nothing was changed"
        case .unreadable(let path, let reason):
            return "cannot read '\(path)': \(reason)"
        case .emptyFile(let path):
            return "'\(path)' is empty: a corpus needs some text"
        case .binaryFile(let path, let reason):
            return "'\(path)' looks like a binary file (\(reason)): load a UTF-8 text file (a checkpoint cut to its first few bytes looks like this too)"
        case .nothingLeftAfterNormalization(let path, let removed):
            return "'\(path)' has no characters left after normalisation (\(removed) removed): "
                + "turn `ascii` off to keep non-ASCII text"
        case .vocabularyTooLarge(let size):
            return "the text has \(size) distinct characters; charlm supports at most 65,535: "
                + "turn `ascii` on or clean the text"
        case .corpusTooShort(let split, let tokens, let needed, let seq):
            return "the \(split) split has \(tokens) character\(tokens == 1 ? "" : "s"); it needs at least seq+1 = \(needed) "
                + "(seq is \(seq)): " + (split == "training" ? "lower `val` (the share held out), " : "")
                + (seq > 1 ? "lower `seq` or load more text" : "load more text")
        case .outOfRange(let setting, let rule, let got):
            return "\(setting) must be \(rule); got '\(abbreviated(got))'"
        case .sequenceLongerThanContext(let seq, let context):
            return "seq \(seq) is longer than the model's context \(context): the transformer attends over at most "
                + "\(context) characters; lower `seq` to \(context) or less (or raise `context`, then `reset`)"
        case .parameterCountMismatch(let expected, let got):
            return "the model needs \(expected) parameter values; got \(got)"
        case .batchShapeMismatch(let sequences, let length):
            return "a batch must be \(sequences) sequences of \(length) tokens"
        case .optimizerStateMismatch:
            return "the optimizer state does not match the model's size"
        case .emptyPrompt:
            return "the prompt is empty: feed at least one character"
        case .badVocabulary(let problem):
            return "the vocabulary \(problem)"
        case .tokenOutOfRange(let token, let vocabularySize):
            return "token \(token) is outside the vocabulary of \(vocabularySize) characters"
        case .nonFiniteLoss(let step, let loss):
            return "training stopped at step \(step): the loss became \(loss.isNaN ? "NaN" : "infinite"). Parameters and optimizer state "
                + "are as they were before that step: lower `lr` or `clip`, or `reset`"
        case .badCheckpoint(let path, let problem):
            // The problem quotes what the file holds (names, numbers): a hostile file does not get a page of it.
            return "'\(path)' is not a usable checkpoint: \(abbreviated(problem, limit: 400))"
        case .saveFailed(let path, let reason):
            return "could not save '\(path)': \(reason)"
        case .appendFailed(let path, let reason):
            return "could not append to '\(path)': \(reason)"
        case .nonFiniteValidation(let step):
            return "the validation loss after step \(step) is not finite: the parameters have diverged. `reset`, or load a "
                + "checkpoint from before, and train with a lower `lr` or `clip`"
        case .nonFiniteParameters(let step, let index):
            return "training stopped at step \(step): the update made parameter \(index) infinite or NaN (the optimizer's "
                + "state is unusable). The model is damaged: `reset`, or load a checkpoint from before"
        case .refused(let reason):
            return reason
        case .noValidationSplit:
            return "there is no validation text (`val` is 0): `set val 0.1` and load the text again"
        case .nonFiniteGradient(let step):
            return "training stopped at step \(step): the gradient is not finite. Parameters and optimizer state "
                + "are as they were before that step: lower `lr` or `clip`, or `reset`"
        }
    }
}

/// A byte count as people read it: 512 bytes, 1.5 KB, 137 MB, 21.3 GB (powers of 1000).
public func formatBytes(_ bytes: Int) -> String {
    let value = Double(bytes)
    if value < 1000 { return "\(bytes) bytes" }
    for (unit, scale) in [("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12)] where value < scale * 1000 {
        let scaled = value / scale
        return (scaled < 10 ? String(format: "%.1f", scaled) : String(format: "%.0f", scaled)) + " " + unit
    }
    return String(format: "%.0f TB", value / 1e12)
}

/// 1234567 -> "1,234,567": counts in messages and reports, engine and shell alike.
public func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var result = ""
    for (index, character) in digits.enumerated() {
        if index > 0 && (digits.count - index) % 3 == 0 { result.append(",") }
        result.append(character)
    }
    return (value < 0 ? "-" : "") + result
}

/// `text` cut to `limit` Unicode scalars with "…" in the middle, so a message quoting what a user typed or a file
/// holds stays readable. Scalars, not characters: one character may join millions of combining marks.
public func abbreviated(_ text: String, limit: Int = 40) -> String {
    let scalars = text.unicodeScalars
    guard scalars.count > limit else { return text }
    var cut = String.UnicodeScalarView()
    cut.append(contentsOf: scalars.prefix(limit / 2))
    cut.append("…")
    cut.append(contentsOf: scalars.suffix(limit / 2 - 1))
    return String(cut)
}

/// Names for a message or note, each abbreviated and at most `limit` of them: "a, b, c and 1,231 more".
public func listed(_ names: [String], limit: Int = 8, nameLimit: Int = 40) -> String {
    let shown = names.prefix(limit).map { abbreviated($0, limit: nameLimit) }.joined(separator: ", ")
    return names.count > limit ? shown + " and \(grouped(names.count - limit)) more" : shown
}

/// A count and its noun, the noun plural unless the count is one: "1 character", "1,234 characters".
public func quantity(_ count: Int, _ noun: String, plural: String? = nil) -> String {
    "\(grouped(count)) " + (count == 1 ? noun : plural ?? noun + "s")
}
