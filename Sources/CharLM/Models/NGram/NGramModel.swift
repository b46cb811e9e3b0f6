// A count-based character n-gram language model: the baseline the network is measured against. One pass over the
// training split counts every j-gram for j = 1...N in hashed tables (no dense V^N arrays), and interpolated
// Kneser-Ney turns the counts into the models of every order k = 1...N, since each order needs the lower ones
// anyway. `evaluate` follows the validation protocol (Training/Evaluation.swift) in the same units; `logits(after:)`
// and `sample` feed the usual Sampler (temperature, top-k, top-p). Leaves out: modified Kneser-Ney (three discounts
// per level), sentence markers, pruning, and saving the counts to a file. The count tables are NGramCounts.swift;
// the model as a LanguageModel (evaluation and generation through the shared paths) is NGramLanguageModel.swift.
//
// Letters as in LSTM.swift: V vocabulary size, T window length; here also N the highest order counted, k an order
// asked for (k <= N), j a level (1...k), h a context (the j-1 tokens before a predicted token w), h' the context h
// without its oldest token.
//
// Smoothing: interpolated Kneser-Ney, plain (one discount per level and kind of count), after Chen and Goodman
// (1998), section 3.5. A model of order k predicts w from the last min(k-1, L) tokens of a history of L tokens; its
// top level is m = min(k, L+1), and below the top each level backs off to the next, down to the uniform distribution:
//
//     p_0(w)     = 1 / V
//     p_j(w | h) = (max(a_j(h w) - D_j, 0) + D_j T_j(h) p_{j-1}(w | h')) / A_j(h)     if A_j(h) > 0
//     p_j(w | h) = p_{j-1}(w | h')                                                     if A_j(h) = 0 (h unseen)
//
// with A_j(h) = sum_w a_j(h w) and T_j(h) = #{w : a_j(h w) > 0}. At the top level a_m is the raw count c(h w) in the
// training split; below it a_j is the continuation count N1+(. h w), the number of distinct tokens seen just before
// h w (so the unigram level below a bigram is the continuation unigram). D_j = n1 / (n1 + 2 n2) from the
// count-of-counts of the count that level uses (n_r: how many j-grams have count r; the raw and the continuation
// counts each get their own), clamped to [0.1, 0.95]. Counts are whole numbers and D_j < 1, so the probabilities
// after any context sum to 1 over the V tokens, and the uniform term keeps each one above 0.
//
// At the start of a window (L < k-1) the top level is the longest context there is, and it uses raw counts: the
// prediction is then that of the order-(L+1) model, as nothing was unseen to back off from.
//
// Storage: a j-gram (t_1 ... t_j) is packed into one unsigned integer, b = bits(V-1) bits per token, t_j in the lowest
// bits, so its context is the key shifted right by b. One UInt64 holds the keys when N b <= 64 (N up to 8 for
// V <= 256), a UInt128 otherwise; an order whose keys would need more than 128 bits is refused (V above 4096 allows at
// most 9, above 8192 at most 8). Level j holds a Dictionary of its j-grams (raw and continuation count) and one of
// its contexts (the sums A and T of both kinds). Counts are UInt32: a training split above 2^32 - 1 tokens is refused.

import Foundation

/// Why an n-gram model cannot be counted or asked.
public enum NGramError: Error, Equatable, CustomStringConvertible {
    /// An order outside 1...maximum; `maximum` is below `NGramModel.maximumOrder` when V's keys are too wide.
    case orderOutOfRange(order: Int, maximum: Int, vocabularySize: Int)
    /// A model counted up to order `counted` was asked for a higher `order`.
    case orderNotCounted(order: Int, counted: Int)
    /// The training split holds no tokens.
    case emptyTrainingSplit
    /// The count tables could take up to `bytes`, more than the `maximum` allowed.
    case tablesTooLarge(order: Int, trainingTokens: Int, bytes: Int, maximum: Int)

    public var description: String {
        switch self {
        case .orderOutOfRange(let order, let maximum, let vocabularySize):
            if maximum < NGramModel.maximumOrder {
                return "an n-gram order must be a whole number from 1 to \(maximum) with a vocabulary of "
                    + "\(grouped(vocabularySize)) characters (\(maximum) of them fill a 128-bit key); got \(order): lower the order"
            }
            return "an n-gram order must be a whole number from 1 to \(maximum); got \(order)"
        case .orderNotCounted(let order, let counted):
            return "the n-gram model was counted up to order \(counted), so it has no order \(order): count again with order \(order)"
        case .emptyTrainingSplit:
            return "the training split is empty: an n-gram model needs text to count; load more text or lower `val`"
        case .tablesTooLarge(let order, let trainingTokens, let bytes, let maximum):
            return "counting n-grams up to order \(order) over \(grouped(trainingTokens)) training characters may take up to "
                + "\(formatBytes(bytes)) of memory; the limit is \(formatBytes(maximum)): lower the order or load a shorter text"
        }
    }
}

