// Seeing inside the model: the reports behind `vocab`, `encode`, `decode`, `windows`, `next`, `trace`, `cells` and
// `novelty`. An `Inspector` is a read-only view of a session's model, vocabulary and text (`Session.inspector()`);
// each report asks the engine's public API (Vocabulary, Dataset, TextGenerator, Sampler and its ranking, RecurrentModel and
// its workspace) and turns the answer into text, without repeating the engine's math. Charts, bars, colours and pages
// are drawn in Render.swift.

import CharLM
import Foundation

/// A session's model, vocabulary and text, for the inspection commands. Changes nothing but the generator it is given.
public struct Inspector {
    /// The model, through the interface every family answers (generation, scores).
    public let network: any TrainableLanguageModel
    public let vocabulary: Vocabulary
    /// The loaded text, if any (it may be another text than the model's).
    public let corpus: Corpus?
    public let dataset: Dataset?
    public let settings: Settings
    let context: ComputeContext
    /// Ctrl-C, for feeding long texts.
    let cancellation: Cancellation
    let console: Console

    /// The loaded text, when it is the text of the current model's vocabulary.
    /// The most training characters `novelty` compares a sample with.
    static let noveltySourceLimit = 5_000_000

    /// The most characters x cells `cells --html` writes.
    static let maximumPageCells = 2_000_000

    /// The recurrent model, for the commands that look at a recurrent network's state (`cells`, `gates`): a model of
    /// another family is refused with a message that names the command.
    func recurrentModel(for command: String) throws -> RecurrentModel {
        guard let model = network as? RecurrentModel else {
            if network is TransformerModel {
                throw ShellError.badArgument("`\(command)` is for recurrent models (LSTM, GRU, RNN), which carry a memory from "
                                             + "character to character; a transformer keeps none and looks back over the text "
                                             + "instead: `attn \"TEXT\"` shows where it looks")
            }
            throw ShellError.badArgument("`\(command)` looks at a recurrent network's state (its cells and gates), and this model "
                                         + "(\(network.summary)) keeps none")
        }
        return model
    }

    private func requireCorpus(for command: String) throws -> (Corpus, Dataset) {
        guard let corpus, let dataset else { throw ShellError.needs(.text(command: command)) }
        if corpus.vocabulary != vocabulary { throw ShellError.vocabularyMismatch(forTraining: false) }
        return (corpus, dataset)
    }

    /// What generation starts from when a prompt is empty: a newline, else the text's most frequent character.
    var primer: Int {
        vocabulary.index(of: "\n") ?? corpus.flatMap { $0.vocabulary == vocabulary ? $0.primer : nil } ?? 0
    }

    /// Tokens of a prompt, as `gen` feeds it: the primer alone when the prompt is empty.
    private func encodePrompt(_ text: String) throws -> [Int] {
        text.isEmpty ? [primer] : try encodeForModel(text, vocabulary: vocabulary)
    }

    /// Tokens of `text` for a command that feeds it to the model; unknown characters are noted and left out.
    func encodeForModel(_ text: String, vocabulary: Vocabulary) throws -> [Int] {
        let encoding = vocabulary.encode(text)
        if encoding.droppedCount > 0 {
            console.note("note: left out \(encoding.droppedCount) character\(encoding.droppedCount == 1 ? "" : "s") the model does not know: "
                         + encoding.dropped.map(visible).joined(separator: " ") + "\n")
        }
        guard !encoding.tokens.isEmpty else {
            if text.isEmpty { throw ShellError.badArgument("the text is empty: give at least one character, e.g. \"ROMEO:\"") }
            throw ShellError.badArgument("\"\(text)\" has no character the model knows (after normalisation); `vocab` lists them")
        }
        return encoding.tokens
    }

    // MARK: Text to numbers

