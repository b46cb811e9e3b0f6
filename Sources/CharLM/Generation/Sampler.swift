// Scores -> distribution -> sampler -> characters. `Sampler` shapes a distribution from a model's scores
// (temperature, top-k, top-p) and draws from it; `TextGenerator` (TextGenerator.swift) runs the loop that feeds it.

import Foundation

/// How the next character is chosen from the model's scores.
public struct SamplingSettings: Equatable, Sendable {
    /// Divides the logits; 0 means argmax (greedy).
    public var temperature: Float
    /// Keep only the k most likely characters; 0 turns it off.
    public var topK: Int
    /// Keep only the smallest set of most likely characters whose mass reaches p; 1 turns it off.
    public var topP: Float

    /// Each default is its setting's (SettingDeclarations.swift).
    public init(temperature: Float = Setting.temp.defaultFloat, topK: Int = Setting.topk.defaultInteger,
                topP: Float = Setting.topp.defaultFloat) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
    }

    /// Throws `outOfRange` for a value outside its setting's declaration (SettingDeclarations.swift).
    public func validate() throws {
        try Setting.temp.check(temperature)
        try Setting.topk.check(topK)
        try Setting.topp.check(topP)
    }
}

/// Turns a row of V logits into the distribution to draw from, and draws. Buffers are allocated once.
public final class Sampler {
    public let vocabularySize: Int
    /// (V) the distribution after temperature, top-k and top-p, renormalised; zero outside the kept set.
    public let probabilities: UnsafeMutableBufferPointer<Double>
    /// (V) indices sorted by decreasing probability (ties: lower index first); the first `keptCount` are kept.
    public private(set) var order: [Int]
    /// How many characters the cut-offs kept.
    public private(set) var keptCount = 0

    public init(vocabularySize V: Int) {
        vocabularySize = V
        probabilities = .allocate(capacity: V)
        probabilities.initialize(repeating: 0)
        order = Array(0..<V)
    }

    deinit { probabilities.deallocate() }

    /// softmax(logits / temperature) with its maximum subtracted, into `probabilities` (temperature > 0).
    private func softmax(_ logits: UnsafePointer<Float>, temperature: Float) {
        let V = vocabularySize
        var maximum = -Float.infinity
        for v in 0..<V { maximum = max(maximum, logits[v]) }
        let inverseTemperature = 1 / Double(temperature)
        guard let p = probabilities.baseAddress else { return }  // V = 0: nothing to fill
        for v in 0..<V { p[v] = (Double(logits[v]) - Double(maximum)) * inverseTemperature }
        // e^x in place, 8 at a time (VectorMath.swift), the last partial group padded
        let width = DoubleLanes.scalarCount
        var v = 0
        while v + width <= V {
            let x = UnsafeRawPointer(p + v).loadUnaligned(as: DoubleLanes.self)
            UnsafeMutableRawPointer(p + v).storeBytes(of: exponential(x), as: DoubleLanes.self)
            v += width
        }
        if v < V {
            var x = DoubleLanes(repeating: 0)
            for lane in 0..<(V - v) { x[lane] = p[v + lane] }
            let e = exponential(x)
            for lane in 0..<(V - v) { p[v + lane] = e[lane] }
        }
        var sum = 0.0
        for v in 0..<V { sum += probabilities[v] }
        for v in 0..<V { probabilities[v] /= sum }
    }

    /// Fills `probabilities`: temperature first, then top-k, then top-p over what top-k kept, then renormalises.
    /// Temperature 0 puts all mass on the argmax (lowest index among ties).
    public func prepare(logits: UnsafePointer<Float>, settings: SamplingSettings) {
        let V = vocabularySize
        if settings.temperature == 0 {
            var best = 0
            for v in 1..<max(V, 1) where logits[v] > logits[best] { best = v }
            for v in 0..<V { probabilities[v] = 0 }
            probabilities[best] = 1
            // The argmax first, the rest in index order; filled in place (no allocation per character).
            order[0] = best
            var rank = 1
            for v in 0..<V where v != best {
                order[rank] = v
                rank += 1
            }
            keptCount = 1
            return
        }
        softmax(logits, temperature: settings.temperature)
        keptCount = V
        if settings.topK == 0 && settings.topP >= 1 { return }
        rankIndices(UnsafeBufferPointer(probabilities), into: &order)
        if settings.topK > 0 { keptCount = min(settings.topK, V) }
        if settings.topP < 1 {
            // The smallest prefix (of what top-k kept, renormalised) whose mass reaches p.
            var keptMass = 0.0
            for rank in 0..<keptCount { keptMass += probabilities[order[rank]] }
            var cumulative = 0.0
            var count = 0
            while count < keptCount {
                cumulative += probabilities[order[count]] / keptMass
                count += 1
                if cumulative >= Double(settings.topP) { break }
            }
            keptCount = count
        }
        var mass = 0.0
        for rank in 0..<keptCount { mass += probabilities[order[rank]] }
        for rank in keptCount..<V { probabilities[order[rank]] = 0 }
        for rank in 0..<keptCount { probabilities[order[rank]] /= mass }
    }

    /// Draws an index from `probabilities` with one uniform number.
    public func draw(generator: inout SeededGenerator) -> Int {
        let u = generator.nextUnitDouble()
        var cumulative = 0.0
        var last = 0
        for v in 0..<vocabularySize where probabilities[v] > 0 {
            cumulative += probabilities[v]
            if u < cumulative { return v }
            last = v
        }
        return last  // u fell in the rounding gap at the top
    }

    /// `prepare` then `draw`; temperature 0 draws nothing from the generator.
    public func sample(logits: UnsafePointer<Float>, settings: SamplingSettings, generator: inout SeededGenerator) -> Int {
        prepare(logits: logits, settings: settings)
        if settings.temperature == 0 { return order[0] }
        return draw(generator: &generator)
    }
}

/// Fills `order` with the indices 0..<count of `probabilities` by decreasing probability, ties to the lower index:
/// the ranking the top-k and top-p cut-offs use, and the one `next` and `trace` show.
public func rankIndices(_ probabilities: UnsafeBufferPointer<Double>, into order: inout [Int]) {
    order.removeAll(keepingCapacity: true)
    order.append(contentsOf: probabilities.indices)
    order.sort { probabilities[$0] > probabilities[$1] || (probabilities[$0] == probabilities[$1] && $0 < $1) }
}
