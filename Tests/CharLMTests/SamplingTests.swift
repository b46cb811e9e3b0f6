// Sampling: greedy choices, reproducibility, the distribution actually drawn, and the top-k / top-p cut-offs.

import CharLM
import Foundation
import Testing

private func withLogits<R>(_ logits: [Float], _ body: (UnsafePointer<Float>) -> R) -> R {
    logits.withUnsafeBufferPointer { body($0.baseAddress!) }
}

private let sampleLogits: [Float] = [0.3, -1.2, 2.0, 0.9, 2.0, -0.4, 1.1]  // argmax: index 2 (tie with 4, lower wins)

@Test func temperatureZeroAndTopKOneAreBothArgmax() {
    let sampler = Sampler(vocabularySize: sampleLogits.count)
    var generator = SeededGenerator(seed: 1)
    for _ in 0..<50 {
        #expect(withLogits(sampleLogits) { sampler.sample(logits: $0, settings: SamplingSettings(temperature: 0), generator: &generator) } == 2)
        #expect(withLogits(sampleLogits) { sampler.sample(logits: $0, settings: SamplingSettings(temperature: 1.5, topK: 1), generator: &generator) } == 2)
    }
}

@Test(arguments: [Float(0.5), 1, 2])
func drawsFollowSoftmaxOfLogitsOverTemperature(temperature: Float) {
    let sampler = Sampler(vocabularySize: sampleLogits.count)
    var generator = SeededGenerator(seed: 2)
    let draws = 20_000
    var counts = [Int](repeating: 0, count: sampleLogits.count)
    for _ in 0..<draws {
        counts[withLogits(sampleLogits) { sampler.sample(logits: $0, settings: SamplingSettings(temperature: temperature), generator: &generator) }] += 1
    }
    // Independent reference: softmax(logits / T) in Double.
    let scaled = sampleLogits.map { Double($0) / Double(temperature) }
    let total = scaled.reduce(0) { $0 + exp($1) }
    for (index, logit) in scaled.enumerated() {
        let p = exp(logit) / total
        let frequency = Double(counts[index]) / Double(draws)
        // A frequency's standard deviation is sqrt(p(1-p)/n) (at most 0.0035 here); allow 4.5 of them, which a correct
        // sampler exceeds for one of 7 categories with probability below 1e-4.
        let tolerance = 4.5 * (p * (1 - p) / Double(draws)).squareRoot() + 1e-4
        #expect(abs(frequency - p) <= tolerance, "index \(index): frequency \(frequency), softmax \(p)")
    }
}

@Test func topKKeepsTheKMostLikely() {
    let sampler = Sampler(vocabularySize: sampleLogits.count)
    withLogits(sampleLogits) { sampler.prepare(logits: $0, settings: SamplingSettings(temperature: 1, topK: 3)) }
    let kept = Set((0..<sampleLogits.count).filter { sampler.probabilities[$0] > 0 })
    #expect(kept == [2, 4, 6])
    #expect(abs((0..<sampleLogits.count).reduce(0.0) { $0 + sampler.probabilities[$1] } - 1) < 1e-12)
}

@Test func topPKeepsExactlyTheSmallestSetWhoseMassReachesP() {
    var generator = SeededGenerator(seed: 3)
    for trial in 0..<500 {
        let V = 2 + generator.nextIndex(below: 30)
        let logits = (0..<V).map { _ in generator.nextFloat(in: -4, 4) }
        let p = Float(0.05 + 0.9 * generator.nextUnitDouble())
        let sampler = Sampler(vocabularySize: V)
        withLogits(logits) { sampler.prepare(logits: $0, settings: SamplingSettings(temperature: 1, topP: p)) }
        // The definition, checked from the full softmax: the kept set's mass reaches p, it is made of the most likely
        // characters, and dropping its least likely member falls short of p.
        let maximum = logits.max()!
        let weights = logits.map { exp(Double($0 - maximum)) }
        let full = weights.map { $0 / weights.reduce(0, +) }
        let kept = (0..<V).filter { sampler.probabilities[$0] > 0 }
        let keptMass = kept.reduce(0.0) { $0 + full[$1] }
        let smallestKept = kept.map { full[$0] }.min()!
        let largestDropped = (0..<V).filter { !kept.contains($0) }.map { full[$0] }.max() ?? 0
        #expect(keptMass >= Double(p) - 1e-12, "trial \(trial)")
        #expect(keptMass - smallestKept < Double(p), "trial \(trial): not the smallest set")
        #expect(smallestKept >= largestDropped, "trial \(trial): not the most likely")
        #expect(sampler.keptCount == kept.count)
        // Renormalised over the kept set.
        for index in kept { #expect(abs(sampler.probabilities[index] - full[index] / keptMass) < 1e-9) }
    }
}

@Test func samplingSettingsAreValidated() {
    #expect(throws: CharLMError.outOfRange(setting: "temp", rule: "a number from 0 to 100", got: "-1")) {
        try SamplingSettings(temperature: -1).validate()
    }
    #expect(throws: CharLMError.self) { try SamplingSettings(topK: -2).validate() }
    #expect(throws: CharLMError.self) { try SamplingSettings(topP: 0).validate() }
    #expect(throws: CharLMError.self) { try SamplingSettings(topP: 1.5).validate() }
}

