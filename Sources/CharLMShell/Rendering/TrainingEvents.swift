// The lines `train` prints, from the engine's training events (CharLM's Training/TrainingRun.swift): the live
// progress line (rewritten in place at a terminal, a plain line every 10 seconds elsewhere), each validation, the
// notes on overfitting and divergence, autosaves and the end of the run. Only text: what the run does is the
// engine's.

import CharLM
import Foundation

/// Turns one run's events into lines on the console.
struct TrainingEventRenderer {
    let console: Console
    /// The settings of the run, which some notes name (`lr`, `clip`, `val`, `seq`).
    let settings: Settings
    /// Whether the run is `train until` (the overfitting note then does not suggest it).
    let stoppingEarly: Bool
    /// The best so far, which the divergence note offers.
    let watch: RunWatch
    /// When the last plain progress line was written (output that is not a terminal).
    private var lastPlainLine = Date()
    /// When the live line was last redrawn (a terminal).
    private var lastStatusLine = Date.distantPast

    init(console: Console, settings: Settings, stoppingEarly: Bool, watch: RunWatch) {
        self.console = console
        self.settings = settings
        self.stoppingEarly = stoppingEarly
        self.watch = watch
    }

    /// The progress line of `snapshot`, fitted to the width less `reserve` columns; with `validating`, the share of
    /// the validation under way.
    func progress(_ snapshot: TrainingSnapshot, reserve: Int = 0, validating: Double? = nil) -> String {
        TrainingProgress(
            step: snapshot.step, lastStep: snapshot.lastStep, epoch: snapshot.epoch, recentLosses: snapshot.recentLosses,
            validation: snapshot.validation, tokensPerSecond: snapshot.tokensPerSecond, remaining: snapshot.remaining,
            validating: validating
        ).line(sparkline: console.isTerminal, width: console.width - 1 - reserve)
    }

    mutating func render(_ event: TrainingEvent) {
        let width = console.width - 1
        switch event {
        case .noValidation:
            console.note("note: no validation while training: the validation split (val \(formatSettingNumber(settings.val))) "
                         + "holds no window of seq \(settings.seq) characters\n")
        case .stepped(let snapshot):
            // At most ten redraws a second (as tqdm): a small model takes thousands of steps a second, and a terminal
            // being resized meanwhile could reflow a line between two of them.
            if console.isTerminal {
                guard Date().timeIntervalSince(lastStatusLine) >= 0.1 else { return }
                lastStatusLine = Date()
                console.status(progress(snapshot))
            } else if Date().timeIntervalSince(lastPlainLine) >= 10 {
                console.progress(progress(snapshot) + "\n")
                lastPlainLine = Date()
            }
        case .validating(let snapshot, let done):
            // At a terminal the live line says a validation is running, and how far it is.
            if console.isTerminal { console.status(progress(snapshot, validating: done)) }
        case .validated(let step, let evaluation, let best, let saved):
            console.endStatus()
            let mark = saved ? ", best (saved)" : best ? ", best" : ""
            console.progress(wrap(String(format: "step %ld: validation loss %.4f nats/char (%.4f bits/char)", step,
                                         evaluation.nats, evaluation.bits) + mark, width: width, indent: 2) + "\n")
        case .keepbestFailed(let error):
            console.note("warning: the best model was not written to keepbest: \(error); training goes on "
                         + "(the best is still kept: `save best PATH`)\n")
        case .bestNotKept(let error):
            console.note("warning: the best parameters are not kept: \(error)\n")
        case .overfitting(let sign, let best):
            let rising = sign.validations.map { String(format: "%.4f", $0.loss) }.joined(separator: " -> ")
            let bestText = best.map { " (step \(grouped($0.step)), \(String(format: "%.4f", $0.loss)))" } ?? ""
            console.note(wrap("note: validation loss rose twice in a row (\(rising), steps \(grouped(sign.validations[0].step))"
                              + "-\(grouped(sign.validations[2].step))) while training loss fell "
                              + "(\(String(format: "%.4f -> %.4f", sign.trainingBefore, sign.trainingAfter))): the model is "
                              + "memorising its training text. Remedies: `restore best`\(bestText); more `dropout` or a smaller "
                              + (settings.arch == .transformer ? "`embed`" : "`hidden`") + ", then `reset`" + (stoppingEarly ? "" : "; `train until 3` stops by itself") + ".",
                              width: width, indent: 2) + "\n")
        case .diverged(let loss, let V):
            let uniform = Foundation.log(Double(V))
            console.note(wrap(String(format: "note: validation loss %.4f is worse than guessing all %ld characters alike "
                                     + "(ln %ld = %.4f): training has diverged; ", loss, V, V, uniform)
                              + "lower `lr` (now \(formatNumber(settings.lr)))" + (settings.clip == 0 ? " or turn `clip` on" : "")
                              + ", then " + (watch.best != nil ? "`restore best` or " : "") + "`reset`",
                              width: width, indent: 2) + "\n")
        case .logStopped(let error):
            console.endStatus()
            console.note("warning: the metrics log stopped: \(error); training goes on\n")
        case .autosaved(let path, let step, let bytes):
            console.endStatus()
            console.progress("  autosaved \(path) at step \(grouped(step)) (\(grouped(bytes)) bytes)\n")
        case .autosaveFailed(let error):
            console.endStatus()
            console.note("warning: autosave failed: \(error); training goes on\n")
        case .diverging(let best):
            if let best {
                console.note("note: `restore best` puts back the parameters of step \(grouped(best.step)) (validation loss "
                             + String(format: "%.4f", best.loss) + ")\n")
            }
        case .interrupted(let snapshot, let duringValidation):
            console.endStatus()
            // The last state, as the live line showed it.
            console.progress(progress(snapshot) + "\n")
            let trained = "\(grouped(snapshot.stepsDone)) step\(snapshot.stepsDone == 1 ? "" : "s") trained"
            console.note((duringValidation
                            ? "interrupted: `train` stopped during the validation after step \(snapshot.step): \(trained) "
                              + "and kept, the validation skipped; the model and optimizer are consistent"
                            : "interrupted: `train` stopped after step \(snapshot.step); the model and optimizer are consistent")
                         + (stoppingEarly ? watch.best.map { "; `restore best` puts back step \(grouped($0.step))" } ?? "" : "")
                         + "\n")
        case .finished(let snapshot, let seconds):
            console.endStatus()
            let done = snapshot.stepsDone
            let summary = "  (\(grouped(done)) step\(done == 1 ? "" : "s") in \(duration(seconds)))"
            // Beside the last state when the step and the loss still fit beside it ("step 255814/300000  loss
            // 1.4052": 31 columns), else under it.
            let roomBeside = console.width - 1 - summary.count >= 32
            console.progress(roomBeside ? progress(snapshot, reserve: summary.count) + summary + "\n"
                                        : progress(snapshot) + "\n" + summary + "\n")
        case .stoppedEarly(let patience, let best):
            console.report("stopped: validation has not improved for \(patience) validation\(patience == 1 ? "" : "s"); "
                           + "restored the best, step \(grouped(best.step)) (validation loss \(String(format: "%.4f", best.loss))); "
                           + "the optimizer restarts")
        }
    }
}
