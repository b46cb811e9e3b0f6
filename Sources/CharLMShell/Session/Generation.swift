// `gen` and `samples K`: a prompt encoded as the model's vocabulary says, then the engine's one generation loop
// (TextGenerator) streaming characters to stdout, or K samples generated together and written one after another.
// `ngram gen` runs the same loop on an n-gram model (Inspection/Compare.swift).

import CharLM
import Foundation

extension Session {
    /// Streams `count` characters after `prompt` to stdout. Ctrl-C stops early.
    /// A prompt's tokens under `vocabulary` and the text they spell (what is echoed), noting what was left out.
    func encodePrompt(_ prompt: String, vocabulary: Vocabulary) -> (encoding: Vocabulary.Encoding, text: String) {
        let encoding = vocabulary.encode(prompt)
        if encoding.droppedCount > 0 {
            console.note("note: left out \(encoding.droppedCount) character\(encoding.droppedCount == 1 ? "" : "s") the model does not know: "
                         + encoding.dropped.map(visible).joined(separator: " ") + "\n")
        }
        let removed = describeChanges(encoding.report).filter { $0.contains("dropped") || $0.contains("removed") }
        if !removed.isEmpty { console.note("note: normalisation left out " + removed.joined(separator: ", ") + "\n") }
        return (encoding, (try? vocabulary.decode(encoding.tokens)) ?? "")
    }

    public func generate(prompt: String, count: Int) throws {
        guard let model, let vocabulary else { throw ShellError.needs(.model) }
        try checkFinite(model)
        let (encoding, promptText) = encodePrompt(prompt, vocabulary: vocabulary)
        let primer = try inspector().primer
        if settings.samples > 1 {
            return try generateSamples(prompt: encoding.tokens, promptText: promptText, count: count, primer: primer,
                                       model: model, vocabulary: vocabulary)
        }
        try stream(TextGenerator(model: model, context: context, weights: settings.bf16 ? .bfloat16 : .float32),
                   prompt: encoding.tokens, promptText: promptText, count: count, primer: primer,
                   vocabulary: vocabulary, command: "gen")
    }

    /// Writes `promptText`, then streams `count` characters from `generator` to stdout as they are drawn (the one
    /// loop of `gen` and `ngram gen`); Ctrl-C stops it, keeping what was written.
    func stream(_ generator: TextGenerator, prompt: [Int], promptText: String, count: Int, primer: Int,
                vocabulary: Vocabulary, command: String) throws {
        console.out(shown(promptText))
        var stopped = false
        let start = Date()
        var generated = 0
        var randomness = sampleGenerator
        defer { sampleGenerator = randomness }
        // Keys typed meanwhile are not echoed into the text, and run afterwards (a pasted session keeps its lines).
        do {
            try whileRunningLong(true) {
                try generator.stream(
                    prompt: prompt, count: count, settings: settings.sampling, primer: primer, generator: &randomness,
                    cancellation: cancellation
                ) { token in
                    console.out(shown(vocabulary.character(token)))
                    generated += 1
                    if interruptRequested() {
                        stopped = true
                        return false
                    }
                    return true
                }
            }
        } catch {
            // refused (memory) or stopped before the first character: end the prompt's line, so that the error
            // starts a line of its own
            if !promptText.isEmpty || generated > 0 { console.out("\n") }
            throw error
        }
        console.out("\n")
        try endGeneration(quantity(generated, "character"), characters: generated,
                          seconds: Date().timeIntervalSince(start), stopped: stopped,
                          stoppedAfter: "\(grouped(generated)) character\(generated == 1 ? "" : "s")", command: command)
    }

    /// Generated text as stdout shows it: byte-exact to a pipe; at a terminal, its control characters spelled out.
    func shown(_ text: String) -> String { console.outputIsTerminal ? terminalSafe(text) : text }

    /// How fast `gen` went, as llm-tool says it: at a terminal only (a pipe gets the text alone); then, when Ctrl-C
    /// stopped it, the note and `Interrupted`.
    func endGeneration(_ what: String, characters: Int, seconds: Double, stopped: Bool,
                       stoppedAfter: String, command: String = "gen") throws {
        if console.isTerminal {
            console.detail("\(what) in " + String(format: "%.2f s", seconds)
                           + (seconds > 0 ? ", \(grouped(Int(Double(characters) / seconds))) characters/s" : ""))
        }
        if stopped {
            clearInterrupt()
            console.note("interrupted: `\(command)` stopped after \(stoppedAfter)\n")
            throw Interrupted(description: "generation interrupted")
        }
    }

    /// `samples` (K > 1) independent samples of `count` characters, generated together (one batched step per
    /// character) and written one after the other under a header each. Sample k draws from its own generator, seeded
    /// from the session's sampling stream, so the same seed gives the same K samples. Ctrl-C stops all of them at the
    /// same length, and what was generated is written.
    private func generateSamples(prompt: [Int], promptText: String, count: Int, primer: Int, model: any LanguageModel,
                                 vocabulary: Vocabulary) throws {
        let K = settings.samples
        // The samples are kept until all are done: 4 bytes per character (a token index).
        try MemoryBudget.check(Double(K) * Double(count) * 4, for: "\(K) samples of \(grouped(count)) characters",
                               hint: "lower `samples` or N")
        var generators = (0..<K).map { _ in SeededGenerator(seed: sampleGenerator.next()) }
        var texts = [[Int32]](repeating: [], count: K)
        for k in 0..<K { texts[k].reserveCapacity(count) }
        var stopped = false
        let start = Date()
        var lastStatus = start
        var generated = 0
        // Keys typed meanwhile are not echoed into the live line, and are read afterwards (as in `gen` of one sample).
        try whileRunningLong(true) {
            generated = try TextGenerator(model: model, context: context).streamSamples(
                prompt: prompt, count: count, settings: settings.sampling, primer: primer, generators: &generators,
                cancellation: cancellation
            ) { tokens in
                for (k, token) in tokens.enumerated() where token >= 0 { texts[k].append(Int32(token)) }
                // At a terminal, a live line while the samples grow (they are written when done).
                if console.isTerminal, Date().timeIntervalSince(lastStatus) > 0.25 {
                    lastStatus = Date()
                    console.status("generating \(K) samples: \(grouped(texts[K - 1].count)) of \(grouped(count)) "
                                   + "characters")
                }
                if interruptRequested() {
                    stopped = true
                    return false
                }
                return true
            }
        }
        let seconds = Date().timeIntervalSince(start)
        console.endStatus()
        for (k, tokens) in texts.enumerated() {
            console.out("--- sample \(k + 1) of \(K) ---\n")
            console.out(shown(promptText + tokens.map { vocabulary.character(Int($0)) }.joined()) + "\n")
        }
        try endGeneration("\(K) samples x " + quantity(generated, "character"), characters: generated * K,
                          seconds: seconds, stopped: stopped,
                          stoppedAfter: "\(grouped(generated)) character\(generated == 1 ? "" : "s") per sample")
    }

}
