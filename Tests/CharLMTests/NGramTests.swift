// The Kneser-Ney n-gram model against probabilities worked out by hand from listed counts, plus the properties every
// context must have (a distribution summing to 1), the evaluation protocol's windows, and its refusals.

@testable import CharLM
import Foundation
import Testing

/// "abracadabra" to train on, "cabrx" to validate: split = Int(16 x (1 - 5/16)) = 11 exactly. V = 6: a b c d r x.
private func abracadabra() throws -> (Dataset, (String) -> [Int]) {
    let corpus = try Corpus.make(text: "abracadabra" + "cabrx", normalization: .raw)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 5.0 / 16.0)
    #expect(dataset.trainRange == 0..<11)
    #expect(corpus.vocabulary.count == 6)
    return (dataset, { text in text.unicodeScalars.map { corpus.vocabulary.index(of: $0) ?? -1 } })
}

/// A text of `count` tokens drawn uniformly from 0..<V, as a dataset with a tenth kept for validation.
private func randomDataset(count: Int, vocabularySize V: Int, seed: UInt64) throws -> Dataset {
    var generator = SeededGenerator(seed: seed)
    let tokens = (0..<count).map { _ in generator.nextIndex(below: V) }
    return try Dataset(tokens: TokenBuffer(tokens, vocabularySize: V), validationFraction: 0.1)
}

private func distribution(_ model: NGramModel, after context: [Int], order: Int? = nil) throws -> [Double] {
    var probabilities = [Double](repeating: .nan, count: model.vocabularySize)
    try probabilities.withUnsafeMutableBufferPointer { try model.distribution(after: context, order: order, into: $0) }
    return probabilities
}

private func close(_ a: Double, _ b: Double, _ tolerance: Double = 1e-12) -> Bool { abs(a - b) <= tolerance }

