// A training run, as `train` runs it: steps until the amount asked for (steps, epochs, time, or `until` validation
// stops improving), a validation every `eval` steps and at the end, the best parameters kept (RunWatch.swift) and
// written to `keepbest`, the overfitting and divergence signs, autosave on its interval and at the end, a line per
// step and per validation in the metrics log, and Ctrl-C between steps. It reports what happens as events; the
// shell turns them into lines (CharLMShell/Rendering/TrainingEvents.swift). Where files go is the caller's: it passes
// the writes as closures.

import Foundation

/// How long `train` runs.
public enum TrainingAmount: Equatable, Sendable {
    case epochs(Double)
    case steps(Int)
    case seconds(Double)
    /// Until validation has not improved for this many validations in a row (early stopping), then the best
    /// parameters are restored.
    case untilNoImprovement(Int)
}

/// Where the run is: what the progress line shows.
public struct TrainingSnapshot: Sendable {
    public let step: Int
    /// The step the run stops at, when it stops at a step.
    public let lastStep: Int?
    public let epoch: Double
    public let recentLosses: ArraySlice<Double>
    /// The latest validation loss.
    public let validation: Double?
    /// Training tokens per second of this run so far (validations included); 0 before its first step.
    public let tokensPerSecond: Double
    /// Seconds left, when known (not in a final snapshot).
    public let remaining: Double?
    /// Steps this run has trained.
    public let stepsDone: Int
}

/// What happens during a run, in order.
public enum TrainingEvent {
    /// Before the first step: the validation split holds no window of `seq`, so the run does not validate.
    case noValidation
    /// A step was trained (after its validation and autosave, if any).
    case stepped(TrainingSnapshot)
    /// A validation is under way: the share of its windows scored (0 to 1).
    case validating(TrainingSnapshot, done: Double)
    /// A validation; `best` when it is the best so far and not the run's first, `saved` when keepbest was written.
    case validated(step: Int, evaluation: Evaluation, best: Bool, saved: Bool)
    /// keepbest could not be written (said once per run); the best is still kept.
    case keepbestFailed(Error)
    /// The best parameters could not be copied (no memory).
    case bestNotKept(Error)
    /// Validation rose twice while training loss fell (said once per model).
    case overfitting(OverfittingSign, best: BestParameters?)
    /// Validation is worse than guessing every character alike (said once per run).
    case diverged(loss: Double, vocabularySize: Int)
    /// The metrics log could not be written and was closed.
    case logStopped(Error)
    case autosaved(path: String, step: Int, bytes: Int)
    case autosaveFailed(Error)
    /// A step made a parameter infinite; `best` can be put back. The run then throws.
    case diverging(best: BestParameters?)
    /// Ctrl-C: the run stopped after a whole step; `duringValidation` when it came while a validation ran (the steps
    /// trained are kept, the validation is skipped).
    case interrupted(TrainingSnapshot, duringValidation: Bool)
    /// The run's last line: where it ended, and how long it took.
    case finished(TrainingSnapshot, seconds: Double)
    /// `until`: validation stopped improving, and the best was put back.
    case stoppedEarly(patience: Int, best: BestParameters)
}

/// How a run ended.
public enum TrainingOutcome: Equatable, Sendable {
    case completed
    /// `until` stopped it.
    case stoppedEarly
    /// Ctrl-C stopped it.
    case interrupted
}

/// One `train`: the plan, checked before the first step, and the loop.
public final class TrainingRun {
    /// The longest run for a time.
    public static let longestTraining = 365 * 24 * 3600.0

    /// What the run writes, and how; nil for what is not set. Each is checked by the caller before the run.
    public struct Outputs {
        /// Seconds between autosaves, and the save (returns the path and size).
        public var autosave: (interval: Double, save: () throws -> (path: String, bytes: Int))?
        /// Writes the best parameters (keepbest).
        public var keepBest: (() throws -> Void)?
        /// The metrics log, open.
        public var log: MetricsLog?
        /// Puts the best parameters back (early stopping); without it the run copies them into the model itself.
        public var restoreBest: (() throws -> Void)?

        public init() {}
    }

    let trainer: Trainer
    let watch: RunWatch
    /// Validate every this many steps (0: only at the end).
    let evaluationInterval: Int
    /// Steps to train, or the time to stop, or the patience of `until`.
    private var total: Int?
    private var deadline: Date?
    private let patience: Int?
    private let canValidate: Bool
    /// What the run writes; set before `run`.
    public var outputs = Outputs()
    /// Seconds trained before this run (the metrics log's elapsed_s goes on from there).
    private let secondsBefore: Double

