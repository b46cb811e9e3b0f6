// One live session: settings, corpus, dataset, model, optimizer and histories, and the operations commands perform
// on them. Commands (Commands.swift) parse words and call these; nothing here reads input.

import CharLM
import Foundation

/// Raised when Ctrl-C stopped a long command; the session is consistent.
public struct Interrupted: Error, CustomStringConvertible {
    public let description: String
}

/// The state every command acts on.
public final class Session {
    public var settings = Settings()
    public let console: Console
    /// Polled between training steps and generated characters; true once Ctrl-C was pressed.
    public var interruptRequested: () -> Bool = { false }
    /// Clears the Ctrl-C flag.
    public var clearInterrupt: () -> Void = {}
    /// Where `load NAME` and `load URL` keep downloads.
    public var downloads = Downloads()

    public private(set) var corpus: Corpus?
    public private(set) var corpusName: String?
    public private(set) var dataset: Dataset?
    public private(set) var model: CharLSTM?
    /// The model's vocabulary.
    public private(set) var vocabulary: Vocabulary?
    private var trainer: Trainer?
    /// Training state read from a checkpoint, applied when training next starts.
    private var pendingResume: (training: TrainingState, optimizer: OptimizerState?)?
    /// The fingerprint of the text the loaded checkpoint was trained on.
    private var checkpointCorpus: CorpusFingerprint?
    /// (step, validation loss) pairs.
    public private(set) var validationHistory: [(step: Int, loss: Double)] = []
    /// Draws generated characters.
    public var sampleGenerator = SeededGenerator(seed: 1337)
    /// The last path `save` or a checkpoint `load` used.
    public private(set) var lastSavePath: String?

    public init(console: Console) {
        self.console = console
        sampleGenerator = SeededGenerator(seed: settings.seed)
        ComputeThreads.set(settings.threads)
    }

    /// Completed training steps.
    public var step: Int { trainer?.step ?? pendingResume?.training.step ?? 0 }
    /// Training loss of every step so far.
    public var lossHistory: [Double] { trainer?.lossHistory ?? pendingResume?.training.lossHistory ?? [] }

    /// Steps in one pass over the training split.
    public var stepsPerEpoch: Int? {
        guard let dataset else { return nil }
        let perStep = settings.seq * settings.batch
        return max(1, (dataset.trainRange.count + perStep - 1) / perStep)
    }

    // MARK: Settings

    /// Sets one setting, with the consequences its group implies.
    public func set(_ name: String, _ value: String) throws {
        guard let key = Settings.key(named: name) else {
            let hint = suggestion(for: name, among: Settings.keys.map(\.name))
            throw ShellError("unknown setting '\(name)'" + (hint.isEmpty ? "; `show` lists them" : hint))
        }
        var changed = settings
        try key.set(&changed, value)
        let before = settings
        settings = changed
        switch key.name {
        case "seed": sampleGenerator = SeededGenerator(seed: settings.seed)
        case "threads": ComputeThreads.set(settings.threads)
        default: break
        }
        if key.group == .model, let model, settings.modelConfig(vocabularySize: model.config.vocabularySize) != model.config,
           before.modelConfig(vocabularySize: model.config.vocabularySize) != settings.modelConfig(vocabularySize: model.config.vocabularySize) {
            console.note("note: the current model keeps its architecture; `reset` builds a new model with \(key.name) \(key.get(settings))\n")
        }
        if key.group == .data && corpus != nil {
            console.note("note: \(key.name) applies when text is next loaded\n")
        }
    }

    // MARK: Loading

    /// Loads a text corpus or a checkpoint (told apart by content) from a path, a URL or a built-in name.
    public func load(_ source: String) throws {
        let path: String
        if let name = Downloads.builtIn[source] {
            path = try downloads.fetch(name: source, dataset: name, console: console)
        } else if source.hasPrefix("http://") || source.hasPrefix("https://") {
            path = try downloads.fetch(url: source, console: console)
        } else {
            path = source
        }
        let bytes: [UInt8]
        do { bytes = try readFileBytes(at: path) } catch let error as CharLMError { throw ShellError(error.description) }
        if looksLikeSafeTensors(bytes) {
            try loadCheckpoint(bytes, path: path)
        } else {
            try loadText(bytes, name: path)
        }
    }