/// Counted to order 3 it is the plain order-3 model; counted to 5 its orders 1...3 are the same models (continuation
/// counts do not depend on N); V 5000 with N 5 needs 65-bit keys, so it runs the UInt128 tables on the same counts.
@Test(arguments: [(6, 3), (6, 5), (5000, 5)])
func probabilitiesMatchKneserNeyWorkedByHand(vocabularySize V: Int, counted N: Int) throws {
    let (dataset, tokens) = try abracadabra()
    let model = try NGramModel(dataset: dataset, vocabularySize: V, order: N, maximumBytes: 1e9)
    #expect((N * NGramModel.bitsPerToken(vocabularySize: V) > 64) == (V == 5000))
    let uniform = 1.0 / Double(V)

    // Training "abracadabra", 11 tokens.
    // Unigrams c(w): a 5, b 2, r 2, c 1, d 1 (x 0); n1 = 2, n2 = 2: D1 = 2 / (2 + 4) = 1/3; 5 types.
    // Bigrams: ab 2, br 2, ra 2, ac 1, ca 1, ad 1, da 1; n1 = 4, n2 = 3: D2 = 4 / 10 = 0.4.
    // Trigrams: abr 2, bra 2, rac 1, aca 1, cad 1, ada 1, dab 1; n1 = 5, n2 = 2: D3 = 5/9.
    // Continuation N1+(. w): a 3 (ra ca da), b 1 (ab), c 1 (ac), d 1 (ad), r 1 (br), x 0; total 7, 5 types;
    // n1 = 4, n2 = 0: 1, clamped to 0.95.
    // Continuation N1+(. v w): every bigram 1 (ab: dab; br: abr; ra: bra; ac: rac; ca: aca; ad: cad; da: ada);
    // n1 = 7: clamped to 0.95. By context: a -> ab ac ad (3 over 3 types), b -> br, c -> ca, d -> da, r -> ra (1 each).
    let (d1, d2, d3, dc) = (1.0 / 3.0, 0.4, 5.0 / 9.0, 0.95)
    let continuationUnigram: [Character: Double] = [
        "a": ((3 - dc) + dc * 5 * uniform) / 7,
        "b": ((1 - dc) + dc * 5 * uniform) / 7, "c": ((1 - dc) + dc * 5 * uniform) / 7,
        "d": ((1 - dc) + dc * 5 * uniform) / 7, "r": ((1 - dc) + dc * 5 * uniform) / 7,
        "x": (dc * 5 * uniform) / 7,
    ]
    let rawUnigram: [Character: Double] = [
        "a": ((5 - d1) + d1 * 5 * uniform) / 11, "b": ((2 - d1) + d1 * 5 * uniform) / 11,
        "r": ((2 - d1) + d1 * 5 * uniform) / 11, "c": ((1 - d1) + d1 * 5 * uniform) / 11,
        "d": ((1 - d1) + d1 * 5 * uniform) / 11, "x": (d1 * 5 * uniform) / 11,
    ]
    func p(_ w: String, _ context: String, _ order: Int) throws -> Double {
        try model.probability(of: tokens(w)[0], after: tokens(context), order: order)
    }

    // Order 1 is the raw unigram with the uniform distribution, whatever the context.
    for (w, expected) in rawUnigram {
        #expect(close(try p(String(w), "", 1), expected))
        #expect(close(try p(String(w), "br", 1), expected))
    }
    // After a context never seen ("x"), the bigram level has nothing: the continuation unigram with the uniform.
    for (w, expected) in continuationUnigram { #expect(close(try p(String(w), "x", 2), expected)) }
    // Order 3 after "ab": trigrams after ab: abr 2 (A = 2, T = 1); below, continuations after b: br 1 (A 1, T 1).
    let pcRB = ((1 - dc) + dc * 1 * continuationUnigram["r"]!) / 1
    let pcAB = (0 + dc * 1 * continuationUnigram["a"]!) / 1
    #expect(close(try p("r", "ab", 3), ((2 - d3) + d3 * 1 * pcRB) / 2))
    #expect(close(try p("a", "ab", 3), (0 + d3 * 1 * pcAB) / 2))
    // A one-token history tops out at the raw bigram: after a, ab 2, ac 1, ad 1 (A = 4, T = 3).
    #expect(close(try p("b", "a", 3), ((2 - d2) + d2 * 3 * continuationUnigram["b"]!) / 4))
    #expect(close(try p("x", "a", 3), (0 + d2 * 3 * continuationUnigram["x"]!) / 4))
    // Only the last N-1 tokens count.
    #expect(close(try p("r", "dcab", 3), try p("r", "ab", 3), 0))

    // Validation "cabrx" in windows of 2: (c a -> a b), (b r -> r x); each window starts with no history.
    let e1 = ((1 - d2) + d2 * 1 * continuationUnigram["a"]!) / 1          // a after c: ca 1 (A 1, T 1)
    let pcBA = ((1 - dc) + dc * 3 * continuationUnigram["b"]!) / 3        // continuation b after a
    let e2 = (0 + d3 * 1 * pcBA) / 1                                      // b after ca: cad 1 (A 1, T 1)
    let e3 = ((2 - d2) + d2 * 1 * continuationUnigram["r"]!) / 2          // r after b alone: br 2 (A 2, T 1)
    let pcXR = (0 + dc * 1 * continuationUnigram["x"]!) / 1              // continuation x after r
    let e4 = (0 + d3 * 1 * pcXR) / 2                                      // x after br: bra 2 (A 2, T 1)
    let order3 = -(log(e1) + log(e2) + log(e3) + log(e4)) / 4
    // Order 2: b after a is the raw bigram (above); x after r: ra 2 (A 2, T 1).
    let order2 = -(log(e1) + log(((2 - d2) + d2 * 3 * continuationUnigram["b"]!) / 4) + log(e3)
                   + log((0 + d2 * 1 * continuationUnigram["x"]!) / 2)) / 4
    let order1 = -(log(rawUnigram["a"]!) + log(rawUnigram["b"]!) + log(rawUnigram["r"]!) + log(rawUnigram["x"]!)) / 4
    let all = try model.evaluateOrders(dataset: dataset, length: 2)
    #expect(all.count == N)
    for (k, expected) in [(1, order1), (2, order2), (3, order3)] {
        #expect(close(all[k - 1].nats, expected, 1e-12))
        #expect(all[k - 1].characters == 4)
        #expect(try model.evaluate(dataset: dataset, length: 2, order: k) == all[k - 1])
    }
    // One window of 4 keeps the history: r is predicted after "ab", by the trigram abr, not after "b" alone.
    let rAfterAB = ((2 - d3) + d3 * 1 * pcRB) / 2
    let window4 = try model.evaluate(dataset: dataset, length: 4, order: 3)
    #expect(window4.characters == 4)
    #expect(close(window4.nats, -(log(e1) + log(e2) + log(rAfterAB) + log(e4)) / 4))
    // Windows of 3: floor(4 / 3) = 1 window, 3 characters; the x is never predicted.
    let window3 = try model.evaluate(dataset: dataset, length: 3, order: 3)
    #expect(window3.characters == 3)
    #expect(close(window3.nats, -(log(e1) + log(e2) + log(rAfterAB)) / 3))
}

@Test func distributionsSumToOneForEveryContextAndOrder() throws {
    let dataset = try randomDataset(count: 3000, vocabularySize: 7, seed: 11)
    let model = try NGramModel(dataset: dataset, vocabularySize: 7, order: 5, maximumBytes: 1e9)
    var contexts: [[Int]] = [[]]
    // Every context of the text itself (seen ones) and random ones (mostly unseen at the higher levels).
    for end in stride(from: 0, to: dataset.tokens.count, by: 7) {
        contexts.append((max(0, end - 6)..<end).map { dataset.tokens[$0] })
    }
    var generator = SeededGenerator(seed: 12)
    for length in 0...8 {
        for _ in 0..<20 { contexts.append((0..<length).map { _ in generator.nextIndex(below: 7) }) }
    }
    for context in contexts {
        for order in 1...5 {
            let probabilities = try distribution(model, after: context, order: order)
            #expect(close(probabilities.reduce(0, +), 1, 1e-12))
            #expect(probabilities.allSatisfy { $0 > 0 && $0 < 1 })
            #expect(close(try model.probability(of: 3, after: context, order: order), probabilities[3], 0))
        }
    }
}

@Test func aPeriodicTextIsPredictedByHigherOrdersAndNotByUnigrams() throws {
    let corpus = try Corpus.make(text: String(repeating: "abc", count: 400), normalization: .raw)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    let model = try NGramModel(dataset: dataset, vocabularySize: 3, order: 4, maximumBytes: 1e9)
    let evaluations = try model.evaluateOrders(dataset: dataset, length: 10)
    // 360 of each character: (360 - D1 + D1 x 3 x 1/3) / 1080 = 1/3 exactly.
    #expect(close(evaluations[0].nats, log(3), 1e-12))
    for k in 2...4 { #expect(evaluations[k - 1].nats < 1e-3) }
    #expect(evaluations.allSatisfy { $0.characters == 110 })  // floor(119 / 10) x 10
    // Sampling: the most likely next character after "ab" is c; temperature 1 draws from the distribution itself.
    let sampler = Sampler(vocabularySize: 3)
    var generator = SeededGenerator(seed: 3)
    let ab = [0, 1]
    #expect(try model.sample(after: ab, settings: SamplingSettings(temperature: 0), sampler: sampler, generator: &generator) == 2)
    _ = try model.sample(after: [2], order: 1, settings: SamplingSettings(), sampler: sampler, generator: &generator)
    let expected = try distribution(model, after: [2], order: 1)
    for w in 0..<3 { #expect(close(sampler.probabilities[w], expected[w], 1e-6)) }
}

@Test func oneCharacterVocabularyIsCertain() throws {
    let corpus = try Corpus.make(text: String(repeating: "a", count: 10), normalization: .raw)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.5)
    let model = try NGramModel(dataset: dataset, vocabularySize: 1, order: 3, maximumBytes: 1e9)
    for order in 1...3 {
        #expect(close(try distribution(model, after: [0, 0], order: order)[0], 1))
        #expect(abs(try model.evaluate(dataset: dataset, length: 2, order: order).nats) < 1e-12)
    }
}

@Test func aTrainingSplitShorterThanTheOrderStillGivesDistributions() throws {
    let corpus = try Corpus.make(text: "abcabcab", normalization: .raw)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.75)  // Int(8 x 0.25) = 2: "ab"
    #expect(dataset.trainRange == 0..<2)
    let model = try NGramModel(dataset: dataset, vocabularySize: 3, order: 5, maximumBytes: 1e9)
    #expect(model.levels.map(\.distinctGrams) == [2, 1, 0, 0, 0])
    #expect(model.levels.map(\.continuationDiscount).last == .some(nil))
    for order in 1...5 {
        #expect(close(try distribution(model, after: [0, 1, 2, 0], order: order).reduce(0, +), 1))
    }
    // c was never seen: only the uniform share. Unigrams a 1, b 1: D1 = n1 / n1 = 1 -> 0.95; (0 + 0.95 x 2/3) / 2.
    #expect(close(try model.probability(of: 2, after: [], order: 1), 0.95 * 2 / 3 / 2))
    #expect(try model.evaluate(dataset: dataset, length: 5).characters == 5)
    // An empty training split: one token, split at Int(0.5) = 0.
    let one = try Dataset(tokens: TokenBuffer([0], vocabularySize: 1), validationFraction: 0.5)
    #expect(throws: NGramError.emptyTrainingSplit) {
        try NGramModel(dataset: one, vocabularySize: 1, order: 2, maximumBytes: 1e9)
    }
}