@Test func theSameSeedGeneratesTheSameText() throws {
    let model = try makeModel(V: 12, E: 4, H: 16, L: 2, seed: 9)
    func run(seed: UInt64) throws -> [Int] {
        var generator = SeededGenerator(seed: seed)
        return try TextGenerator(model: model).generate(
            prompt: [1, 2], count: 200, settings: SamplingSettings(temperature: 1.2, topK: 8, topP: 0.95), primer: 0,
            generator: &generator)
    }
    #expect(try run(seed: 5) == run(seed: 5))
    #expect(try run(seed: 5) != run(seed: 6))
}

@Test func generationStreamsAndStopsWhenTheCallbackSaysSo() throws {
    let model = try makeModel(V: 6, E: 3, H: 5, L: 1, seed: 10)
    var streamed: [Int] = []
    var generator = SeededGenerator(seed: 1)
    let output = try TextGenerator(model: model).generate(
        prompt: [], count: 100, settings: SamplingSettings(), primer: 3, generator: &generator
    ) { token in
        streamed.append(token)
        return streamed.count < 7
    }
    #expect(output == streamed)
    #expect(output.count == 7)
}

@Test func anEmptyPromptStartsFromThePrimer() throws {
    // The first character is drawn from the model's distribution after the primer (a newline) from a zero state.
    let corpus = try Corpus.make(text: "ab\ncd\nab\n", normalization: .raw)
    #expect(corpus.primer == corpus.vocabulary.index(of: "\n"))
    let noNewline = try Corpus.make(text: "abbbc", normalization: .raw)
    #expect(noNewline.primer == noNewline.vocabulary.index(of: "b"))  // the most frequent character
    let model = try makeModel(V: corpus.vocabulary.count, E: 3, H: 5, L: 1, seed: 12)
    var generator = SeededGenerator(seed: 1)
    let greedy = try TextGenerator(model: model).generate(
        prompt: [], count: 1, settings: SamplingSettings(temperature: 0), primer: corpus.primer, generator: &generator)
    let scores = NaiveModel(model: model).run(inputs: [[corpus.primer]]).logits[0][0]
    #expect(greedy == [scores.indices.max { scores[$0] < scores[$1] }!])
}

@Test func promptTokensOutsideTheVocabularyAreRefused() throws {
    let model = try makeModel(V: 6, E: 3, H: 5, L: 1, seed: 10)
    var generator = SeededGenerator(seed: 1)
    #expect(throws: CharLMError.tokenOutOfRange(token: 6, vocabularySize: 6)) {
        try TextGenerator(model: model).generate(prompt: [1, 6], count: 3, settings: SamplingSettings(), primer: 0, generator: &generator)
    }
}

/// K samples generated together (one batched step per character) are, sample for sample, the texts that K single
/// generations with the same generators write: the batched step computes each sequence as the single one does, for
/// every cell; and from 8 samples the team's threads draw a share of them each (1, 2 or 3 threads here).
@Test(arguments: [(hidden: 32, samples: 5, threads: 2), (hidden: 40, samples: 16, threads: 1),
                  (hidden: 40, samples: 16, threads: 3)], LayerKind.allCases)
func batchedSamplesAreTheSingleSamplesOfTheSameGenerators(shape: (hidden: Int, samples: Int, threads: Int),
                                                          cell: LayerKind) throws {
    let config = RecurrentConfig(vocabularySize: 17, embeddingSize: 8, hiddenSize: shape.hidden, layerCount: 2,
                                 layerKind: cell)
    var initial = SeededGenerator(seed: 31)
    let model = try RecurrentModel(config: config, generator: &initial)
    let settings = SamplingSettings(temperature: 1.3, topK: 9)
    let seeds = (0..<shape.samples).map { UInt64(100 + $0) }
    let generator = TextGenerator(model: model, context: ComputeContext(threads: shape.threads))
    var batched = [[Int]](repeating: [], count: shape.samples)
    var generators = seeds.map { SeededGenerator(seed: $0) }
    let length = try generator.streamSamples(prompt: [3, 1, 4], count: 40, settings: settings, primer: 0,
                                             generators: &generators) { tokens in
        for (k, token) in tokens.enumerated() { batched[k].append(token) }
        return true
    }
    #expect(length == 40)
    for (k, seed) in seeds.enumerated() {
        var single = SeededGenerator(seed: seed)
        let alone = try TextGenerator(model: model).generate(prompt: [3, 1, 4], count: 40, settings: settings,
                                                             primer: 0, generator: &single)
        #expect(batched[k] == alone, "\(cell) sample \(k)")
        // and drew as many numbers (a sample's characters are drawn only when wanted)
        #expect(generators[k] == single, "\(cell) sample \(k)")
    }
    // and the samples differ from one another (each its own stream)
    #expect(Set(batched).count == shape.samples)
    // Stopped by the callback after 6 characters: each sample has drawn what 6 single characters draw, no more.
    generators = seeds.map { SeededGenerator(seed: $0) }
    var steps = 0
    let stopped = try generator.streamSamples(prompt: [3, 1, 4], count: 40, settings: settings, primer: 0,
                                              generators: &generators) { _ in
        steps += 1
        return steps < 6
    }
    #expect(stopped == 6)
    for (k, seed) in seeds.enumerated() {
        var single = SeededGenerator(seed: seed)
        _ = try TextGenerator(model: model).generate(prompt: [3, 1, 4], count: 6, settings: settings, primer: 0,
                                                     generator: &single)
        #expect(generators[k] == single, "\(cell) sample \(k), stopped")
    }
}
