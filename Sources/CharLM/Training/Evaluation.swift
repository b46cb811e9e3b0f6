// The validation protocol, written once for every model family: non-overlapping windows of T inputs from the
// validation split's first token (floor((n-1)/T) of them), each from an empty state (a zero recurrent state, an
// empty n-gram history), every predicted character counted, mean natural-log cross-entropy. The family only scores
// a batch of windows (`WindowScorer`, Models/LanguageModel.swift).

import Foundation

/// A validation result in the three usual units.
public struct Evaluation: Equatable, Sendable {
    /// Mean cross-entropy, nats per character.
    public let nats: Double
    /// Characters predicted.
    public let characters: Int
    /// Bits per character.
    public var bits: Double { nats / log(2) }
    /// exp(nats).
    public var perplexity: Double { exp(nats) }

    public init(nats: Double, characters: Int) {
        self.nats = nats
        self.characters = characters
    }
}

/// The windows of the validation protocol for T steps: how many, and that there is at least one.
public struct ValidationWindows: Sendable {
    /// T.
    public let length: Int
    /// Windows of T inputs (and T targets) in the validation split.
    public let count: Int
    /// Characters predicted: count * T.
    public var characters: Int { count * length }

    /// Throws `noValidationSplit` or `corpusTooShort` when the split holds no window.
    public init(dataset: Dataset, length T: Int) throws {
        guard !dataset.validationRange.isEmpty else { throw CharLMError.noValidationSplit }
        let windows = dataset.validationWindowCount(length: T)
        guard windows > 0 else {
            throw CharLMError.corpusTooShort(
                split: "validation", tokens: dataset.validationRange.count, needed: T + 1, seq: T)
        }
        length = T
        count = windows
    }
}

/// Mean cross-entropy of `model` over the validation split with the protocol above, B windows at a time.
public func evaluate(
    model: any LanguageModel, dataset: Dataset, length T: Int, batch B: Int, context: ComputeContext = .machine,
    cancellation: Cancellation = .never
) throws -> Evaluation {
    let windows = try ValidationWindows(dataset: dataset, length: T)
    let scorer = try model.makeScorer(length: T, batch: min(B, windows.count), context: context)
    return try evaluate(scorer: scorer, dataset: dataset, windows: windows, batch: B, cancellation: cancellation)
}

/// The protocol on a scorer that holds windows of T steps, B at a time (the trainer's own pass, say). `progress`
/// gets the share of the windows scored so far (0 to 1) after each batch of them.
public func evaluate(
    scorer: WindowScorer, dataset: Dataset, length T: Int, batch B: Int, cancellation: Cancellation = .never,
    progress: (Double) -> Void = { _ in }
) throws -> Evaluation {
    try evaluate(scorer: scorer, dataset: dataset, windows: ValidationWindows(dataset: dataset, length: T), batch: B,
                 cancellation: cancellation, progress: progress)
}

private func evaluate(
    scorer: WindowScorer, dataset: Dataset, windows: ValidationWindows, batch B: Int, cancellation: Cancellation,
    progress: (Double) -> Void = { _ in }
) throws -> Evaluation {
    let T = windows.length
    var total = 0.0
    var first = 0
    while first < windows.count {
        try cancellation.check()
        let count = min(B, windows.count - first)
        dataset.validationBatch(length: T, first: first, count: count, inputs: scorer.inputs, targets: scorer.targets)
        total += scorer.crossEntropySum(length: T, batch: count)
        first += count
        progress(Double(first) / Double(windows.count))
    }
    return Evaluation(nats: total / Double(windows.characters), characters: windows.characters)
}