/// What one level of a counted model holds, for reports.
public struct NGramLevelSummary: Equatable, Sendable {
    /// j: the level's grams are j tokens long (its contexts j-1).
    public let level: Int
    /// Distinct j-grams seen in the training split.
    public let distinctGrams: Int
    /// Distinct contexts (j-1 tokens) that something followed.
    public let distinctContexts: Int
    /// D_j on raw counts: the level's discount when it is a model's top level.
    public let discount: Double
    /// D_j on continuation counts: its discount below the top; nil for level N, which is never below the top.
    public let continuationDiscount: Double?
}

/// Interpolated Kneser-Ney character n-gram models of orders 1...N, counted once from a training split.
public struct NGramModel: Sendable {
    /// The highest order that can be counted (fewer for vocabularies above 4096 characters: `maximumOrder(vocabularySize:)`).
    public static let maximumOrder = 10
    /// Where each discount D_j is clamped.
    public static let discountRange: ClosedRange<Double> = 0.1...0.95
    /// Tokens between cancellation checks while counting and evaluating.
    static let checkInterval = 1 << 16

    /// N: the highest order counted; every order 1...N can be asked for.
    public let order: Int
    /// V.
    public let vocabularySize: Int
    /// The tokens counted.
    public let trainingTokens: Int
    private let storage: Storage

    /// The tables, with keys as wide as N tokens of b bits need.
    private enum Storage: Sendable {
        case narrow(CountTables<UInt64>)
        case wide(CountTables<UInt128>)
    }

    /// Bits per token in a packed key: enough for V-1, at least 1.
    static func bitsPerToken(vocabularySize V: Int) -> Int {
        V <= 1 ? 1 : Int.bitWidth - (V - 1).leadingZeroBitCount
    }

    /// The highest order whose keys fit 128 bits with V characters: 10 up to V = 4096, 9 up to 8192, else 8.
    public static func maximumOrder(vocabularySize V: Int) -> Int {
        min(maximumOrder, 128 / bitsPerToken(vocabularySize: V))
    }

    /// An upper bound on the bytes the tables of orders 1...N take while counting M tokens.
    ///
    /// Level j holds at most G_j = min(M - j + 1, V^j) distinct j-grams and C_j = min(M - j + 1, V^(j-1)) contexts.
    /// With K the key's bytes (8 or 16), a j-gram entry takes K + 8 bytes and a context entry K + 16, plus 1/8 of a
    /// byte of occupancy bitmap. A Swift Dictionary fills at most 3/4 of its power-of-two capacity, so a table takes
    /// at most 8/3 slots per entry, and while the largest grows it briefly holds its old slots too (4/3 more):
    ///
    ///     bytes = 8/3 sum_tables(entries x slot) + 4/3 max_tables(entries x slot) + 256 per table
    ///
    /// Computed in Double so no size overflows.
    public static func estimatedBytes(order N: Int, vocabularySize V: Int, trainingTokens M: Int) -> Double {
        let wide = N * bitsPerToken(vocabularySize: V) > 64
        let key = Double(wide ? MemoryLayout<UInt128>.stride : MemoryLayout<UInt64>.stride)
        let gramSlot = key + Double(MemoryLayout<GramCounts>.stride) + 0.125
        let contextSlot = key + Double(MemoryLayout<ContextCounts>.stride) + 0.125
        var total = 0.0
        var largest = 0.0
        for j in 1...max(N, 1) {
            let windows = Double(max(M - j + 1, 0))
            let grams = min(windows, pow(Double(V), Double(j))) * gramSlot
            let contexts = min(windows, pow(Double(V), Double(j - 1))) * contextSlot
            total += grams + contexts + 2 * 256
            largest = max(largest, grams, contexts)
        }
        return 8.0 / 3.0 * total + 4.0 / 3.0 * largest
    }

    /// Counts the training split of `dataset` for orders 1...N.
    ///
    /// - Parameters:
    ///   - vocabularySize: V, the corpus vocabulary's size (every token must be below it).
    ///   - order: N, from 1 to `maximumOrder(vocabularySize:)`.
    ///   - maximumBytes: the memory the tables may take (the shell passes `MemoryBudget.usableBytes`); an
    ///     `estimatedBytes` above it throws `tablesTooLarge` before anything is counted.
    ///   - cancellation: asked every 65,536 tokens; a stop throws `CharLMError.cancelled`.
    public init(dataset: Dataset, vocabularySize V: Int, order N: Int, maximumBytes: Double,
                cancellation: Cancellation = .never) throws {
        try self.init(tokens: dataset.tokens, range: dataset.trainRange, vocabularySize: V, order: N,
                      maximumBytes: maximumBytes, cancellation: cancellation)
    }