    private func looksLikeSafeTensors(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 10 else { return false }
        var length: UInt64 = 0
        for index in 0..<8 { length |= UInt64(bytes[index]) << (8 * UInt64(index)) }
        return bytes[8] == UInt8(ascii: "{") && length >= 2 && length <= UInt64(bytes.count - 8)
    }

    private func loadText(_ bytes: [UInt8], name: String) throws {
        let loaded: Corpus
        let split: Dataset
        do {
            loaded = try Corpus.make(utf8: bytes, normalization: settings.normalization, name: name)
            split = try Dataset(tokens: loaded.tokens, validationFraction: settings.val)
        } catch let error as CharLMError {
            throw ShellError(error.description)
        }
        let report = loaded.report
        let changes = describeChanges(report)
        console.info("loaded \(name): \(grouped(report.characters)) characters, \(loaded.vocabulary.count) distinct; "
                     + "training \(grouped(split.trainRange.count)), validation \(grouped(split.validationRange.count))\n")
        console.info("  normalisation: lowercase \(settings.lowercase ? "on" : "off"), ascii \(settings.ascii ? "on" : "off")"
                     + (changes.isEmpty ? "; nothing changed" : "; " + changes.joined(separator: ", ")) + "\n")
        // Keep the trainer's progress across a reload of the same text.
        if let trainer { pendingResume = trainer.state }
        trainer = nil
        corpus = loaded
        corpusName = name
        dataset = split
        if let model, let vocabulary {
            if vocabulary != loaded.vocabulary {
                console.note("warning: this text's characters (\(loaded.vocabulary.count)) differ from the model's (\(model.config.vocabularySize)); "
                             + "`reset` starts a new model on this text, or load text with the model's characters\n")
            } else if let checkpointCorpus, checkpointCorpus != loaded.fingerprint {
                console.note("note: this is not the text the model was trained on; training continues from step \(step) on it\n")
            }
        } else {
            try makeFreshModel(vocabulary: loaded.vocabulary)
        }
    }

    private func loadCheckpoint(_ bytes: [UInt8], path: String) throws {
        let checkpoint: Checkpoint
        let loadedModel: CharLSTM
        do {
            checkpoint = try Checkpoint.parse(bytes, path: path)
            loadedModel = try CharLSTM(config: checkpoint.config, parameters: checkpoint.parameters)
        } catch let error as CharLMError {
            throw ShellError(error.description)
        }
        // Everything checked: now replace the session's model and settings.
        var restored = settings
        restored.embed = checkpoint.config.embeddingSize
        restored.hidden = checkpoint.config.hiddenSize
        restored.layers = checkpoint.config.layerCount
        restored.dropout = checkpoint.config.dropout
        restored.lowercase = checkpoint.vocabulary.normalization.lowercase
        restored.ascii = checkpoint.vocabulary.normalization.ascii
        if let training = checkpoint.training {
            restored.seq = training.settings.steps
            restored.batch = training.settings.batch
            restored.lr = training.settings.learningRate
            restored.clip = training.settings.clip
            restored.warmup = training.settings.warmupSteps
            restored.decay = training.settings.decaySteps
            restored.val = training.validationFraction
        }
        if let sampling = checkpoint.sampling {
            restored.temp = sampling.temperature
            restored.topk = sampling.topK
            restored.topp = sampling.topP
        }
        var history: [(step: Int, loss: Double)] = []
        for (name, value) in checkpoint.settings {
            if name == "validation_history" {
                history = value.split(separator: ",").compactMap { pair in
                    let parts = pair.split(separator: ":")
                    guard parts.count == 2, let step = Int(parts[0]), let loss = Double(parts[1]) else { return nil }
                    return (step, loss)
                }
            } else if let key = Settings.key(named: name), key.group != .model {
                try? key.set(&restored, value)
            }
        }
        settings = restored
        ComputeThreads.set(settings.threads)
        model = loadedModel
        vocabulary = checkpoint.vocabulary
        trainer = nil
        if let training = checkpoint.training {
            pendingResume = (training, checkpoint.optimizer)
        } else {
            pendingResume = nil
        }
        checkpointCorpus = checkpoint.corpus
        validationHistory = history
        lastSavePath = path
        console.info("loaded checkpoint \(path): \(describeModel(loadedModel.config)), step \(step)\n")
        for note in checkpoint.notes { console.note("note: \(note)\n") }
        if let corpus {
            if corpus.vocabulary != checkpoint.vocabulary {
                console.note("warning: the loaded text's characters differ from the model's; load text with the model's characters before training\n")
            } else if let fingerprint = checkpoint.corpus, fingerprint != corpus.fingerprint {
                console.note("note: the loaded text is not the text this model was trained on\n")
            }
        }
    }

