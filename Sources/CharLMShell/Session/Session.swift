// One live session: the state every command acts on (settings, compute context, corpus, dataset, model, trainer,
// histories, the sampling generator) and the operations that change it: set, load, reset, train, evaluate,
// generate, save. Each of those orchestrates work whose details live elsewhere: settings and their checkpoint
// mapping in Settings.swift, downloads in Downloads.swift, the engine in CharLM, the progress line's text in
// Render.swift, reading the model without changing it in Inspect.swift. Nothing here reads input.

import CharLM
import Foundation

/// The state every command acts on.
public final class Session {
    public private(set) var settings = Settings()
    public let console: Console
    /// Polled between training steps, generated characters and the parts of other long work; true once Ctrl-C was
    /// pressed.
    public var interruptRequested: @Sendable () -> Bool = { false }
    /// Clears the Ctrl-C flag.
    public var clearInterrupt: @Sendable () -> Void = {}
    /// Ctrl-C, as the engine's long work asks it.
    var cancellation: Cancellation { Cancellation(interruptRequested) }
    /// Waits for Enter (`pause`); nil, so `pause` goes straight on, unless the executable runs at a terminal.
    public var waitForEnter: (() -> Void)?
    /// Runs a training run's steps; at a terminal the executable turns key echo off meanwhile (`withoutTerminalEcho`).
    public var whileTraining: (() throws -> Void) throws -> Void = { try $0() }
    /// Whether the model came from a file that holds no training history (a PyTorch export, say).
    public private(set) var trainedElsewhere = false
    /// Where `load NAME` and `load URL` keep downloads.
    public var downloads = Downloads()
    /// The threads this session computes with (`threads`); its own, so sessions do not affect each other.
    public private(set) var context: ComputeContext

    public private(set) var corpus: Corpus?
    public private(set) var corpusName: String?
    public private(set) var dataset: Dataset?
    public private(set) var model: CharModel?
    /// The model's vocabulary.
    public private(set) var vocabulary: Vocabulary?
    private var trainer: Trainer?
    /// Training state read from a checkpoint (or kept from a trainer set aside), applied when training next starts.
    private var pendingResume: (training: TrainingState, optimizer: OptimizerState?)?
    /// The fingerprint of the text the loaded checkpoint was trained on.
    private var checkpointCorpus: CorpusFingerprint?
    /// Draws generated characters.
    public var sampleGenerator: SeededGenerator
    /// The last path `save` wrote in this session: where a bare `save` writes again.
    public private(set) var lastSavePath: String?
    /// Every path `save` wrote in this session, whichever model it held.
    private var writtenPaths: Set<String> = []
    /// The step the model was at when it was last saved, loaded or made.
    private var savedStep = 0
    /// The current model's validations during `train`: the best parameters so far and the validations since.
    public private(set) var watch = RunWatch()
    /// Whether the overfitting note was given for the current model (it is given once).
    private var overfittingNoted = false
    /// Seconds spent in `train` in this session, validations included (the metrics log's elapsed_s).
    private var trainingSeconds = 0.0
    /// Where the running `train` writes the best (`keepbest`, checked when it started), and whether a failed write
    /// was said (once per `train`).
    private var keepbestPath: String?
    private var keepbestWarned = false
    /// The overfitting note the latest validation calls for, said after its line.
    private var overfittingNote: String?
    /// The step whose parameters `restore best` put back, until training changes them again (`model` says so).
    public private(set) var restoredFrom: Int?
    /// Tokens per second of the last `train` (validations included), for `compare`.
    public internal(set) var lastTrainingRate: Double?
    /// The n-gram models `ngram` counted, and the rows `compare` prints (Compare.swift).
    var baselines = Baselines()
    /// The units `cells find` found, by layer and feature, for `cells "TEXT" LAYER FEATURE`.
    var foundUnits: [Int: [TextFeature: Int]] = [:]

    /// Steps trained since the model was last saved, loaded or made (0 without a model).
    public var unsavedSteps: Int { model == nil ? 0 : max(0, step - savedStep) }

    public init(console: Console) {
        self.console = console
        sampleGenerator = SeededGenerator(seed: settings.seed)
        context = ComputeContext(threads: settings.threads)
    }

