// `train` and `eval`: the session's trainer, made on first use (and resumed from a checkpoint's state), and a
// training run (the engine's TrainingRun) given the files it may write, whose events the renderer turns into lines
// (Rendering/TrainingEvents.swift).

import CharLM
import Foundation

extension Session {
    /// How long `train` runs.
    public typealias TrainingAmount = CharLM.TrainingAmount

    /// The trainer for the current model and text, made (and resumed) on first use. `command` names what needs it
    /// in the errors (`train`, `eval`).
    func readyTrainer(for command: String = "train") throws -> Trainer {
        guard let model, let vocabulary else { throw ShellError.needs(command == "train" ? .modelFromText : .model) }
        guard let corpus, let dataset else {
            let trainedOn = checkpointCorpus.map { fingerprint in
                (fingerprint.name.map { "'\($0)', " } ?? "") + quantity(fingerprint.characters, "character")
            }
            throw ShellError.needs(command == "train" ? .textToTrainOn(trainedOn: trainedOn) : .text(command: command))
        }
        guard corpus.vocabulary == vocabulary else { throw ShellError.vocabularyMismatch(forTraining: true) }
        if let trainer {
            try trainer.apply(settings.training)
            return trainer
        }
        let made: Trainer
        do {
            made = try Trainer(model: model, dataset: dataset, settings: settings.training, seed: settings.seed &+ 1,
                               context: context)
        } catch CharLMError.notEnoughMemory(let what, let bytes, let available, let hint) where command == "eval" {
            // `eval` makes the trainer too (its pass holds the windows): the refusal speaks of evaluating.
            throw CharLMError.notEnoughMemory(what: what.replacingOccurrences(of: "training with", with: "evaluating with"),
                                              bytes: bytes, available: available, hint: hint)
        }
        if var resume = pendingResume {
            resume.training.settings = settings.training
            try made.restore(training: resume.training, optimizer: resume.optimizer)
            pendingResume = nil
        }
        trainer = made
        return made
    }

    /// Trains for `amount`, validating every `eval` steps and at the end. Each validation keeps the best parameters
    /// so far (`restore best`), writes them to `keepbest`, and may note overfitting once; `log` gets a line per step
    /// and validation, `autosave` saves the session on its interval. Ctrl-C stops after the current step.
    public func train(_ amount: TrainingAmount) throws {
        let trainer = try readyTrainer()
        let run = try TrainingRun(trainer: trainer, watch: watch, amount: amount, evaluationInterval: settings.eval,
                                  secondsBefore: trainingSeconds)
        // What to write while training, checked before the first step: nothing is trained when a file is wrong.
        let autosavePath = try settings.autosave.map { _ in try saves.autosavePath() }
        if let autosavePath { try saves.checkAutosave(autosavePath, log: settings.log) }
        let keepbestPath = try settings.keepbest.map {
            try saves.keepbestPath($0, autosave: autosavePath, log: settings.log.map(expandingTilde))
        }
        run.outputs.log = try settings.log.map { try MetricsLog(path: expandingTilde($0)) }
        run.outputs.restoreBest = { [unowned self] in _ = try restoreBest() }
        if let interval = settings.autosave, let autosavePath {
            run.outputs.autosave = (interval, { [unowned self] in try save(to: autosavePath) })
        }
        if let keepbestPath {
            run.outputs.keepBest = { [unowned self] in
                try Checkpoint.write(try bestCheckpoint().serialized(), to: keepbestPath)
                saves.wrote(keepbestPath)
            }
        }
        var renderer = TrainingEventRenderer(console: console, settings: settings, stoppingEarly: amount.stopsEarly,
                                             watch: watch)
        let start = Date()
        let secondsBefore = trainingSeconds
        defer {
            trainingSeconds = secondsBefore + Date().timeIntervalSince(start)
            console.endStatus()
        }
        var outcome = TrainingOutcome.completed
        // At a terminal, keys typed meanwhile are neither echoed into the live line nor run afterwards.
        try whileRunningLong(false) {
            outcome = try run.run(interrupted: interruptRequested, cancellation: cancellation) { event in
                switch event {
                case .stepped(let snapshot):
                    restoredFrom = nil
                    lastTrainingRate = snapshot.tokensPerSecond
                case .interrupted(let snapshot, _), .finished(let snapshot, _):
                    if snapshot.stepsDone > 0 { lastTrainingRate = snapshot.tokensPerSecond }
                    if case .interrupted = event { clearInterrupt() }
                case .autosaveFailed, .keepbestFailed, .logStopped:
                    fileNotWritten = true
                default: break
                }
                renderer.render(event)
            }
        }
        if outcome == .interrupted {
            throw Interrupted(description: "training interrupted at step \(trainer.step)")
        }
    }

    /// Validation loss of the current model on the current text, its progress on the live status line at a
    /// terminal. Ctrl-C stops it.
    public func evaluate() throws -> Evaluation {
        if let model { try checkFinite(model) }
        let trainer = try readyTrainer(for: "eval")
        defer { console.endStatus() }
        var shown = -1
        var evaluation: Evaluation?
        // At a terminal, keys typed meanwhile are not echoed into the live line, and are read afterwards (as in `gen`:
        // lines pasted after `eval` run).
        try whileRunningLong(true) {
            evaluation = try trainer.evaluate(cancellation: cancellation) { done in
                let percent = Int(done * 100)
                guard percent != shown else { return }
                shown = percent
                console.status("evaluating \(percent)% of \(grouped(dataset?.validationRange.count ?? 0)) characters")
            }
        }
        guard let evaluation else { preconditionFailure("whileRunningLong returned without running its body") }
        return evaluation
    }

}

extension TrainingAmount {
    /// Whether the run stops itself when validation stops improving (`train until`).
    var stopsEarly: Bool {
        if case .untilNoImprovement = self { return true }
        return false
    }
}