    /// Counts `tokens[range]` (the training split) for orders 1...N; see `init(dataset:...)`.
    init(tokens: TokenBuffer, range: Range<Int>, vocabularySize V: Int, order N: Int, maximumBytes: Double,
         cancellation: Cancellation) throws {
        guard V >= 1 else { throw CharLMError.badVocabulary(problem: "is empty: an n-gram model needs at least one character") }
        guard V <= 65_535 else { throw CharLMError.vocabularyTooLarge(size: V) }
        let maximum = Self.maximumOrder(vocabularySize: V)
        guard (1...maximum).contains(N) else {
            throw NGramError.orderOutOfRange(order: N, maximum: maximum, vocabularySize: V)
        }
        let M = range.count
        guard M > 0 else { throw NGramError.emptyTrainingSplit }
        guard M <= Int(UInt32.max) else {
            throw CharLMError.tooLarge(what: "the training split for an n-gram model", value: "\(grouped(M)) characters",
                                       maximum: "\(grouped(Int(UInt32.max))) characters")
        }
        let bytes = Self.estimatedBytes(order: N, vocabularySize: V, trainingTokens: M)
        guard bytes <= maximumBytes else {
            throw NGramError.tablesTooLarge(order: N, trainingTokens: M, bytes: Int(min(bytes, 9e18)),
                                            maximum: Int(max(0, min(maximumBytes, 9e18))))
        }
        let b = Self.bitsPerToken(vocabularySize: V)
        order = N
        vocabularySize = V
        trainingTokens = M
        if N * b <= 64 {
            storage = .narrow(try CountTables(tokens: tokens, range: range, order: N, vocabularySize: V,
                                              bitsPerToken: b, cancellation: cancellation))
        } else {
            storage = .wide(try CountTables(tokens: tokens, range: range, order: N, vocabularySize: V,
                                            bitsPerToken: b, cancellation: cancellation))
        }
    }

    /// Per level j = 1...N: distinct grams and contexts, and the two discounts.
    public var levels: [NGramLevelSummary] {
        switch storage {
        case .narrow(let tables): return tables.summaries
        case .wide(let tables): return tables.summaries
        }
    }

    /// The bytes the tables hold now (from the dictionaries' capacities; at most `estimatedBytes`).
    public var bytes: Int {
        switch storage {
        case .narrow(let tables): return tables.bytes
        case .wide(let tables): return tables.bytes
        }
    }

    /// Throws unless 1 <= k <= N; nil means N.
    func checkedOrder(_ k: Int?) throws -> Int {
        let k = k ?? order
        guard k >= 1 else {
            throw NGramError.orderOutOfRange(order: k, maximum: Self.maximumOrder(vocabularySize: vocabularySize),
                                             vocabularySize: vocabularySize)
        }
        guard k <= order else { throw NGramError.orderNotCounted(order: k, counted: order) }
        return k
    }

    /// Validation loss of the order-k model (nil: N) with the network's protocol: see `evaluateOrders`.
    public func evaluate(dataset: Dataset, length T: Int, order k: Int? = nil,
                         cancellation: Cancellation = .never) throws -> Evaluation {
        let k = try checkedOrder(k)
        let evaluations = try evaluateOrders(dataset: dataset, length: T, upTo: k, cancellation: cancellation)
        return evaluations[k - 1]
    }

    /// Validation losses of the models of orders 1...N (element k-1 is order k), in one pass.
    ///
    /// The protocol of Training/Evaluation.swift (`ValidationWindows`), in one pass for every order: non-overlapping
    /// windows of T inputs from the validation split's first token, floor((n-1)/T) of them, every predicted character
    /// counted, mean natural-log cross-entropy. As the network starts each window from a zero state, each window starts from an empty
    /// history: its t-th prediction (t = 0...T-1) sees the window's first t+1 tokens, of which order k uses the last
    /// min(t+1, k-1). Throws `noValidationSplit` or `corpusTooShort` as the network's evaluation does.
    public func evaluateOrders(dataset: Dataset, length T: Int,
                               cancellation: Cancellation = .never) throws -> [Evaluation] {
        try evaluateOrders(dataset: dataset, length: T, upTo: order, cancellation: cancellation)
    }