    // MARK: Model

    /// A new model from the current settings on the current text's characters (or the model's, without text).
    public func reset() throws {
        guard let vocabulary = corpus?.vocabulary ?? vocabulary else {
            throw ShellError("nothing to build a model for: `load` a text first")
        }
        try makeFreshModel(vocabulary: vocabulary)
    }

    private func makeFreshModel(vocabulary: Vocabulary) throws {
        var generator = SeededGenerator(seed: settings.seed)
        do {
            model = try CharLSTM(config: settings.modelConfig(vocabularySize: vocabulary.count), generator: &generator)
        } catch let error as CharLMError {
            throw ShellError(error.description)
        }
        self.vocabulary = vocabulary
        trainer = nil
        pendingResume = nil
        checkpointCorpus = nil
        validationHistory = []
        console.info("new model: \(describeModel(model!.config))\n")
    }

    func describeModel(_ config: ModelConfig) -> String {
        let count = ParameterLayout(config: config).totalCount
        return "E \(config.embeddingSize), H \(config.hiddenSize), L \(config.layerCount)"
            + (config.dropout > 0 ? ", dropout \(formatNumber(config.dropout))" : "")
            + ", V \(config.vocabularySize): \(grouped(count)) parameters"
    }

    /// The trainer for the current model and text, made (and resumed) on first use.
    private func readyTrainer() throws -> Trainer {
        guard let model, let vocabulary else { throw ShellError("no model yet: `load` a text first") }
        guard let corpus, let dataset else { throw ShellError("no text to train on: `load` a text first") }
        guard corpus.vocabulary == vocabulary else {
            throw ShellError("the loaded text's characters differ from the model's: `reset` for a new model on this text, or load text with the model's characters")
        }
        do {
            if let trainer {
                try trainer.apply(settings.training)
                return trainer
            }
            let made = try Trainer(model: model, dataset: dataset, settings: settings.training, seed: settings.seed &+ 1)
            if var resume = pendingResume {
                resume.training.settings = settings.training
                try made.restore(training: resume.training, optimizer: resume.optimizer)
                pendingResume = nil
            }
            trainer = made
            return made
        } catch let error as CharLMError {
            throw ShellError(error.description)
        }
    }

    // MARK: Training

    /// How long `train` runs.
    public enum TrainingAmount: Equatable, Sendable {
        case epochs(Double)
        case steps(Int)
        case seconds(Double)
    }

