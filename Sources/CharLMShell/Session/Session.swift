// One live session: the state every command acts on (settings, compute context, corpus, dataset, model, trainer,
// histories, the sampling generator) and the operations that change it: set, load and reset here; train
// (Training.swift), generate (Generation.swift), save and restore (Saving.swift). Each orchestrates work whose
// details live elsewhere: settings and their checkpoint mapping in Settings.swift, where files may go in
// SaveTargets.swift, downloads in Downloads.swift, the engine in CharLM (the model through its interface, the
// training run, the generator), the lines printed in Rendering/, reading the model without changing it in
// Inspection/. Nothing here reads input.

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
    /// What asked the stop, as messages name it: "Ctrl-C", or "SIGTERM" / "SIGHUP" when one ends the program.
    public var interruptionName: @Sendable () -> String = { "Ctrl-C" }
    /// Ctrl-C, as the engine's long work asks it.
    var cancellation: Cancellation { Cancellation(interruptRequested) }
    /// Waits for Enter (`pause`); nil, so `pause` goes straight on, unless the executable runs at a terminal.
    public var waitForEnter: (() -> Void)?
    /// Runs work that writes as it goes (a training run's steps, generated text); at a terminal the executable turns
    /// key echo off meanwhile (`withoutTerminalEcho`), so neither typed keys nor a `^C` land inside that output.
    public var whileRunningLong: (_ keepTypedKeys: Bool, () throws -> Void) throws -> Void = { try $1() }
    /// Whether the model came from a file that holds no training history (a PyTorch export, say).
    public private(set) var trainedElsewhere = false
    /// Where `load NAME` and `load URL` keep downloads.
    public var downloads = Downloads()
    /// The threads this session computes with (`threads`); its own, so sessions do not affect each other.
    public private(set) var context: ComputeContext

    public private(set) var corpus: Corpus?
    public private(set) var corpusName: String?
    public private(set) var dataset: Dataset?
    public internal(set) var model: (any TrainableLanguageModel)?
    /// The model's vocabulary.
    public private(set) var vocabulary: Vocabulary?
    var trainer: Trainer?
    /// Training state read from a checkpoint (or kept from a trainer set aside), applied when training next starts.
    var pendingResume: (training: TrainingState, optimizer: OptimizerState?)?
    /// The fingerprint of the text the loaded checkpoint was trained on.
    var checkpointCorpus: CorpusFingerprint?
    /// Draws generated characters.
    public var sampleGenerator: SeededGenerator
    /// Where this session's files went and may go (`save`, autosave, keepbest).
    var saves = SaveTargets()
    /// The last path `save` wrote for the current model: where a bare `save` writes again.
    public var lastSavePath: String? { saves.lastSavePath }
    /// The step the model was at when it was last saved, loaded or made.
    var savedStep = 0
    /// The current model's validations during `train`: the best parameters so far and the validations since.
    public internal(set) var watch = RunWatch()
    /// Seconds spent in `train` in this session, validations included (the metrics log's elapsed_s).
    var trainingSeconds = 0.0
    /// The step whose parameters `restore best` put back, until training changes them again (`model` says so).
    public internal(set) var restoredFrom: Int?
    /// A file `train` was asked to write (autosave, keepbest, the metrics log) was not written, while training went
    /// on: a script then ends with status 1 (`Runner` reads and clears it).
    var fileNotWritten = false
    /// Tokens per second of the last `train` (validations included), for `compare`.
    public internal(set) var lastTrainingRate: Double?
    /// The n-gram models `ngram` counted, and the rows `compare` prints (Compare.swift).
    var baselines = Baselines()
    /// The model the note "the current model keeps its architecture" was last given for (weak: a new model at the
    /// same address is another model).
    private weak var architectureNoted: AnyObject?
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
        try changed.checkAgreement(afterSetting: key.name, model: model?.architecture)
        let before = settings
        settings = changed
        switch key.name {
        case "seed": sampleGenerator = SeededGenerator(seed: settings.seed)
        case "keepbest" where settings.keepbest != nil:
            // Said now, not when `train` starts: a folder that is not there, a file this session may not replace.
            do {
                try saves.checkFolder(of: settings.keepbest!, for: "keepbest")
                _ = try saves.keepbestPath(settings.keepbest!, autosave: nil, log: settings.log.map(expandingTilde))
            } catch {
                settings = before
                throw error
            }
        case "log" where settings.log != nil:
            do { try saves.checkFolder(of: settings.log!, for: "log") } catch {
                settings = before
                throw error
            }
        case "autosave" where settings.autosave != nil:
            if (try? saves.autosavePath()) == nil {
                console.note("note: autosave writes where a bare `save` does, and '\(SaveTargets.defaultPath)' already exists and "
                             + "this session did not write it: `save PATH` once before training to choose the file\n")
            }
        case "bf16" where settings.bf16 && LayerKind(rawValue: model?.architecture.kindName ?? settings.arch.rawValue) == nil:
            let kind = (model?.architecture.kindName ?? settings.arch.rawValue).uppercased()
            console.note("note: bf16 speeds up the LSTM's, GRU's and RNN's generation only; this \(kind) generates in "
                         + "float32 whatever it says\n")
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
            let V = model.vocabularySize
            let asked = settings.architecture(vocabularySize: V)
            // Said once per model: the settings that follow it (`set layers 1` after `set arch transformer`) go without.
            if !asked.isEqual(to: model.architecture) && !before.architecture(vocabularySize: V).isEqual(to: asked)
                && architectureNoted !== model {
                architectureNoted = model
                console.note("note: the current model keeps its architecture; `reset` builds a new model with \(key.name) \(key.get(settings))\n")
            }
        }
        if let note = settings.unusedSettingNote(key.name) { console.note(note + "\n") }
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
        // What is made from a file is a few times its size (MemoryModel.loadingBytes): refuse what cannot fit, a
        // download as it arrives.
        let maximumBytes = Int(MemoryBudget.usableBytes / MemoryModel.loadingBytes(fileSize: 1))
        var downloads = downloads
        downloads.maximumBytes = maximumBytes
        let path = try downloads.localPath(for: expandingTilde(source), console: console, cancellation: cancellation)
        let bytes: [UInt8]
        do {
            bytes = try readFileBytes(at: path, maximumBytes: maximumBytes,
                                      limit: "what this machine can load now (a text or checkpoint takes about 5 times its size)")
        } catch CharLMError.fileNotFound(let missing) where Downloads.builtInMeant(by: missing) != nil {
            throw ShellError.badArgument("no such file '\(missing)'; did you mean the built-in dataset: "
                                         + "`load \(Downloads.builtInMeant(by: missing)!)`?")
        }
        try cancellation.check()
        if SafeTensorsFile.looksLikeSafeTensors(bytes) {
            try loadCheckpoint(bytes, path: path)
        } else {
            try loadText(bytes, name: path)
        }
    }

    private func loadText(_ bytes: [UInt8], name: String) throws {
        var loaded = try Corpus.make(utf8: bytes, normalization: settings.normalization, name: name, cancellation: cancellation)
        let distinct = loaded.vocabulary.count
        // A trained model goes on with a text whose characters it all knows, read with its vocabulary.
        let modelIsTrained = step > 0 || pendingResume != nil || checkpointCorpus != nil
        var readWithTheModels = false
        if model != nil, modelIsTrained, let vocabulary, vocabulary != loaded.vocabulary, let within = loaded.reindexed(for: vocabulary) {
            loaded = within
            readWithTheModels = true
        }
        let split = try Dataset(tokens: loaded.tokens, validationFraction: settings.val)
        let report = loaded.report
        let changes = describeChanges(report)
        console.report("loaded \(name): " + quantity(report.characters, "character") + ", \(grouped(distinct)) distinct"
                       + (readWithTheModels ? " (all the model's: read with its \(loaded.vocabulary.count))" : "") + "; "
                       + "training \(grouped(split.trainRange.count)), validation \(grouped(split.validationRange.count))")
        console.report("  normalisation: lowercase \(settings.lowercase ? "on" : "off"), ascii \(settings.ascii ? "on" : "off")"
                       + (changes.isEmpty ? "; nothing changed" : "; " + changes.joined(separator: ", ")), indent: 4)
        if split.trainRange.count < settings.seq + 1 && loaded.tokens.count >= 2 * (settings.seq + 1) {
            console.note("note: the training split is too short for seq \(settings.seq) (val \(formatSettingNumber(settings.val)) holds "
                         + "the rest out): `set val 0.1` and load again, or lower `seq`\n")
        }
        // Keep the trainer's progress across a reload of the same text. Validation losses on another text are not
        // comparable with those kept: the best starts afresh.
        setTrainerAside()
        if let corpus, corpus.fingerprint != loaded.fingerprint { forgetValidations() }
        corpus = loaded
        corpusName = name
        dataset = split
        if model != nil, let vocabulary {
            if vocabulary != loaded.vocabulary && step == 0 && pendingResume == nil && checkpointCorpus == nil {
                // Never trained and not loaded: nothing to keep, so a model for this text's characters replaces it.
                console.note("note: the untrained model is rebuilt for this text's characters\n")
                try makeFreshModel(vocabulary: loaded.vocabulary)
            } else if vocabulary != loaded.vocabulary {
                let (text, own) = (Set(loaded.vocabulary.scalars), Set(vocabulary.scalars))
                let (unknown, unused) = (text.subtracting(own).count, own.subtracting(text).count)
                let difference = unknown + unused == 0
                    ? "the same characters in another order or read with other lowercase/ascii settings"
                    : quantity(unknown, "character") + " the model does not know, \(grouped(unused)) of the model's not in it"
                console.note("warning: this text's characters differ from the model's (\(difference)); "
                             + "`reset` starts a new model on this text, or load text with the model's characters\n")
            } else if let checkpointCorpus, checkpointCorpus != loaded.fingerprint {
                console.note("note: this is not the text the model was trained on; training continues from step \(step) on it\n")
            }
        } else {
            try makeFreshModel(vocabulary: loaded.vocabulary)
        }
    }

    private func loadCheckpoint(_ bytes: [UInt8], path: String) throws {
        let checkpoint = try Checkpoint.parse(bytes, path: path, cancellation: cancellation)
        guard confirmDiscardingUnsavedWork(again: "`load` it again to discard them") else { return }
        let loadedModel = try checkpoint.architecture.makeModel(parameters: checkpoint.parameters)
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
        saves.forgetLastSave()
        trainedElsewhere = checkpoint.training == nil
        forgetValidations()
        console.report("loaded checkpoint \(path), step \(grouped(step))")
        console.report("  model: \(loadedModel.summary)", indent: 4)
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
    /// For each action, the model and step its last unsaved-work note was given for: the note is given again for
    /// another model or for training done after it, and a note for one action does not stand for another.
    private var discardWarnedFor: [String: (model: ObjectIdentifier, step: Int)] = [:]

    /// False, with a note, the first time discarding this model's unsaved training would happen (see
    /// `guardsUnsavedWork`); `again` says what to do to go ahead (e.g. "`reset` again to discard them"). Leaving
    /// the prompt, `reset` and `load` share this one rule.
    func confirmDiscardingUnsavedWork(again: String) -> Bool {
        guard guardsUnsavedWork, unsavedSteps > 0, let model else { return true }
        let current = (model: ObjectIdentifier(model), step: step)
        if let warned = discardWarnedFor[again], warned == current { return true }
        discardWarnedFor[again] = current
        console.note("note: \(grouped(unsavedSteps)) step\(unsavedSteps == 1 ? "" : "s") trained since the last save: `save` them, "
                     + "or \(again)\n")
        return false
    }

    /// A new model from the current settings on the current text's characters (or the model's, without text).
    public func reset() throws {
        guard confirmDiscardingUnsavedWork(again: "`reset` again to discard them") else { return }
        guard let vocabulary = corpus?.vocabulary ?? vocabulary else { throw ShellError.needs(.textForAModel) }
        try makeFreshModel(vocabulary: vocabulary)
    }

    private func makeFreshModel(vocabulary: Vocabulary) throws {
        var generator = SeededGenerator(seed: settings.seed)
        let made = try settings.architecture(vocabularySize: vocabulary.count).makeModel(generator: &generator)
        model = made
        self.vocabulary = vocabulary
        trainer = nil
        pendingResume = nil
        checkpointCorpus = nil
        savedStep = 0
        trainedElsewhere = false
        forgetValidations()
        // A new model is not the one last saved: a bare `save` must not replace that file with it.
        saves.forgetLastSave()
        console.report("new model: \(made.summary)")
    }

    /// A different model: nothing kept from the last one's validations.
    private func forgetValidations() {
        watch = RunWatch()
        foundUnits = [:]
        restoredFrom = nil
        lastTrainingRate = nil  // `compare` shows the speed of this model's own training only
    }

    // MARK: Inspection

    /// Throws when training left a parameter infinite or NaN (a diverged run): such a model is not used, saved or
    /// shown; the error names the ways back.
    func checkFinite(_ model: any TrainableLanguageModel, nothing: String = "it is not used") throws {
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
        return Inspector(network: model, vocabulary: vocabulary, corpus: corpus, dataset: dataset, settings: settings,
                         context: context, cancellation: cancellation, console: console)
    }

}
