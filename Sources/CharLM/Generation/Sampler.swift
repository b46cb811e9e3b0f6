// Prompt -> tokens -> model state -> distribution -> sampler -> characters. `Sampler` shapes a distribution from
// logits (temperature, top-k, top-p) and draws from it; `TextGenerator` feeds a prompt and then one character at a
// time, carrying the LSTM state between calls.

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
        var sum = 0.0
        for v in 0..<V {
            let e = exp((Double(logits[v]) - Double(maximum)) * inverseTemperature)
            probabilities[v] = e
            sum += e
        }
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

/// Generates text from a model: feeds a prompt, then samples one character at a time, carrying the LSTM state.
public final class TextGenerator {
    public let model: CharModel
    public let sampler: Sampler
    /// Prompts are fed in chunks of at most this many characters.
    private let chunk = 256
    /// Feeds prompts (many characters per pass).
    private let workspace: ModelWorkspace
    /// Generates, one character per step (Stepper.swift); nil where that path does not run the model, or its copy of
    /// the weights would not fit in memory, and `workspace` steps instead.
    private let stepper: Stepper?

    /// - Parameter weights: the precision single-sample generation reads the weights in (`samples` above 1 always
    ///   reads float32).
    public init(model: CharModel, context: ComputeContext = .machine, weights: GenerationWeights = .float32) {
        self.model = model
        sampler = Sampler(vocabularySize: model.config.vocabularySize)
        workspace = model.makeWorkspace(length: chunk, batch: 1, context: context)
        let stepperFits = Double(Stepper.bytes(config: model.config, batch: 1)) < MemoryBudget.usableBytes / 2
        stepper = Stepper.supports(model.config) && stepperFits
            ? Stepper(config: model.config, batch: 1, weights: weights) : nil
    }

    /// Feeds `tokens` from a zero state and returns the logits after the last one (V values).
    public func logits(after tokens: [Int], cancellation: Cancellation = .never) throws -> [Float] {
        try feed(tokens, carryState: false, cancellation: cancellation)
        let V = model.config.vocabularySize
        return Array(UnsafeBufferPointer(start: lastLogits, count: V))
    }

    /// Feeds `prompt` (or `primer` alone when the prompt is empty) from a zero state, then generates `count`
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
        try feed(prompt.isEmpty ? [primer] : prompt, carryState: false, cancellation: cancellation)
        var generated = 0
        if let stepper {
            // The parameters may have changed since the last call (training in between): copy them again.
            stepper.refresh(from: model, context: workspace.context)
            stepper.loadState(from: workspace)
            var logits = lastLogits
            var input: Int32 = 0
            while generated < count {
                let token = sampler.sample(logits: logits, settings: settings, generator: &generator)
                generated += 1
                if !onToken(token) || generated == count { break }
                input = Int32(token)
                stepper.step(tokens: &input, context: workspace.context)
                logits = UnsafePointer(stepper.logits.pointer)
            }
            return generated
        }
        var unused = SeededGenerator(seed: 0)
        while generated < count {
            let token = sampler.sample(logits: lastLogits, settings: settings, generator: &generator)
            generated += 1
            if !onToken(token) || generated == count { break }
            workspace.inputs[0] = Int32(token)
            // The parameters cannot change inside this loop, so the input table that `feed` built is reused.
            model.forward(length: 1, batch: 1, workspace: workspace, mode: .inference, generator: &unused,
                          carryState: true, reuseDerivedWeights: true)
            workspace.carryState(length: 1, batch: 1)
            lastRow = 0
        }
        return generated
    }

    /// Generates `count` characters after `prompt` (or `primer`) for each of `generators.count` samples at once:
    /// one batched step per character (Stepper.swift), sample k drawing from `generators[k]` alone. Each sample is
    /// the text `stream` writes with that generator, character for character (the batched step computes each row
    /// as the single one does). `onStep` gets the step's characters, one per sample; returning false stops early.
    /// Returns how many characters each sample got.
    @discardableResult
    public func streamSamples(
        prompt: [Int], count: Int, settings: SamplingSettings, primer: Int, generators: inout [SeededGenerator],
        cancellation: Cancellation = .never, onStep: ([Int]) -> Bool
    ) throws -> Int {
        try settings.validate()
        try Setting.length.check(count)
        try Setting.samples.check(generators.count)
        let K = generators.count
        guard K > 1, Stepper.supports(model.config) else {
            // one sample, or a model only the single path runs: the samples one after another
            var generated = 0
            var step = [Int](repeating: -1, count: K)  // -1: no character of that sample in this call
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
        try MemoryBudget.check(Double(Stepper.bytes(config: model.config, batch: K)), for: "\(K) samples at once",
                               hint: "lower `samples`")
        // made before the prompt is fed, while the budget just checked still holds
        let stepper = batchStepper(size: K)
        try feed(prompt.isEmpty ? [primer] : prompt, carryState: false, cancellation: cancellation)
        stepper.refresh(from: model, context: workspace.context)
        stepper.loadState(from: workspace)
        let V = model.config.vocabularySize
        // every sample's first character comes from the prompt's logits
        let promptLogits = Array(UnsafeBufferPointer(start: lastLogits, count: V))
        var tokens = [Int](repeating: 0, count: K)
        var inputs = [Int32](repeating: 0, count: K)
        var generated = 0
        while generated < count {
            for k in 0..<K {
                tokens[k] = generated == 0
                    ? promptLogits.withUnsafeBufferPointer {
                        sampler.sample(logits: $0.baseAddress!, settings: settings, generator: &generators[k])
                    }
                    : sampler.sample(logits: stepper.logits.pointer + k * V, settings: settings,
                                     generator: &generators[k])
                inputs[k] = Int32(tokens[k])
            }
            generated += 1
            if !onStep(tokens) || generated == count { break }
            stepper.step(tokens: inputs, context: workspace.context)
        }
        return generated
    }

    /// The stepper for `size` samples, kept for the next call with as many.
    private func batchStepper(size: Int) -> Stepper {
        if let batched, batched.batch == size { return batched }
        let made = Stepper(config: model.config, batch: size)
        batched = made
        return made
    }
    private var batched: Stepper?

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

    /// Row of the logits buffer that holds the latest prediction.
    private var lastRow = 0
    private var lastLogits: UnsafePointer<Float> {
        UnsafePointer(workspace.logits.pointer + lastRow * model.config.vocabularySize)
    }

    /// Runs `tokens` through the model in chunks, leaving the state after the last in slot 0.
    private func feed(_ tokens: [Int], carryState: Bool, cancellation: Cancellation) throws {
        let V = model.config.vocabularySize
        for token in tokens where token < 0 || token >= V {
            throw CharLMError.tokenOutOfRange(token: token, vocabularySize: V)
        }
        guard !tokens.isEmpty else { throw CharLMError.emptyPrompt }
        var unused = SeededGenerator(seed: 0)
        var start = 0
        var carry = carryState
        while start < tokens.count {
            try cancellation.check()
            let T = min(chunk, tokens.count - start)
            for t in 0..<T { workspace.inputs[t] = Int32(tokens[start + t]) }
            model.forward(length: T, batch: 1, workspace: workspace, mode: .inference, generator: &unused,
                          carryState: carry, reuseDerivedWeights: start > 0)
            workspace.carryState(length: T, batch: 1)
            lastRow = T - 1
            carry = true
            start += T
        }
    }
}