    /// Trains for `amount`, validating every `eval` steps and at the end. Ctrl-C stops after the current step.
    public func train(_ amount: TrainingAmount) throws {
        let trainer = try readyTrainer()
        let perEpoch = trainer.stepsPerEpoch
        let firstStep = trainer.step
        var total: Int? = nil
        var deadline: Date? = nil
        switch amount {
        case .epochs(let epochs): total = max(1, Int((epochs * Double(perEpoch)).rounded()))
        case .steps(let steps): total = steps
        case .seconds(let seconds): deadline = Date().addingTimeInterval(seconds)
        }
        let tokensPerStep = Double(settings.seq * settings.batch)
        let start = Date()
        var lastPlainLine = start
        var done = 0
        var lastValidation = validationHistory.last?.loss
        func progress(final: Bool) -> String {
            let elapsed = Date().timeIntervalSince(start)
            let rate = elapsed > 0 ? Double(done) * tokensPerStep / elapsed : 0
            var parts = ["step \(trainer.step)" + (total.map { "/\(firstStep + $0)" } ?? "")]
            parts.append(String(format: "epoch %.2f", Double(trainer.step) / Double(perEpoch)))
            if let loss = trainer.lossHistory.last {
                parts.append(String(format: "loss %.4f", loss) + (console.isTerminal ? " " + sparkline(trainer.lossHistory.suffix(20)) : ""))
            }
            if let lastValidation { parts.append(String(format: "val %.4f", lastValidation)) }
            parts.append("\(grouped(Int(rate))) tok/s")
            if !final {
                let remaining: Double? = total.map { Double($0 - done) * elapsed / Double(max(done, 1)) }
                    ?? deadline.map { $0.timeIntervalSinceNow }
                if let remaining, done > 0 { parts.append("ETA " + duration(max(0, remaining))) }
            }
            return parts.joined(separator: "  ")
        }
        func validate() throws {
            let evaluation = try trainer.evaluate()
            validationHistory.append((trainer.step, evaluation.nats))
            lastValidation = evaluation.nats
            if console.isTerminal { console.err("\r\u{1B}[K") }
            console.err(String(format: "step %d: validation loss %.4f nats/char (%.4f bits/char)\n", trainer.step, evaluation.nats, evaluation.bits))
        }
        do {
            while true {
                if let total, done >= total { break }
                if let deadline, Date() >= deadline { break }
                if interruptRequested() {
                    clearInterrupt()
                    if console.isTerminal { console.err("\r\u{1B}[K") }
                    console.err("interrupted after step \(trainer.step); the model and optimizer are consistent\n")
                    throw Interrupted(description: "training interrupted at step \(trainer.step)")
                }
                try trainer.trainStep()
                done += 1
                if settings.eval > 0 && trainer.step % settings.eval == 0 { try validate() }
                if console.isTerminal {
                    console.err("\r\u{1B}[K" + progress(final: false))
                } else if Date().timeIntervalSince(lastPlainLine) >= 10 {
                    console.err(progress(final: false) + "\n")
                    lastPlainLine = Date()
                }
            }
            if done > 0 && (settings.eval == 0 || trainer.step % settings.eval != 0) { try validate() }
        } catch let error as CharLMError {
            if console.isTerminal { console.err("\r\u{1B}[K") }
            throw ShellError(error.description)
        }
        if console.isTerminal { console.err("\r\u{1B}[K") }
        console.err(progress(final: true) + String(format: "  (%d steps in %@)\n", done, duration(Date().timeIntervalSince(start))))
    }

    /// Validation loss of the current model on the current text.
    public func evaluate() throws -> Evaluation {
        let trainer = try readyTrainer()
        do { return try trainer.evaluate() } catch let error as CharLMError { throw ShellError(error.description) }
    }

    // MARK: Generation

    /// Streams `count` characters after `prompt` to stdout. Ctrl-C stops early.
    public func generate(prompt: String, count: Int) throws {
        guard let model, let vocabulary else { throw ShellError("no model yet: `load` a text or a checkpoint first") }
        let encoding = vocabulary.encode(prompt)
        if encoding.droppedCount > 0 {
            console.note("note: left out \(encoding.droppedCount) character\(encoding.droppedCount == 1 ? "" : "s") the model does not know: "
                         + encoding.dropped.map(visible).joined(separator: " ") + "\n")
        }
        let primer = vocabulary.index(of: "\n") ?? corpus.flatMap { $0.vocabulary == vocabulary ? $0.primer : nil } ?? 0
        let promptText = (try? vocabulary.decode(encoding.tokens)) ?? ""
        console.out(promptText)
        var stopped = false
        do {
            try TextGenerator(model: model).generate(
                prompt: encoding.tokens, count: count, settings: settings.sampling, primer: primer, generator: &sampleGenerator
            ) { token in
                console.out(vocabulary.character(token))
                if interruptRequested() {
                    stopped = true
                    return false
                }
                return true
            }
        } catch let error as CharLMError {
            throw ShellError(error.description)
        }
        console.out("\n")
        if stopped {
            clearInterrupt()
            throw Interrupted(description: "generation interrupted")
        }
    }

