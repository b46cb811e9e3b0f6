// The n-gram models as the second family behind the model interface (Models/LanguageModel.swift): the order-k model
// of a count scores evaluation windows and decodes, so `eval`'s protocol (Training/Evaluation.swift) and the one
// generation loop (Generation/TextGenerator.swift) serve them as they serve the networks. Counting and the
// probabilities are NGramModel.swift; this file only keeps histories.

import Foundation

/// The order-k model of an n-gram count, as a LanguageModel.
public final class NGramLanguageModel: LanguageModel {
    public let counts: NGramModel
    /// k: the order used (at most the count's N).
    public let order: Int

    /// The order-k model (nil: the highest counted).
    public init(_ counts: NGramModel, order k: Int? = nil) throws {
        self.counts = counts
        order = try counts.checkedOrder(k)
    }

    public var vocabularySize: Int { counts.vocabularySize }

    public var summary: String {
        let grams = counts.levels.prefix(order).reduce(0) { $0 + $1.distinctGrams }
        return "\(order)-gram, Kneser-Ney: \(grouped(grams)) n-grams"
    }

    public func makeScorer(length T: Int, batch B: Int, context: ComputeContext) throws -> WindowScorer {
        NGramScorer(model: self, length: T, batch: B)
    }

    public func makeDecoder(batch: Int, context: ComputeContext, weights: GenerationWeights) throws -> Decoder? {
        NGramDecoder(model: self, batch: batch)
    }

    /// The last min(count, k-1) tokens of `history`: all the order-k model looks at.
    func recent(_ history: ArraySlice<Int>) -> ArraySlice<Int> { history.suffix(max(0, order - 1)) }
}

/// Evaluation windows: each window's t-th prediction sees the window's first t+1 tokens (an empty history before
/// them, as the network starts each window from a zero state).
final class NGramScorer: WindowScorer {
    let model: NGramLanguageModel
    let inputs: UnsafeMutablePointer<Int32>
    let targets: UnsafeMutablePointer<Int32>
    private let length: Int, batch: Int

    init(model: NGramLanguageModel, length T: Int, batch B: Int) {
        self.model = model
        length = T
        batch = B
        inputs = .allocate(capacity: T * B)
        inputs.initialize(repeating: 0, count: T * B)
        targets = .allocate(capacity: T * B)
        targets.initialize(repeating: 0, count: T * B)
    }

    deinit {
        inputs.deallocate()
        targets.deallocate()
    }

    func crossEntropySum(length T: Int, batch B: Int) -> Double {
        precondition(T <= length && B <= batch, "scorer too small for T=\(T), B=\(B)")
        var total = 0.0
        var window = [Int](repeating: 0, count: T)
        for b in 0..<B {
            for t in 0..<T {
                // inputs and targets are time-major: step t of window b is at t * B + b
                window[t] = Int(inputs[t * B + b])
                let p = model.counts.checkedProbability(of: Int(targets[t * B + b]), recent: model.recent(window[...t]),
                                                        order: model.order)
                total -= log(p)
            }
        }
        return total
    }
}

/// B histories, each fed the same prompt and then one token per step; the scores are ln p of every next token.
final class NGramDecoder: Decoder {
    let model: NGramLanguageModel
    let batch: Int
    /// Each sequence's last tokens (at most k-1 are looked at; a few more are kept so trimming is rare).
    private var histories: [[Int]]
    /// (B, V) ln p(w | history) of each sequence.
    private let scores: FloatBuffer

    init(model: NGramLanguageModel, batch B: Int) {
        self.model = model
        batch = B
        histories = Array(repeating: [], count: B)
        scores = FloatBuffer(count: B * model.vocabularySize)
    }

    var logits: UnsafePointer<Float> { UnsafePointer(scores.pointer) }

    func start(prompt: [Int], cancellation: Cancellation) throws {
        let kept = Array(model.recent(prompt[...]))
        for b in 0..<batch {
            histories[b] = kept
            fillScores(of: b)
        }
    }

    func advance(_ tokens: UnsafePointer<Int32>) {
        for b in 0..<batch {
            histories[b].append(Int(tokens[b]))
            if histories[b].count > 4 * model.order { histories[b].removeFirst(histories[b].count - model.order) }
            fillScores(of: b)
        }
    }

    /// Row b of the scores: ln p(w | history b) for every w (all finite: Kneser-Ney gives every character mass).
    private func fillScores(of b: Int) {
        let V = model.vocabularySize
        let row = scores.pointer + b * V
        let recent = model.recent(histories[b][...])
        for w in 0..<V {
            row[w] = Float(log(model.counts.checkedProbability(of: w, recent: recent, order: model.order)))
        }
    }
}