    /// Checks the plan: an amount within the step limit and a year, and `until` only with validation.
    public init(trainer: Trainer, watch: RunWatch, amount: TrainingAmount, evaluationInterval: Int,
                secondsBefore: Double = 0) throws {
        self.trainer = trainer
        self.watch = watch
        self.evaluationInterval = evaluationInterval
        self.secondsBefore = secondsBefore
        let T = trainer.settings.sequenceLength
        // Validation needs one window of seq characters in the validation split; without one, training goes on
        // without it (and says so once).
        canValidate = trainer.dataset.validationWindowCount(length: T) > 0
        // Every amount is checked in Double before it becomes a count: no step count may pass Trainer.maximumStep.
        let firstStep = trainer.step
        let stepsLeft = Trainer.maximumStep - firstStep
        func steps(_ wanted: Double, _ asked: String) throws -> Int {
            guard wanted.isFinite, wanted <= Double(stepsLeft) else {
                throw CharLMError.tooLarge(what: "train \(asked)", value: wanted.isFinite ? "\(formatSettingNumber(wanted.rounded())) steps" : "endless",
                                           maximum: "\(grouped(stepsLeft)) more steps (the model is at step \(grouped(firstStep)))")
            }
            return max(1, Int(wanted.rounded()))
        }
        var patience: Int? = nil
        switch amount {
        case .epochs(let epochs): total = try steps(epochs * Double(trainer.stepsPerEpoch), "\(formatSettingNumber(epochs)) epochs")
        case .steps(let count):
            guard count <= stepsLeft else {
                // (A count past Int's range arrives as Int.max.)
                throw CharLMError.tooLarge(what: "the number of steps", value: count == .max ? "9.2e+18 or more" : grouped(count),
                                           maximum: "\(grouped(stepsLeft)) more steps (the model is at step \(grouped(firstStep)))")
            }
            total = max(1, count)
        case .seconds(let seconds):
            guard seconds <= Self.longestTraining else {
                throw CharLMError.tooLarge(what: "train for \(formatSettingNumber(seconds)) seconds", value: "longer than a year",
                                           maximum: "\(Int(Self.longestTraining)) seconds (a year)")
            }
            deadline = Date().addingTimeInterval(seconds)
        case .untilNoImprovement(let count):
            guard canValidate else {
                throw CharLMError.refused("train until needs validation, and the validation split (val "
                                          + "\(formatSettingNumber(trainer.dataset.validationFraction))) holds no window of seq \(T) "
                                          + "characters: lower `seq`, or `set val` higher and load again")
            }
            guard evaluationInterval > 0 else {
                throw CharLMError.refused("train until counts validations, and `eval` is 0 (only at the end): `set eval 250`, say")
            }
            patience = count
        }
        self.patience = patience
    }