    private func evaluateOrders(dataset: Dataset, length T: Int, upTo k: Int,
                                cancellation: Cancellation) throws -> [Evaluation] {
        try Setting.seq.check(T)
        let windows = try ValidationWindows(dataset: dataset, length: T)
        let nats: [Double]
        switch storage {
        case .narrow(let tables):
            nats = try tables.crossEntropySums(tokens: dataset.tokens, first: dataset.validationRange.lowerBound,
                                               windows: windows.count, length: T, upTo: k, cancellation: cancellation)
        case .wide(let tables):
            nats = try tables.crossEntropySums(tokens: dataset.tokens, first: dataset.validationRange.lowerBound,
                                               windows: windows.count, length: T, upTo: k, cancellation: cancellation)
        }
        let characters = windows.characters
        return nats.map { Evaluation(nats: $0 / Double(characters), characters: characters) }
    }

    /// The last min(count, N-1) tokens of `context`, checked against V.
    private func recentTokens<C: RandomAccessCollection<Int>>(_ context: C) throws -> C.SubSequence {
        let recent = context.suffix(order - 1)
        for token in recent where token < 0 || token >= vocabularySize {
            throw CharLMError.tokenOutOfRange(token: token, vocabularySize: vocabularySize)
        }
        return recent
    }

    /// p(token | context) under the order-k model (nil: N), from the context's last k-1 tokens (fewer if it has
    /// fewer; an empty context gives the order-1 model).
    public func probability(of token: Int, after context: some RandomAccessCollection<Int>,
                            order k: Int? = nil) throws -> Double {
        let k = try checkedOrder(k)
        let recent = try recentTokens(context)
        guard (0..<vocabularySize).contains(token) else {
            throw CharLMError.tokenOutOfRange(token: token, vocabularySize: vocabularySize)
        }
        switch storage {
        case .narrow(let tables):
            return tables.probability(of: token, recent: tables.pack(recent), available: recent.count, order: k)
        case .wide(let tables):
            return tables.probability(of: token, recent: tables.pack(recent), available: recent.count, order: k)
        }
    }

    /// p(token | recent) under the order-k model, for tokens and an order already checked; `recent` holds at most
    /// the last N-1 tokens of the history. What the shared evaluation and generation paths ask
    /// (NGramLanguageModel.swift).
    func checkedProbability(of token: Int, recent: ArraySlice<Int>, order k: Int) -> Double {
        switch storage {
        case .narrow(let tables):
            return tables.probability(of: token, recent: tables.pack(recent), available: recent.count, order: k)
        case .wide(let tables):
            return tables.probability(of: token, recent: tables.pack(recent), available: recent.count, order: k)
        }
    }

    /// Fills (V) `probabilities` with p(w | context) for every w under the order-k model (nil: N); they sum to 1.
    public func distribution(after context: some RandomAccessCollection<Int>, order k: Int? = nil,
                             into probabilities: UnsafeMutableBufferPointer<Double>) throws {
        precondition(probabilities.count == vocabularySize, "the distribution needs V = \(vocabularySize) places")
        let k = try checkedOrder(k)
        let recent = try recentTokens(context)
        switch storage {
        case .narrow(let tables):
            let key = tables.pack(recent)
            for w in 0..<vocabularySize {
                probabilities[w] = tables.probability(of: w, recent: key, available: recent.count, order: k)
            }
        case .wide(let tables):
            let key = tables.pack(recent)
            for w in 0..<vocabularySize {
                probabilities[w] = tables.probability(of: w, recent: key, available: recent.count, order: k)
            }
        }
    }

    /// Fills (V) `logits` with ln p(w | context) (all finite), the scores `Sampler` turns back into the distribution:
    /// softmax(ln p / temperature) is p^(1/temperature), renormalised.
    public func logits(after context: some RandomAccessCollection<Int>, order k: Int? = nil,
                       into logits: UnsafeMutableBufferPointer<Float>) throws {
        precondition(logits.count == vocabularySize, "the logits need V = \(vocabularySize) places")
        try withUnsafeTemporaryAllocation(of: Double.self, capacity: vocabularySize) { probabilities in
            try distribution(after: context, order: k, into: probabilities)
            for w in 0..<vocabularySize { logits[w] = Float(log(probabilities[w])) }
        }
    }

    /// Draws the token after `context` from the order-k model (nil: N) with `sampler`'s temperature, top-k and top-p
    /// (`sampler` must be for V characters); temperature 0 takes the most likely and draws nothing.
    public func sample(after context: some RandomAccessCollection<Int>, order k: Int? = nil, settings: SamplingSettings,
                       sampler: Sampler, generator: inout SeededGenerator) throws -> Int {
        precondition(sampler.vocabularySize == vocabularySize, "the sampler must be for V = \(vocabularySize) characters")
        return try withUnsafeTemporaryAllocation(of: Float.self, capacity: vocabularySize) { scores in
            try logits(after: context, order: k, into: scores)
            guard let base = scores.baseAddress else { return 0 }
            return sampler.sample(logits: base, settings: settings, generator: &generator)
        }
    }
}