    // MARK: Saving

    /// Saves everything to `path` (default: the last path used, else charlm.safetensors). Returns the path and size.
    @discardableResult
    public func save(to requested: String?) throws -> (String, Int) {
        guard let model, let vocabulary else { throw ShellError("nothing to save: there is no model yet") }
        let path = requested ?? lastSavePath ?? "charlm.safetensors"
        var training: TrainingState?
        var optimizer: OptimizerState?
        if let trainer {
            (training, optimizer) = (trainer.state.training, trainer.state.optimizer)
        } else if let pendingResume {
            (training, optimizer) = (pendingResume.training, pendingResume.optimizer)
        }
        var extra: [String: String] = [:]
        for key in Settings.keys where key.group == .system || ["length", "eval"].contains(key.name) {
            extra[key.name] = key.get(settings)
        }
        if !validationHistory.isEmpty {
            extra["validation_history"] = validationHistory.map { "\($0.step):\($0.loss)" }.joined(separator: ",")
        }
        let fingerprint = corpus.flatMap { $0.vocabulary == vocabulary ? $0.fingerprint : nil } ?? checkpointCorpus
        let checkpoint = Checkpoint(
            config: model.config, vocabulary: vocabulary, parameters: model.parameters.array, optimizer: optimizer,
            training: training, sampling: settings.sampling, corpus: fingerprint, settings: extra)
        let bytes = checkpoint.serialized()
        do {
            try Checkpoint.write(bytes, to: path)
        } catch let error as CharLMError {
            throw ShellError(error.description)
        }
        lastSavePath = path
        return (path, bytes.count)
    }
}

/// Values as a row of block characters, lowest ▁ to highest █ (the recent losses on the live progress line).
func sparkline<C: Collection>(_ values: C) -> String where C.Element == Double {
    guard let low = values.min(), let high = values.max() else { return "" }
    let blocks = Array("▁▂▃▄▅▆▇█")
    return String(values.map { value in
        high - low < 1e-12 ? blocks[0] : blocks[min(7, Int((value - low) / (high - low) * 8))]
    })
}

/// What normalisation changed, one phrase per kind of change (empty when nothing changed).
func describeChanges(_ report: NormalizationReport) -> [String] {
    func counted(_ count: Int, _ noun: String, _ what: String) -> String? {
        count > 0 ? "\(count) \(noun)\(count == 1 ? "" : "s") \(what)" : nil
    }
    return [
        counted(report.replacedSequences, "invalid UTF-8 sequence", "replaced"),
        counted(report.lineBreaksConverted, "line break", "converted to \\n"),
        counted(report.invisibleRemoved, "invisible character", "removed"),
        counted(report.foldedToASCII, "character", "folded to ASCII"),
        counted(report.droppedNonASCII, "non-ASCII character", "dropped"),
        counted(report.lowercased, "character", "lowercased"),
    ].compactMap { $0 }
}

/// 1234567 -> "1,234,567".
func grouped(_ value: Int) -> String {
    let digits = String(abs(value))
    var result = ""
    for (index, character) in digits.enumerated() {
        if index > 0 && (digits.count - index) % 3 == 0 { result.append(",") }
        result.append(character)
    }
    return (value < 0 ? "-" : "") + result
}

/// Seconds as m:ss or h:mm:ss.
func duration(_ seconds: Double) -> String {
    let total = Int(seconds.rounded())
    let (hours, minutes, secs) = (total / 3600, (total % 3600) / 60, total % 60)
    return hours > 0 ? String(format: "%d:%02d:%02d", hours, minutes, secs) : String(format: "%d:%02d", minutes, secs)
}

/// " (did you mean 'train'?)" for the nearest candidate within two edits, else "".
func suggestion(for word: String, among candidates: [String]) -> String {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return a.isEmpty ? b.count : previous[b.count]
    }
    let scored = candidates.map { ($0, distance(Array(word.lowercased()), Array($0))) }.min { $0.1 < $1.1 }
    guard let (best, score) = scored, score <= 2 else { return "" }
    return "; did you mean '\(best)'?"
}