    /// Runs the steps, reporting each event to `report`. Ctrl-C (`interrupted`, asked between steps) stops it after a
    /// whole step. Throws what a step or a validation throws (a diverged step, Ctrl-C during a validation).
    public func run(interrupted: () -> Bool, cancellation: Cancellation,
                    report: (TrainingEvent) -> Void) throws -> TrainingOutcome {
        if patience != nil { watch.restartPatience() }
        let firstStep = trainer.step
        let perEpoch = trainer.stepsPerEpoch
        let tokensPerStep = Double(trainer.settings.sequenceLength * trainer.settings.batch)
        let start = Date()
        var nextAutosave = outputs.autosave.map { Date().addingTimeInterval($0.interval) }
        var done = 0
        var keepbestWarned = false
        var divergenceNoted = false

        func snapshot(final: Bool) -> TrainingSnapshot {
            let elapsed = Date().timeIntervalSince(start)
            var remaining: Double? = nil
            if !final && done > 0 {
                remaining = total.map { Double($0 - done) * elapsed / Double(done) } ?? deadline.map { $0.timeIntervalSinceNow }
            }
            return TrainingSnapshot(
                step: trainer.step, lastStep: total.map { firstStep + $0 }, epoch: Double(trainer.step) / Double(perEpoch),
                recentLosses: trainer.lossHistory.suffix(20), validation: trainer.validationHistory.last?.loss,
                tokensPerSecond: elapsed > 0 ? Double(done) * tokensPerStep / elapsed : 0,
                remaining: remaining.map { max(0, $0) }, stepsDone: done)
        }
        /// A line for the metrics log; a log that cannot be written is said once and closed.
        func log(trainingLoss: Double?, validationLoss: Double?) {
            guard let open = outputs.log else { return }
            do {
                try open.append(MetricsRecord(
                    step: trainer.step, epoch: Double(trainer.step) / Double(perEpoch), trainingLoss: trainingLoss,
                    validationLoss: validationLoss, learningRate: trainer.settings.learningRate(atStep: max(1, trainer.step)),
                    tokensPerSecond: snapshot(final: false).tokensPerSecond,
                    elapsedSeconds: secondsBefore + Date().timeIntervalSince(start)))
            } catch {
                report(.logStopped(error))
                outputs.log = nil
            }
        }
        func autosave() {
            guard let autosave = outputs.autosave else { return }
            do {
                let (path, bytes) = try autosave.save()
                report(.autosaved(path: path, step: trainer.step, bytes: bytes))
            } catch {
                report(.autosaveFailed(error))
            }
        }
        func validate() throws {
            guard canValidate else { return }
            let evaluation = try trainer.validate(cancellation: cancellation) { done in
                report(.validating(snapshot(final: false), done: done))
            }
            log(trainingLoss: nil, validationLoss: evaluation.nats)
            // Keep the parameters when they are the best so far, and write them to keepbest.
            var best = false
            var saved = false
            let protocolKey = ValidationProtocol(sequenceLength: trainer.settings.sequenceLength,
                                                 validationFraction: trainer.dataset.validationFraction)
            do {
                if try watch.record(step: trainer.step, loss: evaluation.nats, protocolKey: protocolKey,
                                    parameters: trainer.model.parameters) {
                    best = trainer.validationHistory.count > 1
                    if let keepBest = outputs.keepBest {
                        do {
                            try keepBest()
                            saved = true
                        } catch {
                            // Said once per run; a later failure to write it is not a failure to keep the best.
                            if !keepbestWarned { report(.keepbestFailed(error)) }
                            keepbestWarned = true
                        }
                    }
                }
            } catch {
                report(.bestNotKept(error))
            }
            report(.validated(step: trainer.step, evaluation: evaluation, best: best || saved, saved: saved))
            if let sign = watch.noteOverfitting(validationHistory: trainer.validationHistory,
                                                lossHistory: trainer.lossHistory, lastStep: trainer.step) {
                report(.overfitting(sign, best: watch.best))
            }
            // Worse than guessing every character alike: the parameters have run away (a learning rate too high for
            // this model, say), though every number is still finite.
            let V = trainer.model.vocabularySize
            if evaluation.nats > Foundation.log(Double(V)) + 0.5 && !divergenceNoted {
                divergenceNoted = true
                report(.diverged(loss: evaluation.nats, vocabularySize: V))
            }
        }

        /// Ctrl-C: autosave what was trained, and say so.
        func stop(duringValidation: Bool) -> TrainingOutcome {
            if done > 0 { autosave() }
            report(.interrupted(snapshot(final: true), duringValidation: duringValidation))
            return .interrupted
        }
        /// A validation, or false when Ctrl-C stopped it (the steps before it are kept).
        func validateUnlessStopped() throws -> Bool {
            do {
                try validate()
                return true
            } catch CharLMError.cancelled {
                return false
            }
        }

        if !canValidate { report(.noValidation) }
        var stoppedEarly = false
        while true {
            if let total, done >= total { break }
            if let deadline, Date() >= deadline { break }
            if interrupted() { return stop(duringValidation: false) }
            let loss: Double
            do {
                loss = try trainer.trainStep()
            } catch let error as CharLMError {
                if case .nonFiniteParameters = error { report(.diverging(best: watch.best)) }
                throw error
            }
            done += 1
            log(trainingLoss: loss, validationLoss: nil)
            if evaluationInterval > 0 && trainer.step % evaluationInterval == 0 {
                guard try validateUnlessStopped() else { return stop(duringValidation: true) }
                if let patience, watch.validationsSinceImprovement >= patience {
                    stoppedEarly = true
                    break
                }
            }
            if let due = nextAutosave, Date() >= due {
                autosave()
                nextAutosave = outputs.autosave.map { Date().addingTimeInterval($0.interval) }
            }
            report(.stepped(snapshot(final: false)))
        }
        if done > 0 && !stoppedEarly && (evaluationInterval == 0 || trainer.step % evaluationInterval != 0) {
            guard try validateUnlessStopped() else { return stop(duringValidation: true) }
        }
        // The end of a run is saved too, so autosave never leaves the last steps unsaved.
        if done > 0 && !stoppedEarly { autosave() }
        report(.finished(snapshot(final: true), seconds: Date().timeIntervalSince(start)))
        if let patience, stoppedEarly, let best = watch.best {
            if let restore = outputs.restoreBest {
                try restore()
            } else {
                trainer.model.parameters.copy(from: best.values)
                trainer.optimizer.restart()
                watch.restartPatience()
            }
            autosave()
            report(.stoppedEarly(patience: patience, best: best))
            return .stoppedEarly
        }
        return .completed
    }
}
