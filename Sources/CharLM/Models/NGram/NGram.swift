// A count-based character n-gram language model: the baseline the network is measured against. One pass over the
// training split counts every j-gram for j = 1...N in hashed tables (no dense V^N arrays), and interpolated
// Kneser-Ney turns the counts into the models of every order k = 1...N, since each order needs the lower ones
// anyway. `evaluate` follows the network's validation protocol (Trainer.swift) in the same units; `logits(after:)`
// and `sample` feed the usual Sampler (temperature, top-k, top-p). Leaves out: modified Kneser-Ney (three discounts
// per level), sentence markers, pruning, and saving the counts to a file.
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
    private func checkedOrder(_ k: Int?) throws -> Int {
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
    /// The protocol of `evaluate(model:dataset:...)` in Trainer.swift: non-overlapping windows of T inputs from the
    /// validation split's first token, floor((n-1)/T) of them, every predicted character counted, mean natural-log
    /// cross-entropy. As the network starts each window from a zero state, each window starts from an empty
    /// history: its t-th prediction (t = 0...T-1) sees the window's first t+1 tokens, of which order k uses the last
    /// min(t+1, k-1). Throws `noValidationSplit` or `corpusTooShort` as the network's evaluation does.
    public func evaluateOrders(dataset: Dataset, length T: Int,
                               cancellation: Cancellation = .never) throws -> [Evaluation] {
        try evaluateOrders(dataset: dataset, length: T, upTo: order, cancellation: cancellation)
    }

    private func evaluateOrders(dataset: Dataset, length T: Int, upTo k: Int,
                                cancellation: Cancellation) throws -> [Evaluation] {
        try Setting.seq.check(T)
        guard !dataset.validationRange.isEmpty else { throw CharLMError.noValidationSplit }
        let windows = dataset.validationWindowCount(length: T)
        guard windows > 0 else {
            throw CharLMError.corpusTooShort(split: "validation", tokens: dataset.validationRange.count, needed: T + 1, seq: T)
        }
        let nats: [Double]
        switch storage {
        case .narrow(let tables):
            nats = try tables.crossEntropySums(tokens: dataset.tokens, first: dataset.validationRange.lowerBound,
                                               windows: windows, length: T, upTo: k, cancellation: cancellation)
        case .wide(let tables):
            nats = try tables.crossEntropySums(tokens: dataset.tokens, first: dataset.validationRange.lowerBound,
                                               windows: windows, length: T, upTo: k, cancellation: cancellation)
        }
        let characters = windows * T
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

/// A packed key: one j-gram or context, b bits per token, the newest token in the lowest bits.
typealias PackedKey = FixedWidthInteger & UnsignedInteger & Sendable

/// How often one j-gram occurs.
struct GramCounts: Sendable {
    /// c(g): occurrences in the training split.
    var count: UInt32 = 0
    /// N1+(. g): distinct tokens seen just before g (counted for levels below N, else 0).
    var continuation: UInt32 = 0

    /// Counts one more occurrence; true if it is the first.
    @inline(__always)
    mutating func recordOccurrence() -> Bool {
        count += 1
        return count == 1
    }
}

/// What followed one context h at a level, summed over its j-grams h w, for both kinds of count.
struct ContextCounts: Sendable {
    /// A(h) on raw counts: the sum over w of c(h w).
    var total: UInt32 = 0
    /// T(h) on raw counts: the number of w with c(h w) > 0.
    var types: UInt32 = 0
    /// A(h) on continuation counts: the sum over w of N1+(. h w).
    var continuationTotal: UInt32 = 0
    /// T(h) on continuation counts: the number of w with N1+(. h w) > 0.
    var continuationTypes: UInt32 = 0
}

/// n1 and n2 of one level and kind of count, and the discount they give.
private struct CountOfCounts {
    var ones = 0
    var twos = 0

    mutating func add(_ count: UInt32) {
        if count == 1 { ones += 1 } else if count == 2 { twos += 1 }
    }

    /// n1 / (n1 + 2 n2) clamped to `discountRange`; no singletons (n1 = 0) gives its lower end.
    var discount: Double {
        let raw = ones > 0 ? Double(ones) / Double(ones + 2 * twos) : 0
        return min(max(raw, NGramModel.discountRange.lowerBound), NGramModel.discountRange.upperBound)
    }
}

/// One level j: its j-grams and its contexts, and the discounts on each kind of count.
struct Level<Key: PackedKey>: Sendable {
    /// j-gram key -> counts.
    var grams: [Key: GramCounts] = [:]
    /// (j-1)-token context key -> sums; level 1 has the one empty context, key 0.
    var contexts: [Key: ContextCounts] = [:]
    var discount = 0.0
    var continuationDiscount = 0.0

    /// p_j(w | h) on raw counts and on continuation counts, each over the same lower-level `lower` = p_{j-1}(w | h').
    @inline(__always)
    func probabilities(of gram: Key, context: Key, lower: Double) -> (raw: Double, continuation: Double) {
        guard let sums = contexts[context] else { return (lower, lower) }
        let counts = grams[gram] ?? GramCounts()
        func interpolate(_ a: UInt32, total: UInt32, types: UInt32, discount D: Double) -> Double {
            guard total > 0 else { return lower }
            return (max(Double(a) - D, 0) + D * Double(types) * lower) / Double(total)
        }
        return (interpolate(counts.count, total: sums.total, types: sums.types, discount: discount),
                interpolate(counts.continuation, total: sums.continuationTotal, types: sums.continuationTypes,
                            discount: continuationDiscount))
    }
}

/// The counts of orders 1...N with keys of type `Key`, and the queries on them.
struct CountTables<Key: PackedKey>: Sendable {
    /// b.
    let bitsPerToken: Int
    /// V.
    let vocabularySize: Int
    /// levels[j-1] is level j, j = 1...N.
    private(set) var levels: [Level<Key>]
    /// contextMasks[j-1] keeps the last j-1 tokens of a packed history (0 for level 1).
    let contextMasks: [Key]

    var order: Int { levels.count }

    /// The lowest `bits` bits set.
    private static func mask(bits: Int) -> Key { bits == 0 ? 0 : Key.max >> (Key.bitWidth - bits) }

    /// One pass over `tokens[range]` counts every j-gram ending at each position and, the first time a j-gram is
    /// seen, one more continuation for its last j-1 tokens; a second pass over each level's grams sums its contexts
    /// and its count-of-counts.
    init(tokens: TokenBuffer, range: Range<Int>, order N: Int, vocabularySize V: Int, bitsPerToken b: Int,
         cancellation: Cancellation) throws {
        bitsPerToken = b
        vocabularySize = V
        contextMasks = (1...N).map { Self.mask(bits: b * ($0 - 1)) }
        var levels = [Level<Key>](repeating: Level(), count: N)
        // ending[j-1]: the j-gram ending at the current position.
        var ending = [Key](repeating: 0, count: N)
        var seen = 0
        for position in range {
            if seen % NGramModel.checkInterval == 0 { try cancellation.check() }
            let token = tokens[position]
            guard token < V else { throw CharLMError.tokenOutOfRange(token: token, vocabularySize: V) }
            seen += 1
            let top = min(N, seen)
            // The j-gram ending here is the (j-1)-gram that ended one position before, then this token.
            var j = top
            while j >= 2 {
                ending[j - 1] = (ending[j - 2] << b) | Key(token)
                j -= 1
            }
            ending[0] = Key(token)
            for j in 1...top {
                let isNew = levels[j - 1].grams[ending[j - 1], default: GramCounts()].recordOccurrence()
                // A j-gram seen for the first time: one more distinct token before its last j-1 tokens.
                if j >= 2 && isNew {
                    levels[j - 2].grams[ending[j - 2], default: GramCounts()].continuation += 1
                }
            }
        }
        for j in 1...N {
            var contexts: [Key: ContextCounts] = [:]
            var raw = CountOfCounts()
            var continued = CountOfCounts()
            var visited = 0
            for (gram, counts) in levels[j - 1].grams {
                if visited % NGramModel.checkInterval == 0 { try cancellation.check() }
                visited += 1
                contexts[gram >> b, default: ContextCounts()].add(counts)
                raw.add(counts.count)
                continued.add(counts.continuation)
            }
            levels[j - 1].contexts = contexts
            levels[j - 1].discount = raw.discount
            levels[j - 1].continuationDiscount = continued.discount
        }
        self.levels = levels
    }

    /// The last min(count, N-1) tokens packed, the newest lowest (callers pass at most N-1 tokens, each below V).
    func pack(_ recent: some Sequence<Int>) -> Key {
        var key: Key = 0
        for token in recent { key = (key << bitsPerToken) | Key(token) }
        return key & contextMasks[order - 1]
    }

    /// p(w | history) under the order-k model, the history's last min(available, N-1) tokens packed in `recent`.
    func probability(of w: Int, recent: Key, available: Int, order k: Int) -> Double {
        let top = min(k, available + 1)
        var lower = 1.0 / Double(vocabularySize)
        for j in 1...top {
            let context = recent & contextMasks[j - 1]
            let gram = (context << bitsPerToken) | Key(w)
            let (raw, continuation) = levels[j - 1].probabilities(of: gram, context: context, lower: lower)
            if j == top { return raw }
            lower = continuation
        }
        return lower  // not reached: top >= 1
    }

    /// Sums of -ln p(target) over `windows` windows of T inputs from `tokens[first]`, for the orders 1...k (element
    /// k-1 is order k); each window starts from an empty history.
    func crossEntropySums(tokens: TokenBuffer, first: Int, windows: Int, length T: Int, upTo k: Int,
                          cancellation: Cancellation) throws -> [Double] {
        var sums = [Double](repeating: 0, count: k)
        let historyMask = contextMasks[order - 1]
        var predicted = 0
        for window in 0..<windows {
            let start = first + window * T
            var recent: Key = 0
            for t in 0..<T {
                if predicted % NGramModel.checkInterval == 0 { try cancellation.check() }
                predicted += 1
                let input = tokens[start + t]
                let target = tokens[start + t + 1]
                guard input < vocabularySize, target < vocabularySize else {
                    throw CharLMError.tokenOutOfRange(token: max(input, target), vocabularySize: vocabularySize)
                }
                recent = ((recent << bitsPerToken) | Key(input)) & historyMask
                // Order j's model tops out at level min(j, t+2); the chain of continuation probabilities below is
                // shared, so each level's two lookups serve every order.
                let top = min(k, t + 2)
                var lower = 1.0 / Double(vocabularySize)
                var topNats = 0.0
                for j in 1...top {
                    let context = recent & contextMasks[j - 1]
                    let gram = (context << bitsPerToken) | Key(target)
                    let (raw, continuation) = levels[j - 1].probabilities(of: gram, context: context, lower: lower)
                    topNats = -log(raw)
                    sums[j - 1] += topNats
                    lower = continuation
                }
                // Orders above the history's reach predict as the order-(t+2) model does.
                for j in stride(from: top + 1, through: k, by: 1) { sums[j - 1] += topNats }
            }
        }
        return sums
    }

    var summaries: [NGramLevelSummary] {
        levels.enumerated().map { index, level in
            NGramLevelSummary(level: index + 1, distinctGrams: level.grams.count, distinctContexts: level.contexts.count,
                              discount: level.discount,
                              continuationDiscount: index + 1 < order ? level.continuationDiscount : nil)
        }
    }

    /// The bytes the dictionaries hold: slots (capacity / 0.75 of them) of key and value, and the bitmap.
    var bytes: Int {
        let key = Double(MemoryLayout<Key>.stride)
        var total = 0.0
        for level in levels {
            total += Double(level.grams.capacity) * 4 / 3 * (key + Double(MemoryLayout<GramCounts>.stride) + 0.125)
            total += Double(level.contexts.capacity) * 4 / 3 * (key + Double(MemoryLayout<ContextCounts>.stride) + 0.125)
        }
        return Int(total)
    }
}

extension ContextCounts {
    /// Adds one j-gram h w's counts to its context's sums.
    mutating func add(_ counts: GramCounts) {
        total += counts.count
        types += 1
        continuationTotal += counts.continuation
        if counts.continuation > 0 { continuationTypes += 1 }
    }
}