    /// `vocab`: every character with its index and (when the text is loaded) its count.
    public func vocabularyTable() -> String {
        let counts = corpus.flatMap { $0.vocabulary == vocabulary ? $0.counts : nil }
        let countsNote = counts != nil ? "count in the text)"
            : corpus == nil ? "no counts: no text is loaded)" : "no counts: the loaded text is not the model's)"
        var lines = [quantity(vocabulary.count, "character") + " (index, character, " + countsNote]
        let entries = (0..<vocabulary.count).map { index -> String in
            let shown = visible(vocabulary.scalars[index]).padding(toLength: 8, withPad: " ", startingAt: 0)
            let count = counts.map { grouped($0[index]).leftPadded(to: 9) } ?? ""
            return String(index).leftPadded(to: 4) + "  " + shown + count
        }
        // As many entries across as the width holds (each is about 23 columns wide, three spaces apart).
        let perLine = max(1, (console.width - 1 + 3) / ((entries.map(\.count).max() ?? 20) + 3))
        for start in stride(from: 0, to: entries.count, by: perLine) {
            lines.append(entries[start..<min(start + perLine, entries.count)].joined(separator: "   "))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `encode "TEXT"`: the indices, what normalisation changed, and what was left out.
    public func encodeReport(_ text: String) -> String {
        let encoding = vocabulary.encode(text)
        var lines = ["\(encoding.tokens.count) token\(encoding.tokens.count == 1 ? "" : "s"): "
                     + encoding.tokens.map(String.init).joined(separator: " ")]
        let report = encoding.report
        let changes = describeChanges(report)
        lines.append("normalisation (lowercase \(vocabulary.normalization.lowercase ? "on" : "off"), ascii "
                     + "\(vocabulary.normalization.ascii ? "on" : "off")): " + (changes.isEmpty ? "changed nothing" : changes.joined(separator: ", ")))
        if encoding.droppedCount > 0 {
            lines.append("left out (not in the vocabulary): " + encoding.dropped.map(visible).joined(separator: " ")
                         + " (\(encoding.droppedCount) in all)")
        }
        if let decoded = try? vocabulary.decode(encoding.tokens) {
            lines.append("the model sees: " + decoded.unicodeScalars.map(visible).joined(separator: " "))
        }
        return lines.map { wrap($0, width: console.width - 1, indent: 2) }.joined(separator: "\n") + "\n"
    }

    /// `decode 3 17 42`: the characters of indices.
    public func decodeReport(_ words: [String]) throws -> String {
        var tokens: [Int] = []
        for word in words {
            guard let token = Int(word), token >= 0, token < vocabulary.count else {
                throw ShellError.badArgument("decode takes indices from 0 to \(vocabulary.count - 1); got '\(word)' (`vocab` lists them)")
            }
            tokens.append(token)
        }
        let text = try vocabulary.decode(tokens)
        return text.unicodeScalars.map(visible).joined(separator: " ") + "\n" + text + "\n"
    }

    // MARK: Training pairs

    /// `windows N`: N training windows drawn as the trainer draws them, inputs above the characters to predict.
    public func windowsReport(count: Int) throws -> String {
        let (corpus, dataset) = try requireCorpus(for: "windows")
        let T = settings.seq
        try dataset.checkTrainable(length: T)
        let vocabulary = corpus.vocabulary
        let inputs = UnsafeMutablePointer<Int32>.allocate(capacity: T * count)
        let targets = UnsafeMutablePointer<Int32>.allocate(capacity: T * count)
        defer { inputs.deallocate(); targets.deallocate() }
        // A generator of its own, so looking does not change what training draws next.
        var generator = SeededGenerator(seed: settings.seed &+ 2)
        dataset.sampleBatch(length: T, batch: count, generator: &generator, inputs: inputs, targets: targets)
        // Three columns a character after an 8-column label, as many as the terminal holds.
        let shown = max(1, min(T, (console.width - 1 - 8) / 3))
        func cell(_ token: Int32) -> String {
            let scalar = vocabulary.scalars[Int(token)]
            let text: String
            switch scalar {
            case "\n": text = "\\n"
            case " ": text = "␣"
            case "\t": text = "\\t"
            default: text = scalar.value < 0x20 ? "?" : String(Character(scalar))
            }
            return text.leftPadded(to: 3)
        }
        var lines = [wrap("\(count) training window\(count == 1 ? "" : "s") of seq = \(T) characters (first \(shown) shown); "
                          + "the model reads the input row and must predict, at each position, the character below it:",
                          width: console.width - 1)]
        for b in 0..<count {
            lines.append("window \(b + 1):")
            lines.append("  input " + (0..<shown).map { cell(inputs[$0 * count + b]) }.joined())
            lines.append("  target" + (0..<shown).map { cell(targets[$0 * count + b]) }.joined())
        }
        lines.append(wrap("(␣ is a space; each target is the next input: training pairs are the text shifted by one)",
                          width: console.width - 1, indent: 1))
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: Prediction and sampling

    /// The distributions after `tokens` under each of `samplings`, as (probabilities by index, indices by decreasing
    /// probability with ties to the lower index); the prompt is fed once.
    private func distributions(after tokens: [Int], model: any LanguageModel, samplings: [SamplingSettings]) throws -> [(probabilities: [Double], order: [Int])] {
        let textGenerator = TextGenerator(model: model, context: context)
        var logits = try textGenerator.logits(after: tokens, cancellation: cancellation)
        let sampler = textGenerator.sampler
        var order: [Int] = []
        return samplings.map { sampling in
            logits.withUnsafeMutableBufferPointer { sampler.prepare(logits: UnsafePointer($0.baseAddress!), settings: sampling) }
            rankIndices(UnsafeBufferPointer(sampler.probabilities), into: &order)
            return (Array(sampler.probabilities), order)
        }
    }

    /// `next "PROMPT" K`: the K most likely next characters at temperature 1 and under the current sampling settings.
    public func nextReport(prompt: String, count: Int) throws -> String {
        let tokens = try encodePrompt(prompt)
        let both = try distributions(after: tokens, model: network, samplings: [SamplingSettings(temperature: 1), settings.sampling])
        let (plain, current) = (both[0], both[1])
        let k = min(count, vocabulary.count)
        let barWidth = 20
        func bar(_ p: Double) -> String { probabilityBar(p, width: barWidth) }
        let label = describeSampling(settings.sampling)
        let plainSampling = settings.sampling == SamplingSettings(temperature: 1)
        var lines = [wrap("after \"\(abbreviated(prompt.replacingOccurrences(of: "\n", with: "\\n"), limit: 60))\": the \(k) most likely next characters",
                          width: console.width - 1, indent: 2),
                     "char     temp 1".rightPadded(to: 9 + barWidth + 9) + (plainSampling ? "" : " " + label)]
        // When sampling is plain temperature 1 the two distributions are one: one column.
        for rank in 0..<k {
            let index = plain.order[rank]
            let pPlain = plain.probabilities[index], pCurrent = current.probabilities[index]
            lines.append(visible(vocabulary.scalars[index]).rightPadded(to: 9) + bar(pPlain) + String(format: " %6.2f%%", pPlain * 100)
                         + (plainSampling ? "" : "  " + bar(pCurrent) + String(format: " %6.2f%%", pCurrent * 100)))
        }
        let restPlain = 1 - (0..<k).reduce(0.0) { $0 + plain.probabilities[plain.order[$1]] }
        let restCurrent = 1 - (0..<k).reduce(0.0) { $0 + current.probabilities[plain.order[$1]] }
        lines.append("others".rightPadded(to: 9 + barWidth) + String(format: " %6.2f%%", max(0, restPlain) * 100)
                     + (plainSampling ? "" : "  " + String(repeating: " ", count: barWidth) + String(format: " %6.2f%%", max(0, restCurrent) * 100)))
        return lines.joined(separator: "\n") + "\n"
    }

    /// "temp 0.8, top-k 5, top-p 0.9", naming only what is on.
    private func describeSampling(_ sampling: SamplingSettings) -> String {
        var parts = ["temp \(formatNumber(sampling.temperature))"]
        if sampling.topK > 0 { parts.append("top-k \(sampling.topK)") }
        if sampling.topP < 1 { parts.append("top-p \(formatNumber(sampling.topP))") }
        return parts.joined(separator: ", ")
    }

    /// `trace "PROMPT" N`: generates N characters, one line each: the choice, its probability and rank, the top
    /// alternatives, and how many characters the top-k / top-p cut-offs kept.
    public func traceReport(prompt: String, count: Int, alternatives: Int = 4, generator: inout SeededGenerator) throws -> String {
        let tokens = try encodePrompt(prompt)
        let textGenerator = TextGenerator(model: network, context: context)
        let sampler = textGenerator.sampler
        let sampling = settings.sampling
        var lines = [wrap("sampling after \"\(abbreviated(prompt.replacingOccurrences(of: "\n", with: "\\n"), limit: 60))\" with \(describeSampling(sampling)):",
                          width: console.width - 1, indent: 2),
                     console.width - 1 >= 66 ? "step  char   prob   rank  kept  alternatives (| marks the cut-off)"
                         : "step  char   prob   rank  kept  alternatives"]
        var generated = ""
        var step = 0
        var order: [Int] = []
        try textGenerator.stream(prompt: tokens, count: count, settings: sampling, primer: 0, generator: &generator,
                                 cancellation: cancellation) { token in
            step += 1
            // The sampler's probabilities are those of the draw just made (zero outside what the cut-offs kept).
            // The model's ranking: after a top-k or top-p cut the sampler's own order (by probability before the
            // cut, whose losers now have probability 0); without one, the probabilities themselves.
            if sampler.keptCount < vocabulary.count {
                order = sampler.order
            } else {
                rankIndices(UnsafeBufferPointer(sampler.probabilities), into: &order)
            }
            let rank = order.firstIndex(of: token)! + 1
            var line = String(step).leftPadded(to: 4) + "  " + visible(vocabulary.scalars[token]).rightPadded(to: 6)
                + String(format: "%5.3f", sampler.probabilities[token]) + String(rank).leftPadded(to: 7)
                + String(sampler.keptCount).leftPadded(to: 6)
            // As many alternatives as the width holds; past the cut, in the model's order without a probability.
            for position in 0..<min(alternatives + 1, vocabulary.count) {
                let index = order[position]
                let piece = (position == sampler.keptCount ? "| " : "") + visible(vocabulary.scalars[index])
                    + (position < sampler.keptCount ? String(format: " %.2f", sampler.probabilities[index]) : "")
                guard line.count + 2 + piece.count <= console.width - 1 else { break }
                line += "  " + piece
            }
            lines.append(line)
            generated += vocabulary.character(token)
            return true
        }
        lines.append("text: " + generated.replacingOccurrences(of: "\n", with: "\\n"))
        return lines.joined(separator: "\n") + "\n"
    }


    // MARK: Memorised or new?

    /// What share of a generated text's words and character 8-grams occur in the training text, and the longest
    /// stretch copied verbatim (torch-rnn's novel-substrings idea).
    public struct Novelty: Equatable, Sendable {
        public var text: String
        public var words: Int
        public var knownWords: Int
        public var grams: Int
        public var knownGrams: Int
        /// The longest substring of `text` that occurs in the training text, and where it starts in `text`.
        public var longestCopy: (start: Int, length: Int)

        public static func == (a: Novelty, b: Novelty) -> Bool {
            a.text == b.text && a.words == b.words && a.knownWords == b.knownWords && a.grams == b.grams
                && a.knownGrams == b.knownGrams && a.longestCopy == b.longestCopy
        }
    }

    /// Measures `generated` (tokens) against the training split of the loaded text.
    public func novelty(of generated: [Int]) throws -> Novelty {
        let (corpus, dataset) = try requireCorpus(for: "novelty")
        // Compared with at most the first `noveltySourceLimit` characters of the training text: the hashes of a
        // 100 MB text would take gigabytes and minutes.
        let training = dataset.trainRange.prefix(Self.noveltySourceLimit).map { corpus.tokens[$0] }
        try cancellation.check()
        let vocabulary = corpus.vocabulary
        let gram = 8
        let trainingGrams = Set(hashedGrams(training, length: gram))
        let generatedGrams = generated.count >= gram ? hashedGrams(generated, length: gram) : []
        let knownGrams = generatedGrams.filter { trainingGrams.contains($0) }.count
        // Words: runs of letters (and apostrophes inside them), compared exactly.
        func words(_ tokens: [Int]) -> [String] {
            var result: [String] = [], current = ""
            for token in tokens {
                let character = Character(vocabulary.scalars[token])
                if character.isLetter || (character == "'" && !current.isEmpty) {
                    current.append(character)
                } else if !current.isEmpty {
                    result.append(current)
                    current = ""
                }
            }
            if !current.isEmpty { result.append(current) }
            return result.map { $0.hasSuffix("'") ? String($0.dropLast()) : $0 }.filter { !$0.isEmpty }
        }
        let trainingWords = Set(words(training))
        let generatedWords = words(generated)
        try cancellation.check()
        let longest = try longestCopiedRun(generated, in: training, cancellation: cancellation)
        return Novelty(text: (try? vocabulary.decode(generated)) ?? "", words: generatedWords.count,
                       knownWords: generatedWords.filter { trainingWords.contains($0) }.count,
                       grams: generatedGrams.count, knownGrams: knownGrams, longestCopy: longest)
    }

    /// `novelty N`: generates N characters (current sampling settings, from the primer) and reports `novelty(of:)`.
    public func noveltyReport(count: Int, color: ColorMode, generator: inout SeededGenerator) throws -> String {
        _ = try requireCorpus(for: "novelty")
        var generated: [Int] = []
        try TextGenerator(model: network, context: context).stream(
            prompt: [], count: count, settings: settings.sampling, primer: primer, generator: &generator
        ) { token in
            generated.append(token)
            return (try? cancellation.check()) != nil
        }
        try cancellation.check()
        let result = try novelty(of: generated)
        let scalars = Array(result.text.unicodeScalars)
        let (start, length) = result.longestCopy
        // Coloured at a terminal (written as given, `styledInfo`): the text's own control characters spelled out.
        func safe(_ part: ArraySlice<Unicode.Scalar>) -> String {
            let text = String(String.UnicodeScalarView(part))
            return console.outputIsTerminal ? terminalSafe(text) : text
        }
        let before = safe(scalars[..<start])
        let copied = safe(scalars[start..<(start + length)])
        let after = safe(scalars[(start + length)...])
        var output = color == .none ? before + "[[" + copied + "]]" + after : before + highlightEscape + copied + resetEscape + after
        output += "\n---\n"
        func percent(_ part: Int, _ whole: Int) -> String { whole == 0 ? "-" : String(format: "%.1f%%", 100 * Double(part) / Double(whole)) }
        let width = console.width - 1
        output += wrap("words found in the training text: \(grouped(result.knownWords)) of \(grouped(result.words)) (\(percent(result.knownWords, result.words)))", width: width, indent: 2) + "\n"
        output += wrap("character 8-grams found in the training text: \(grouped(result.knownGrams)) of \(grouped(result.grams)) (\(percent(result.knownGrams, result.grams)))", width: width, indent: 2) + "\n"
        output += wrap("longest run copied verbatim: " + quantity(length, "character") + (color == .none ? ", marked [[ ]]" : ", highlighted")
            + ": \"" + copied.replacingOccurrences(of: "\n", with: "\\n") + "\"", width: width, indent: 2) + "\n"
        return output
    }
}

/// 64-bit polynomial hashes of every `length`-token window of `tokens`.
func hashedGrams(_ tokens: [Int], length: Int) -> [UInt64] {
    guard tokens.count >= length else { return [] }
    let base: UInt64 = 1_000_003
    var power: UInt64 = 1
    for _ in 1..<length { power = power &* base }
    var hash: UInt64 = 0
    for index in 0..<length { hash = hash &* base &+ UInt64(tokens[index] + 1) }
    var hashes = [hash]
    hashes.reserveCapacity(tokens.count - length + 1)
    for index in length..<tokens.count {
        hash = (hash &- UInt64(tokens[index - length] + 1) &* power) &* base &+ UInt64(tokens[index] + 1)
        hashes.append(hash)
    }
    return hashes
}

/// The longest run of `text` that occurs somewhere in `source`: binary search on the length, each length tested with
/// hashed windows, the answer confirmed by direct comparison.
func longestCopiedRun(_ text: [Int], in source: [Int], cancellation: Cancellation = .never) throws -> (start: Int, length: Int) {
    func occurrence(length: Int) -> Int? {
        guard length > 0 else { return 0 }
        let sourceGrams = hashedGrams(source, length: length)
        let lookup = Dictionary(sourceGrams.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { first, _ in first })
        for (start, hash) in hashedGrams(text, length: length).enumerated() {
            if let at = lookup[hash], Array(source[at..<(at + length)]) == Array(text[start..<(start + length)]) { return start }
        }
        return nil
    }
    var (low, high) = (0, min(text.count, source.count))
    var best = (start: 0, length: 0)
    while low < high {
        try cancellation.check()
        let middle = (low + high + 1) / 2
        if let start = occurrence(length: middle) {
            best = (start, middle)
            low = middle
        } else {
            high = middle - 1
        }
    }
    return best
}
