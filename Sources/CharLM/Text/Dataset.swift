// The data the trainer sees: a corpus's tokens (Corpus.swift) split into training and validation ranges, random
// training batches, and the fixed evaluation windows. Windows are index ranges into the token buffer; nothing is
// copied until a batch is gathered into the model's input buffers.

/// A corpus split into training and validation ranges, with batch and window access.
public struct Dataset: Sendable {
    public let tokens: TokenBuffer
    /// Token positions used for training: the first part of the corpus.
    public let trainRange: Range<Int>
    /// Token positions used for validation: the last `validationFraction` of the corpus.
    public let validationRange: Range<Int>
    /// The share of the corpus kept for validation.
    public let validationFraction: Double

    /// Splits at `Int(n * (1 - validationFraction))`, as the PyTorch reference does with `int(0.9 * N)`.
    public init(tokens: TokenBuffer, validationFraction: Double) throws {
        try Setting.val.check(validationFraction)
        let split = Int(Double(tokens.count) * (1.0 - validationFraction))
        self.tokens = tokens
        self.validationFraction = validationFraction
        trainRange = 0..<split
        validationRange = split..<tokens.count
    }

    /// Checks that the training split holds at least one window of T inputs and its targets.
    public func checkTrainable(length T: Int) throws {
        if trainRange.count < T + 1 {
            throw CharLMError.corpusTooShort(split: "training", tokens: trainRange.count, needed: T + 1, seq: T)
        }
    }

    /// Fills time-major (T, B) `inputs` and `targets` with B windows at random offsets in the training split.
    /// Window b starting at s has inputs tokens[s ..< s+T] and targets tokens[s+1 ..< s+T+1].
    public func sampleBatch(
        length T: Int, batch B: Int, generator: inout SeededGenerator,
        inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>
    ) {
        let offsetCount = trainRange.count - T  // valid starts: 0 ..< n - T
        for b in 0..<B {
            let start = trainRange.lowerBound + generator.nextIndex(below: offsetCount)
            tokens.gather(start: start, count: T, into: inputs + b, stride: B)
            tokens.gather(start: start + 1, count: T, into: targets + b, stride: B)
        }
    }

    /// The number of evaluation windows of T inputs in the validation split: floor((n - 1) / T).
    public func validationWindowCount(length T: Int) -> Int {
        validationRange.isEmpty ? 0 : (validationRange.count - 1) / T
    }

    /// Fills time-major (T, count) `inputs` and `targets` with validation windows first ..< first + count, where
    /// window k predicts tokens[k*T+1 ... k*T+T] from tokens[k*T ... k*T+T-1] (offsets within the split).
    public func validationBatch(
        length T: Int, first: Int, count: Int,
        inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>
    ) {
        for b in 0..<count {
            let start = validationRange.lowerBound + (first + b) * T
            tokens.gather(start: start, count: T, into: inputs + b, stride: count)
            tokens.gather(start: start + 1, count: T, into: targets + b, stride: count)
        }
    }
}