    /// Completed training steps.
    public var step: Int { trainer?.step ?? pendingResume?.training.step ?? 0 }
    /// Training loss of every step so far.
    public var lossHistory: [Double] { trainer?.lossHistory ?? pendingResume?.training.lossHistory ?? [] }
    /// Every validation so far.
    public var validationHistory: [ValidationPoint] {
        trainer?.validationHistory ?? pendingResume?.training.validationHistory ?? []
    }

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
            throw ShellError.unknownSetting(name, suggestion: nearest(to: name, among: Settings.keys.map(\.name)))
        }
        var changed = settings
        try key.set(&changed, value)
        let before = settings
        settings = changed
        switch key.name {
        case "seed": sampleGenerator = SeededGenerator(seed: settings.seed)
        case "bf16" where settings.bf16 && (model?.config.layerKind ?? settings.cell) != .lstm:
            let kind = (model?.config.layerKind ?? settings.cell).rawValue.uppercased()
            console.note("note: bf16 speeds up the LSTM's generation only; this \(kind) generates in float32 whatever it says\n")
        case "threads" where settings.threads != context.threadCount:
            context = ComputeContext(threads: settings.threads)
            setTrainerAside()
            let cores = ProcessInfo.processInfo.activeProcessorCount
            if settings.threads > cores {
                console.note("note: \(settings.threads) threads on \(cores) cores wait for each other at every step: "
                             + "training is faster with `threads \(cores)`\n")
            }
        default: break
        }
        if key.group == .model, let model {
            let V = model.config.vocabularySize
            if settings.modelConfig(vocabularySize: V) != model.config && before.modelConfig(vocabularySize: V) != settings.modelConfig(vocabularySize: V) {
                console.note("note: the current model keeps its architecture; `reset` builds a new model with \(key.name) \(key.get(settings))\n")
            }
        }
        if key.group == .data && corpus != nil {
            console.note("note: \(key.name) applies when text is next loaded\n")
        }
    }

    /// Keeps the trainer's progress as pending state, so the next training step makes a new trainer (on new text,
    /// or on a new compute context) that continues exactly where this one stopped.
    private func setTrainerAside() {
        if let trainer { pendingResume = trainer.state }
        trainer = nil
    }

    // MARK: Loading

    /// Loads a text corpus or a checkpoint (told apart by content) from a path, a URL or a built-in name.
    public func load(_ source: String) throws {
        let path = try downloads.localPath(for: expandingTilde(source), console: console, cancellation: cancellation)
        // What is made from a file is a few times its size (MemoryModel.loadingBytes): refuse what cannot fit.
        let bytes = try readFileBytes(at: path, maximumBytes: Int(MemoryBudget.usableBytes / MemoryModel.loadingBytes(fileSize: 1)),
                                      limit: "what this machine can load now (a text or checkpoint takes about 5 times its size)")
        try cancellation.check()
        if SafeTensorsFile.looksLikeSafeTensors(bytes) {
            try loadCheckpoint(bytes, path: path)
        } else {
            try loadText(bytes, name: path)
        }
    }

    private func loadText(_ bytes: [UInt8], name: String) throws {
        let loaded = try Corpus.make(utf8: bytes, normalization: settings.normalization, name: name, cancellation: cancellation)
        let split = try Dataset(tokens: loaded.tokens, validationFraction: settings.val)
        let report = loaded.report
        let changes = describeChanges(report)
        console.report("loaded \(name): \(grouped(report.characters)) characters, \(loaded.vocabulary.count) distinct; "
                       + "training \(grouped(split.trainRange.count)), validation \(grouped(split.validationRange.count))")
        console.report("  normalisation: lowercase \(settings.lowercase ? "on" : "off"), ascii \(settings.ascii ? "on" : "off")"
                       + (changes.isEmpty ? "; nothing changed" : "; " + changes.joined(separator: ", ")), indent: 4)
        // Keep the trainer's progress across a reload of the same text. Validation losses on another text are not
        // comparable with those kept: the best starts afresh.
        setTrainerAside()
        if let corpus, corpus.fingerprint != loaded.fingerprint { forgetValidations() }
        corpus = loaded
        corpusName = name
        dataset = split
        if let model, let vocabulary {
            if vocabulary != loaded.vocabulary && step == 0 && pendingResume == nil && checkpointCorpus == nil {
                // Never trained and not loaded: nothing to keep, so a model for this text's characters replaces it.
                console.note("note: the untrained model is rebuilt for this text's characters\n")
                try makeFreshModel(vocabulary: loaded.vocabulary)
            } else if vocabulary != loaded.vocabulary {
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
        let checkpoint = try Checkpoint.parse(bytes, path: path)
        try confirmDiscardingUnsavedWork("`load` it")
        let loadedModel = try CharModel(config: checkpoint.config, parameters: checkpoint.parameters)
        // Everything checked: now replace the session's model and settings.
        let (restored, settingNotes) = settings.restoring(checkpoint)
        settings = restored
        if settings.threads != context.threadCount { context = ComputeContext(threads: settings.threads) }
        model = loadedModel
        vocabulary = checkpoint.vocabulary
        trainer = nil
        pendingResume = checkpoint.training.map { ($0, checkpoint.optimizer) }
        checkpointCorpus = checkpoint.corpus
        savedStep = step
        lastSavePath = nil
        trainedElsewhere = checkpoint.training == nil
        forgetValidations()
        console.report("loaded checkpoint \(path), step \(grouped(step))")
        console.report("  model: \(describeModel(loadedModel.config))", indent: 4)
        for note in checkpoint.notes + settingNotes { console.note("note: \(note)\n") }
        if let corpus {
            if corpus.vocabulary != checkpoint.vocabulary {
                console.note("warning: the loaded text's characters differ from the model's; load text with the model's characters before training\n")
            } else if let fingerprint = checkpoint.corpus, fingerprint != corpus.fingerprint {
                console.note("note: the loaded text is not the text this model was trained on\n")
            }
        }
    }

    // MARK: Model

    /// At a terminal (set by the executable), leaving, `reset` or loading a checkpoint over training that was never
    /// saved is refused once, with a note; doing it again goes ahead. Scripts and -c are not asked.
    public var guardsUnsavedWork = false
    private var discardWarnedAtStep: Int?

    /// Throws a note-like refusal the first time `action` would discard unsaved training (see `guardsUnsavedWork`).
    private func confirmDiscardingUnsavedWork(_ action: String) throws {
        guard guardsUnsavedWork, unsavedSteps > 0, discardWarnedAtStep != step else { return }
        discardWarnedAtStep = step
        throw ShellError.badArgument("\(grouped(unsavedSteps)) step\(unsavedSteps == 1 ? "" : "s") trained since the last save would be lost: "
                                     + "`save` first, or \(action) again to discard them")
    }

    /// A new model from the current settings on the current text's characters (or the model's, without text).
    public func reset() throws {
        try confirmDiscardingUnsavedWork("`reset`")
        guard let vocabulary = corpus?.vocabulary ?? vocabulary else { throw ShellError.needs(.textForAModel) }
        try makeFreshModel(vocabulary: vocabulary)
    }

    private func makeFreshModel(vocabulary: Vocabulary) throws {
        var generator = SeededGenerator(seed: settings.seed)
        let made = try CharModel(config: settings.modelConfig(vocabularySize: vocabulary.count), generator: &generator)
        model = made
        self.vocabulary = vocabulary
        trainer = nil
        pendingResume = nil
        checkpointCorpus = nil
        savedStep = 0
        trainedElsewhere = false
        forgetValidations()
        // A new model is not the one last saved: a bare `save` must not replace that file with it.
        lastSavePath = nil
        console.report("new model: \(describeModel(made.config))")
    }

    /// A different model: nothing kept from the last one's validations.
    private func forgetValidations() {
        watch = RunWatch()
        foundUnits = [:]
        overfittingNoted = false
        restoredFrom = nil
    }

    func describeModel(_ config: ModelConfig) -> String {
        let count = ParameterLayout(config: config).totalCount
        return "\(config.layerKind.rawValue.uppercased()), E \(config.embeddingSize), H \(config.hiddenSize), L \(config.layerCount)"
            + (config.dropout > 0 ? ", dropout \(formatNumber(config.dropout))" : "")
            + ", V \(config.vocabularySize): \(grouped(count)) parameters"
    }

    /// The trainer for the current model and text, made (and resumed) on first use. `command` names what needs it
    /// in the errors (`train`, `eval`).
    private func readyTrainer(for command: String = "train") throws -> Trainer {
        guard let model, let vocabulary else { throw ShellError.needs(command == "train" ? .modelFromText : .model) }
        guard let corpus, let dataset else {
            let trainedOn = checkpointCorpus.map { fingerprint in
                (fingerprint.name.map { "'\($0)', " } ?? "") + "\(grouped(fingerprint.characters)) characters"
            }
            throw ShellError.needs(command == "train" ? .textToTrainOn(trainedOn: trainedOn) : .text(command: command))
        }
        guard corpus.vocabulary == vocabulary else { throw ShellError.vocabularyMismatch(forTraining: true) }
        if let trainer {
            try trainer.apply(settings.training)
            return trainer
        }
        let made = try Trainer(model: model, dataset: dataset, settings: settings.training, seed: settings.seed &+ 1,
                               context: context)
        if var resume = pendingResume {
            resume.training.settings = settings.training
            try made.restore(training: resume.training, optimizer: resume.optimizer)
            pendingResume = nil
        }
        trainer = made
        return made
    }

    // MARK: Training

    /// How long `train` runs.
    public enum TrainingAmount: Equatable, Sendable {
        case epochs(Double)
        case steps(Int)
        case seconds(Double)
        /// Until validation has not improved for this many validations in a row (early stopping), then the best
        /// parameters are restored.
        case untilNoImprovement(Int)
    }

    /// Trains for `amount`, validating every `eval` steps and at the end. Each validation keeps the best parameters
    /// so far (`restore best`), writes them to `keepbest`, and may note overfitting once; `log` gets a line per step
    /// and validation, `autosave` saves the session on its interval. Ctrl-C stops after the current step.
    public func train(_ amount: TrainingAmount) throws {
        let trainer = try readyTrainer()
        let perEpoch = trainer.stepsPerEpoch
        let firstStep = trainer.step
        var total: Int? = nil
        var deadline: Date? = nil
        var patience: Int? = nil
        // Every amount is checked in Double before it becomes a count: no step count may pass Trainer.maximumStep.
        let stepsLeft = Trainer.maximumStep - firstStep
        func steps(_ wanted: Double, _ asked: String) throws -> Int {
            guard wanted.isFinite, wanted <= Double(stepsLeft) else {
                throw CharLMError.tooLarge(what: "train \(asked)", value: wanted.isFinite ? "\(formatSettingNumber(wanted.rounded())) steps" : "endless",
                                           maximum: "\(grouped(stepsLeft)) more steps (the model is at step \(grouped(firstStep)))")
            }
            return max(1, Int(wanted.rounded()))
        }
        // Validation needs one window of seq characters in the validation split; without one, training goes on
        // without it (and says so once).
        let canValidate = dataset.map { $0.validationWindowCount(length: settings.seq) > 0 } ?? false
        switch amount {
        case .epochs(let epochs): total = try steps(epochs * Double(perEpoch), "\(formatSettingNumber(epochs)) epochs")
        case .steps(let count): total = try steps(Double(count), "\(count) steps")
        case .seconds(let seconds):
            guard seconds <= Self.longestTraining else {
                throw CharLMError.tooLarge(what: "train for \(formatSettingNumber(seconds)) seconds", value: "longer than a year",
                                           maximum: "\(Int(Self.longestTraining)) seconds (a year)")
            }
            deadline = Date().addingTimeInterval(seconds)
        case .untilNoImprovement(let count):
            guard canValidate else {
                throw ShellError.badArgument("train until needs validation, and the validation split (val \(formatSettingNumber(settings.val))) "
                                             + "holds no window of seq \(settings.seq) characters: lower `seq`, or `set val` higher and load again")
            }
            guard settings.eval > 0 else {
                throw ShellError.badArgument("train until counts validations, and `eval` is 0 (only at the end): `set eval 250`, say")
            }
            patience = count
            watch.restartPatience()
        }
        // What to write while training, checked before the first step: nothing is trained when a file is wrong.
        let autosavePath = try settings.autosave.map { _ in try autosaveTarget() }
        keepbestPath = try settings.keepbest.map { try keepbestTarget($0, autosave: autosavePath, log: settings.log.map(expandingTilde)) }
        keepbestWarned = false
        var log = try settings.log.map { try MetricsLog(path: expandingTilde($0)) }
        var nextAutosave = settings.autosave.map { Date().addingTimeInterval($0) }
        let tokensPerStep = Double(settings.seq * settings.batch)
        let start = Date()
        let secondsBefore = trainingSeconds
        defer { trainingSeconds = secondsBefore + Date().timeIntervalSince(start) }
        var lastPlainLine = start
        var done = 0
        /// Training tokens per second so far; the last figure shown is what `compare` keeps.
        func tokensPerSecond() -> Double {
            let elapsed = Date().timeIntervalSince(start)
            let rate = elapsed > 0 ? Double(done) * tokensPerStep / elapsed : 0
            if done > 0 { lastTrainingRate = rate }
            return rate
        }
        /// The progress line, fitted to the width less `reserve` columns.
        func progress(final: Bool, reserve: Int = 0) -> String {
            let elapsed = Date().timeIntervalSince(start)
            var remaining: Double? = nil
            if !final && done > 0 {
                remaining = total.map { Double($0 - done) * elapsed / Double(done) } ?? deadline.map { $0.timeIntervalSinceNow }
            }
            return TrainingProgress(
                step: trainer.step, lastStep: total.map { firstStep + $0 }, epoch: Double(trainer.step) / Double(perEpoch),
                recentLosses: trainer.lossHistory.suffix(20), validation: trainer.validationHistory.last?.loss,
                tokensPerSecond: tokensPerSecond(), remaining: remaining.map { max(0, $0) }
            ).line(sparkline: console.isTerminal, width: console.width - 1 - reserve)
        }
        /// A line for the metrics log; a log that cannot be written is said once and closed, and training goes on.
        func logLine(trainingLoss: Double?, validationLoss: Double?) {
            guard let open = log else { return }
            do {
                try open.append(MetricsRecord(
                    step: trainer.step, epoch: Double(trainer.step) / Double(perEpoch), trainingLoss: trainingLoss,
                    validationLoss: validationLoss, learningRate: trainer.settings.learningRate(atStep: max(1, trainer.step)),
                    tokensPerSecond: tokensPerSecond(), elapsedSeconds: secondsBefore + Date().timeIntervalSince(start)))
            } catch {
                console.endStatus()
                console.note("warning: the metrics log stopped: \(error); training goes on\n")
                log = nil
            }
        }
        if !canValidate {
            console.note("note: no validation while training: the validation split (val \(formatSettingNumber(settings.val))) "
                         + "holds no window of seq \(settings.seq) characters\n")
        }
        var divergenceNoted = false
        func validate() throws {
            guard canValidate else { return }
            let evaluation = try trainer.validate(cancellation: cancellation)
            logLine(trainingLoss: nil, validationLoss: evaluation.nats)
            let best = keepBest(evaluation, trainer: trainer, stoppingEarly: patience != nil)
            console.endStatus()
            console.progress(wrap(String(format: "step %d: validation loss %.4f nats/char (%.4f bits/char)", trainer.step,
                                         evaluation.nats, evaluation.bits) + (best ?? ""), width: console.width - 1, indent: 2) + "\n")
            if let note = overfittingNote { console.note(note) }
            // Worse than guessing every character alike: the parameters have run away (a learning rate too high for
            // this cell, say), though every number is still finite.
            let uniform = Foundation.log(Double(trainer.model.config.vocabularySize))
            if evaluation.nats > uniform + 0.5 && !divergenceNoted {
                divergenceNoted = true
                console.note(wrap(String(format: "note: validation loss %.4f is worse than guessing all %d characters alike "
                                         + "(ln %d = %.4f): training has diverged; ", evaluation.nats,
                                         trainer.model.config.vocabularySize, trainer.model.config.vocabularySize, uniform)
                                  + "lower `lr` (now \(formatNumber(settings.lr)))" + (settings.clip == 0 ? " or turn `clip` on" : "")
                                  + ", then " + (watch.best != nil ? "`restore best` or " : "") + "`reset`",
                                  width: console.width - 1, indent: 2) + "\n")
            }
        }
        defer { console.endStatus() }
        var stoppedEarly = false
        // At a terminal, keys typed meanwhile are neither echoed into the live line nor run afterwards.
        try whileTraining {
            while true {
                if let total, done >= total { break }
                if let deadline, Date() >= deadline { break }
                if interruptRequested() {
                    clearInterrupt()
                    if let autosavePath, done > 0 { autosave(to: autosavePath) }
                    console.endStatus()
                    // The last state, as the live line showed it.
                    console.progress(progress(final: true) + "\n")
                    console.note("interrupted: `train` stopped after step \(trainer.step); the model and optimizer are consistent"
                                 + (patience != nil ? watch.best.map { "; `restore best` puts back step \(grouped($0.step))" } ?? "" : "")
                                 + "\n")
                    throw Interrupted(description: "training interrupted at step \(trainer.step)")
                }
                let loss: Double
                do {
                    loss = try trainer.trainStep()
                } catch CharLMError.nonFiniteParameters(let step, let index) {
                    if let best = watch.best {
                        console.note("note: `restore best` puts back the parameters of step \(grouped(best.step)) (validation loss "
                                     + String(format: "%.4f", best.loss) + ")\n")
                    }
                    throw CharLMError.nonFiniteParameters(step: step, index: index)
                }
                done += 1
                restoredFrom = nil
                logLine(trainingLoss: loss, validationLoss: nil)
                if settings.eval > 0 && trainer.step % settings.eval == 0 {
                    try validate()
                    if let patience, watch.validationsSinceImprovement >= patience {
                        stoppedEarly = true
                        break
                    }
                }
                if let autosavePath, let due = nextAutosave, Date() >= due {
                    autosave(to: autosavePath)
                    nextAutosave = settings.autosave.map { Date().addingTimeInterval($0) }
                }
                if console.isTerminal {
                    console.status(progress(final: false))
                } else if Date().timeIntervalSince(lastPlainLine) >= 10 {
                    console.progress(progress(final: false) + "\n")
                    lastPlainLine = Date()
                }
            }
            if done > 0 && !stoppedEarly && (settings.eval == 0 || trainer.step % settings.eval != 0) { try validate() }
        }
        // The end of a run is saved too, so autosave never leaves the last steps unsaved.
        if let autosavePath, done > 0, !stoppedEarly { autosave(to: autosavePath) }
        console.endStatus()
        let summary = "  (\(grouped(done)) step\(done == 1 ? "" : "s") in \(duration(Date().timeIntervalSince(start))))"
        console.progress(progress(final: true, reserve: summary.count) + summary + "\n")
        if let patience, stoppedEarly, let best = watch.best {
            _ = try restoreBest()
            if let autosavePath { autosave(to: autosavePath) }
            console.report("stopped: validation has not improved for \(patience) validation\(patience == 1 ? "" : "s"); "
                           + "restored the best, step \(grouped(best.step)) (validation loss \(String(format: "%.4f", best.loss))); "
                           + "the optimizer restarts")
        }
    }

    /// After a validation: keep the parameters when they are the best so far (and write them to `keepbest`), and
    /// prepare the overfitting note (`overfittingNote`) once, when validation has risen twice while training loss
    /// fell. Returns what the validation line adds when this is a new best.
    private func keepBest(_ evaluation: Evaluation, trainer: Trainer, stoppingEarly: Bool) -> String? {
        overfittingNote = nil
        var mark: String? = nil
        var improved = false
        let protocolKey = ValidationProtocol(sequenceLength: settings.seq, validationFraction: trainer.dataset.validationFraction)
        do {
            if try watch.record(step: trainer.step, loss: evaluation.nats, protocolKey: protocolKey,
                                parameters: trainer.model.parameters) {
                improved = true
                mark = trainer.validationHistory.count > 1 ? ", best" : nil
            }
            if improved, let path = keepbestPath {
                do {
                    try Checkpoint.write(try bestCheckpoint().serialized(), to: path)
                    writtenPaths.insert(path)
                    mark = ", best (saved)"
                } catch where !keepbestWarned {
                    keepbestWarned = true
                    console.note("warning: the best model was not written to keepbest: \(error); training goes on "
                                 + "(the best is still kept: `save best PATH`)\n")
                }
            }
        } catch {
            console.note("warning: the best parameters are not kept: \(error)\n")
        }
        if !overfittingNoted,
           let sign = OverfittingSign.detect(validationHistory: trainer.validationHistory, lossHistory: trainer.lossHistory,
                                             lastStep: trainer.step) {
            overfittingNoted = true
            let rising = sign.validations.map { String(format: "%.4f", $0.loss) }.joined(separator: " -> ")
            let best = watch.best.map { " (step \(grouped($0.step)), \(String(format: "%.4f", $0.loss)))" } ?? ""
            overfittingNote = (wrap("note: validation loss rose twice in a row (\(rising), steps \(grouped(sign.validations[0].step))"
                              + "-\(grouped(sign.validations[2].step))) while training loss fell "
                              + "(\(String(format: "%.4f -> %.4f", sign.trainingBefore, sign.trainingAfter))): the model is "
                              + "memorising its training text. Remedies: `restore best`\(best); more `dropout` or a smaller "
                              + "`hidden`, then `reset`" + (stoppingEarly ? "" : "; `train until 3` stops by itself") + ".",
                              width: console.width - 1, indent: 2) + "\n")
        }
        return mark
    }

    /// The longest `train` for a time accepts.
    static let longestTraining = 365 * 24 * 3600.0

    /// Validation loss of the current model on the current text. Ctrl-C stops it.
    public func evaluate() throws -> Evaluation {
        if let model { try checkFinite(model) }
        return try readyTrainer(for: "eval").evaluate(cancellation: cancellation)
    }

    // MARK: Generation

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
        console.out(promptText)
        var stopped = false
        let start = Date()
        var generated = 0
        try TextGenerator(model: model, context: context, weights: settings.bf16 ? .bfloat16 : .float32).stream(
            prompt: encoding.tokens, count: count, settings: settings.sampling, primer: primer, generator: &sampleGenerator,
            cancellation: cancellation
        ) { token in
            console.out(vocabulary.character(token))
            generated += 1
            if interruptRequested() {
                stopped = true
                return false
            }
            return true
        }
        console.out("\n")
        try endGeneration("\(grouped(generated)) characters", characters: generated,
                          seconds: Date().timeIntervalSince(start), stopped: stopped,
                          stoppedAfter: "\(grouped(generated)) character\(generated == 1 ? "" : "s")")
    }

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
    private func generateSamples(prompt: [Int], promptText: String, count: Int, primer: Int, model: CharModel,
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
        let generated = try TextGenerator(model: model, context: context).streamSamples(
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
        let seconds = Date().timeIntervalSince(start)
        console.endStatus()
        for (k, tokens) in texts.enumerated() {
            console.out("--- sample \(k + 1) of \(K) ---\n")
            console.out(promptText + tokens.map { vocabulary.character(Int($0)) }.joined() + "\n")
        }
        try endGeneration("\(K) samples x \(grouped(generated)) characters", characters: generated * K,
                          seconds: seconds, stopped: stopped,
                          stoppedAfter: "\(grouped(generated)) character\(generated == 1 ? "" : "s") per sample")
    }

    // MARK: Inspection

    /// Throws when training left a parameter infinite or NaN (a diverged run): such a model is not used, saved or
    /// shown; the error names the ways back.
    func checkFinite(_ model: CharModel, nothing: String = "it is not used") throws {
        guard let index = model.parameters.firstNonFinite() else { return }
        let best = watch.best.map { "`restore best` (step \(grouped($0.step))), " } ?? ""
        throw ShellError.badArgument("parameter \(index) of the model is infinite or NaN (training diverged), so \(nothing): "
                                     + "\(best)`reset`, or load a checkpoint from before; then train with a lower `lr` (or `wd`)")
    }

    /// The read-only view of the model, vocabulary and text that `vocab`, `next`, `cells` and the other inspection
    /// commands use (Inspect.swift).
    public func inspector() throws -> Inspector {
        guard let model, let vocabulary else { throw ShellError.needs(.model) }
        try checkFinite(model)
        return Inspector(model: model, vocabulary: vocabulary, corpus: corpus, dataset: dataset, settings: settings,
                         context: context, cancellation: cancellation, console: console)
    }

    // MARK: Saving

    /// The file a bare `save` writes when this session has not saved yet.
    static let defaultSavePath = "charlm.safetensors"

    /// Saves everything to `path` (default: the last path `save` wrote in this session, else charlm.safetensors).
    /// A bare `save` never replaces a file this session did not write (a loaded checkpoint, say): that takes its
    /// name. Returns the path and size.
    @discardableResult
    public func save(to requested: String?) throws -> (String, Int) {
        guard let model, let vocabulary else { throw ShellError.needs(.modelToSave) }
        try checkFinite(model, nothing: "nothing was saved: the file could not be loaded again")
        if requested?.isEmpty == true { throw ShellError.usage("save [PATH]") }
        let path = requested.map(expandingTilde) ?? lastSavePath ?? Self.defaultSavePath
        if requested == nil && lastSavePath == nil && FileManager.default.fileExists(atPath: path) {
            let whose = writtenPaths.contains(path)
                ? "holds the model this session saved before the current one was loaded or made"
                : "already exists and this session did not write it"
            throw ShellError.badArgument("'\(path)' \(whose): `save \(path)` to replace it, or `save` to another name")
        }
        let bytes = sessionCheckpoint(parameters: model.parameters.array).serialized()
        try Checkpoint.write(bytes, to: path)
        lastSavePath = path
        writtenPaths.insert(path)
        savedStep = step
        return (path, bytes.count)
    }

    /// The session as a checkpoint, holding `parameters` and, unless `best` is given, the run's training and optimizer
    /// state. With `best`, the training state ends at the best's step and the optimizer is left out (it was not kept).
    private func sessionCheckpoint(parameters: [Float], best: BestParameters? = nil) -> Checkpoint {
        var (training, optimizer) = trainer.map { ($0.state.training, Optional($0.state.optimizer)) }
            ?? (pendingResume?.training, pendingResume?.optimizer)
        if let best {
            optimizer = nil
            if var state = training {
                state.step = best.step
                state.lossHistory = Array(state.lossHistory.prefix(best.step))
                state.validationHistory.removeAll { $0.step > best.step }
                training = state
            }
        }
        var fingerprint = corpus.flatMap { $0.vocabulary == vocabulary ? $0.fingerprint : nil } ?? checkpointCorpus
        if fingerprint != nil && fingerprint == corpus?.fingerprint, let corpusName {
            fingerprint?.name = (corpusName as NSString).lastPathComponent
        }
        return Checkpoint(
            config: model!.config, vocabulary: vocabulary!, parameters: parameters, optimizer: optimizer,
            training: training, sampling: settings.sampling, corpus: fingerprint, settings: settings.checkpointSettings)
    }

    /// The best parameters of this model's training as a checkpoint (no optimizer state).
    private func bestCheckpoint() throws -> Checkpoint {
        guard let best = watch.best else { throw ShellError.needs(.bestModel) }
        return sessionCheckpoint(parameters: best.values.array, best: best)
    }

    /// Writes the best parameters so far to `path` (`save best PATH`). Returns the path and size.
    @discardableResult
    public func saveBest(to requested: String) throws -> (String, Int) {
        guard model != nil else { throw ShellError.needs(.modelToSave) }
        let path = expandingTilde(requested)
        let bytes = try bestCheckpoint().serialized()
        try Checkpoint.write(bytes, to: path)
        writtenPaths.insert(path)
        return (path, bytes.count)
    }

    /// Puts the best parameters so far back into the model; Adam restarts (its moments were not kept). The step
    /// count and histories stay.
    @discardableResult
    /// Returns the best, and whether anything changed (false when the parameters in use are the best already:
    /// no step was trained since it was measured, so Adam keeps its moments).
    public func restoreBest() throws -> (best: BestParameters, changed: Bool) {
        guard let model, let best = watch.best else { throw ShellError.needs(.bestModel) }
        // The parameters in use are the best already (no step since it was measured, or since it was restored).
        let unchanged = model.parameters.count == best.values.count
            && memcmp(model.parameters.pointer, best.values.pointer, 4 * best.values.count) == 0
        if unchanged { return (best, false) }
        model.parameters.copy(from: best.values)
        restoredFrom = best.step
        trainer?.optimizer.restart()
        pendingResume?.optimizer = nil
        watch.restartPatience()
        return (best, true)
    }

    // MARK: Autosave

    /// Where `autosave` writes: where a bare `save` would. Like a bare `save`, it never replaces a file this session
    /// did not write, so that case is refused before training starts.
    private func autosaveTarget() throws -> String {
        if let lastSavePath { return lastSavePath }
        let path = Self.defaultSavePath
        if FileManager.default.fileExists(atPath: path) && !writtenPaths.contains(path) {
            throw ShellError.badArgument("autosave writes where a bare `save` does, and '\(path)' already exists and this "
                                         + "session did not write it: `save PATH` once to choose the file, or `set autosave off`")
        }
        return path
    }

    /// Where `keepbest` writes, checked before training starts. Like a bare `save`, it never replaces a file this
    /// session did not write (a text, a loaded checkpoint), nor the metrics log or the file autosave writes.
    private func keepbestTarget(_ requested: String, autosave: String?, log: String?) throws -> String {
        let path = expandingTilde(requested)
        let target = resolvedSaveTarget(path)
        if let log, resolvedSaveTarget(log) == target {
            throw ShellError.badArgument("keepbest and log name the same file, '\(path)': `set keepbest` to another name")
        }
        if let autosave, resolvedSaveTarget(autosave) == target {
            throw ShellError.badArgument("keepbest names '\(path)', where autosave writes the whole session: `set keepbest` to another name")
        }
        if FileManager.default.fileExists(atPath: path) && !writtenPaths.contains(path) {
            throw ShellError.badArgument("keepbest names '\(path)', which already exists and this session did not write it: "
                                         + "`set keepbest` to a new name, or `save best \(path)` to replace it once")
        }
        return path
    }

    /// One autosave during training; a failure is said and training goes on.
    private func autosave(to path: String) {
        do {
            let (written, size) = try save(to: path)
            console.endStatus()
            console.progress("  autosaved \(written) at step \(grouped(step)) (\(grouped(size)) bytes)\n")
        } catch {
            console.endStatus()
            console.note("warning: autosave failed: \(error); training goes on\n")
        }
    }
}
