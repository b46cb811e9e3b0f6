// Prompt -> tokens -> model state -> distribution -> sampler -> characters, for any model family: the model's
// decoder (Models/LanguageModel.swift) keeps whatever state it needs (a recurrent state, an n-gram history); this
// loop feeds it the prompt, draws each character with `Sampler` and feeds it back. `gen`, `samples K`, `ngram gen`,
// `next` and `trace` all run through here.

import Foundation

/// Generates text from a model: feeds a prompt, then samples one character at a time.
public final class TextGenerator {
    public let model: any LanguageModel
    public let sampler: Sampler
    private let context: ComputeContext
    private let weights: GenerationWeights
    /// Decoders already made, by batch size, kept for the next call with as many sequences.
    private var decoders: [Int: Decoder] = [:]
    /// A sampler for each other thread of the context's team, which draws a share of the samples (`streamSamples`).
    private lazy var teamSamplers: [Sampler] = (1..<max(1, context.threadCount)).map { _ in
        Sampler(vocabularySize: model.vocabularySize)
    }
    /// The fewest samples drawn on the team rather than on the caller alone: one sample's softmax and draw take about
    /// a microsecond (V = 65), as long as meeting the other threads.
    static let minimumSamplesShared = 8

    /// - Parameter weights: the precision single-sample generation reads the weights in where the family offers a
    ///   choice (`samples` above 1 always reads float32).
    public init(model: any LanguageModel, context: ComputeContext = .machine, weights: GenerationWeights = .float32) {
        self.model = model
        self.context = context
        self.weights = weights
        sampler = Sampler(vocabularySize: model.vocabularySize)
    }

    /// The decoder for `batch` sequences, or nil when the model decodes one sequence at a time.
    private func decoder(batch: Int) throws -> Decoder? {
        if let made = decoders[batch] { return made }
        guard let made = try model.makeDecoder(batch: batch, context: context, weights: batch == 1 ? weights : .float32)
        else { return nil }
        decoders[batch] = made
        return made
    }

    /// The decoder for one sequence, which every family has.
    private func singleDecoder() throws -> Decoder {
        guard let made = try decoder(batch: 1) else { preconditionFailure("every family decodes one sequence") }
        return made
    }

    /// Feeds `prompt` (after checking its tokens) to `decoder` from an empty state.
    private func start(_ decoder: Decoder, prompt: [Int], cancellation: Cancellation) throws {
        let V = model.vocabularySize
        for token in prompt where token < 0 || token >= V {
            throw CharLMError.tokenOutOfRange(token: token, vocabularySize: V)
        }
        guard !prompt.isEmpty else { throw CharLMError.emptyPrompt }
        try decoder.start(prompt: prompt, cancellation: cancellation)
    }

    /// Feeds `tokens` from an empty state and returns the scores after the last one (V values).
    public func logits(after tokens: [Int], cancellation: Cancellation = .never) throws -> [Float] {
        let decoder = try singleDecoder()
        try start(decoder, prompt: tokens, cancellation: cancellation)
        return Array(UnsafeBufferPointer(start: decoder.logits, count: model.vocabularySize))
    }

    /// Feeds `prompt` (or `primer` alone when the prompt is empty) from an empty state, then generates `count`
    /// characters, calling `onToken` with each as soon as it is chosen; `onToken` returning false stops early.
    /// Holds nothing per character, so any count up to `length`'s maximum runs in constant memory. Returns how many
    /// characters were generated.
    @discardableResult
    public func stream(
        prompt: [Int], count: Int, settings: SamplingSettings, primer: Int,
        generator: inout SeededGenerator, cancellation: Cancellation = .never, onToken: (Int) -> Bool
    ) throws -> Int {
        try settings.validate()
        try Setting.length.check(count)
        let decoder = try singleDecoder()
        try start(decoder, prompt: prompt.isEmpty ? [primer] : prompt, cancellation: cancellation)
        var generated = 0
        var input: Int32 = 0
        while generated < count {
            let token = sampler.sample(logits: decoder.logits, settings: settings, generator: &generator)
            generated += 1
            if !onToken(token) || generated == count { break }
            input = Int32(token)
            decoder.advance(&input)
        }
        return generated
    }

    /// Generates `count` characters after `prompt` (or `primer`) for each of `generators.count` samples at once:
    /// one batched step per character where the model's decoder takes a batch, sample k drawing from
    /// `generators[k]` alone. Each sample is the text `stream` writes with that generator, character for character
    /// (a batched decoder computes each row as the single one does). `onStep` gets the step's characters, one per
    /// sample (-1 for a sample that has none in this call); returning false stops early. Returns how many characters
    /// each sample got.
    @discardableResult
    public func streamSamples(
        prompt: [Int], count: Int, settings: SamplingSettings, primer: Int, generators: inout [SeededGenerator],
        cancellation: Cancellation = .never, onStep: ([Int]) -> Bool
    ) throws -> Int {
        try settings.validate()
        try Setting.length.check(count)
        try Setting.samples.check(generators.count)
        let K = generators.count
        guard K > 1, let decoder = try decoder(batch: K) else {
            // one sample, or a model that decodes one sequence at a time: the samples one after another
            var generated = 0
            var step = [Int](repeating: -1, count: K)
            for k in 0..<K {
                generated = try stream(prompt: prompt, count: count, settings: settings, primer: primer,
                                       generator: &generators[k], cancellation: cancellation) { token in
                    step[k] = token
                    defer { step[k] = -1 }
                    return onStep(step)
                }
            }
            return generated
        }
        try start(decoder, prompt: prompt.isEmpty ? [primer] : prompt, cancellation: cancellation)
        let V = model.vocabularySize
        var tokens = [Int](repeating: 0, count: K)
        var inputs = [Int32](repeating: 0, count: K)
        var generated = 0
        // Sample k draws from generators[k] alone, so the threads can share the samples (each with a sampler of
        // its own) and give the same characters however they share them. 16 samples at H 256 spent about 8% (the
        // LSTM) to 13% (the RNN) of each step drawing on one thread while the others waited.
        let team = K >= Self.minimumSamplesShared ? context.team : ThreadTeam.solo
        let samplers = [sampler] + teamSamplers
        while generated < count {
            let logits = decoder.logits
            tokens.withUnsafeMutableBufferPointer { tokens in
                inputs.withUnsafeMutableBufferPointer { inputs in
                    generators.withUnsafeMutableBufferPointer { generators in
                        team.run { member in
                            let sampler = samplers[member.index]
                            for k in member.share(of: K) {
                                tokens[k] = sampler.sample(logits: logits + k * V, settings: settings,
                                                           generator: &generators[k])
                                inputs[k] = Int32(tokens[k])
                            }
                        }
                    }
                }
            }
            generated += 1
            if !onStep(tokens) || generated == count { break }
            decoder.advance(inputs)
        }
        return generated
    }

    /// `stream`, keeping the generated tokens (not the prompt) and returning them.
    @discardableResult
    public func generate(
        prompt: [Int], count: Int, settings: SamplingSettings, primer: Int,
        generator: inout SeededGenerator, onToken: (Int) -> Bool = { _ in true }
    ) throws -> [Int] {
        var output: [Int] = []
        try stream(prompt: prompt, count: count, settings: settings, primer: primer, generator: &generator) { token in
            output.append(token)
            return onToken(token)
        }
        return output
    }
}