@Test func ordersAndTokensOutsideTheirRangesAreRefused() throws {
    let (dataset, _) = try abracadabra()
    for order in [0, 11] {
        #expect(throws: NGramError.orderOutOfRange(order: order, maximum: 10, vocabularySize: 6)) {
            try NGramModel(dataset: dataset, vocabularySize: 6, order: order, maximumBytes: 1e9)
        }
    }
    // 16 bits a token: 8 tokens fill 128 bits.
    #expect(throws: NGramError.orderOutOfRange(order: 9, maximum: 8, vocabularySize: 65_535)) {
        try NGramModel(dataset: dataset, vocabularySize: 65_535, order: 9, maximumBytes: 1e9)
    }
    let widest = try NGramModel(dataset: dataset, vocabularySize: 65_535, order: 8, maximumBytes: 1e9)
    let sum = try distribution(widest, after: [0, 1, 4, 0, 2, 0, 3], order: 8).reduce(0, +)
    #expect(close(sum, 1, 1e-10), "sum \(sum)")
    let model = try NGramModel(dataset: dataset, vocabularySize: 6, order: 3, maximumBytes: 1e9)
    #expect(throws: NGramError.orderNotCounted(order: 4, counted: 3)) { try model.evaluate(dataset: dataset, length: 2, order: 4) }
    #expect(throws: CharLMError.tokenOutOfRange(token: 6, vocabularySize: 6)) { try distribution(model, after: [0, 6]) }
    // Training has a b c d r (0...4), validation also x (5).
    #expect(throws: CharLMError.tokenOutOfRange(token: 4, vocabularySize: 4)) {
        try NGramModel(dataset: dataset, vocabularySize: 4, order: 2, maximumBytes: 1e9)
    }
    let fiveCharacters = try NGramModel(dataset: dataset, vocabularySize: 5, order: 2, maximumBytes: 1e9)
    #expect(throws: CharLMError.tokenOutOfRange(token: 5, vocabularySize: 5)) {
        try fiveCharacters.evaluate(dataset: dataset, length: 4)
    }
    #expect(throws: CharLMError.corpusTooShort(split: "validation", tokens: 5, needed: 6, seq: 5)) {
        try model.evaluate(dataset: dataset, length: 5)
    }
    let noValidation = try Dataset(tokens: dataset.tokens, validationFraction: 0)
    #expect(throws: CharLMError.noValidationSplit) { try model.evaluate(dataset: noValidation, length: 2) }
}

