// The count tables behind NGramModel (NGramModel.swift): j-grams packed into integer keys, their raw and
// continuation counts, the counting pass over the training split, the Kneser-Ney probability of one token from the
// counts, and the one-pass cross-entropy sums of every order that `evaluateOrders` uses.

import Foundation

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