@Test func tablesBeyondTheMemoryLimitAreRefusedBeforeCounting() throws {
    let dataset = try randomDataset(count: 20_000, vocabularySize: 40, seed: 5)
    let estimate = NGramModel.estimatedBytes(order: 6, vocabularySize: 40, trainingTokens: 18_000)
    do {
        _ = try NGramModel(dataset: dataset, vocabularySize: 40, order: 6, maximumBytes: estimate - 1)
        Issue.record("a limit below the estimate was accepted")
    } catch let error as NGramError {
        #expect(error == .tablesTooLarge(order: 6, trainingTokens: 18_000, bytes: Int(estimate), maximum: Int(estimate - 1)))
        #expect(error.description.contains("lower the order"))
    }
    // The estimate bounds what the tables take; both stay far below a dense V^6 array.
    let model = try NGramModel(dataset: dataset, vocabularySize: 40, order: 6, maximumBytes: estimate)
    #expect(model.bytes > 0 && Double(model.bytes) <= estimate)
    #expect(estimate < pow(40, 6))
    // A vocabulary whose 6-grams need wide keys is bounded too.
    let wide = try randomDataset(count: 20_000, vocabularySize: 3000, seed: 6)
    let wideEstimate = NGramModel.estimatedBytes(order: 6, vocabularySize: 3000, trainingTokens: 18_000)
    let wideModel = try NGramModel(dataset: wide, vocabularySize: 3000, order: 6, maximumBytes: wideEstimate)
    #expect(Double(wideModel.bytes) <= wideEstimate)
}

/// Counts the times a cancellation is asked, and says stop from the `stopAt`-th on.
private final class CancellationProbe: @unchecked Sendable {
    var asked = 0
    let stopAt: Int
    init(stopAt: Int) { self.stopAt = stopAt }
    var cancellation: Cancellation {
        Cancellation { [self] in
            asked += 1
            return asked >= stopAt
        }
    }
}

@Test func cancellationStopsCountingAndEvaluating() throws {
    let dataset = try randomDataset(count: 400_000, vocabularySize: 20, seed: 8)
    let probe = CancellationProbe(stopAt: 3)
    #expect(throws: CharLMError.cancelled) {
        try NGramModel(dataset: dataset, vocabularySize: 20, order: 3, maximumBytes: 1e10, cancellation: probe.cancellation)
    }
    #expect(probe.asked == 3)  // asked while counting, not only before
    let model = try NGramModel(dataset: dataset, vocabularySize: 20, order: 2, maximumBytes: 1e10)
    #expect(throws: CharLMError.cancelled) {
        try model.evaluate(dataset: dataset, length: 100, cancellation: Cancellation { true })
    }
}
