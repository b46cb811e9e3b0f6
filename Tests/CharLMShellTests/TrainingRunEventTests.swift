// The training run lives in the engine (CharLM's Training/TrainingRun.swift) and reports events; the shell only
// renders them. These tests run the same training through the engine alone and through the shell, and check that
// the engine's events are what the shell prints: each validation with its best and saved marks, the overfitting
// note, early stopping with the best restored, and the divergence note.

import CharLM
@testable import CharLMShell
import Foundation
import Testing

/// The validation line the shell prints for a `validated` event (before wrapping).
private func validationLine(_ event: TrainingEvent) -> String? {
    guard case .validated(let step, let evaluation, let best, let saved) = event else { return nil }
    return String(format: "step %d: validation loss %.4f nats/char (%.4f bits/char)", step, evaluation.nats, evaluation.bits)
        + (saved ? ", best (saved)" : best ? ", best" : "")
}

@Test func theEngineRunEmitsWhatTheShellPrints() throws {
    // The engine alone: tiny.txt, a small model that overfits within a few hundred steps, `train until 3` with
    // keepbest, as LongRunTests' shell settings make it (the shell seeds the model with `seed` and the trainer
    // with seed + 1).
    let settings = Settings()
    let corpus = try Corpus.load(path: fixture("tiny.txt"), normalization: settings.normalization)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: settings.val)
    var generator = SeededGenerator(seed: 5)
    let architecture: any ModelArchitecture = RecurrentConfig(vocabularySize: corpus.vocabulary.count, embeddingSize: 16,
                                                          hiddenSize: 128)
    let model = try architecture.makeModel(generator: &generator)
    let trainer = try Trainer(model: model, dataset: dataset,
                              settings: TrainingSettings(sequenceLength: 20, batch: 16, learningRate: 0.01), seed: 5 &+ 1)
    let watch = RunWatch()
    let run = try TrainingRun(trainer: trainer, watch: watch, amount: .untilNoImprovement(3), evaluationInterval: 10)
    var bestWrites = 0
    run.outputs.keepBest = { bestWrites += 1 }
    var events: [TrainingEvent] = []
    let outcome = try run.run(interrupted: { false }, cancellation: .never) { events.append($0) }

    #expect(outcome == .stoppedEarly)
    let validations = events.compactMap(validationLine)
    #expect(validations.count >= 5)
    let saved = events.filter { if case .validated(_, _, _, true) = $0 { return true } else { return false } }.count
    #expect(saved == bestWrites && bestWrites >= 2)
    let overfitting = events.contains { if case .overfitting = $0 { return true } else { return false } }
    guard case .stoppedEarly(let patience, let best)? = events.last else {
        Issue.record("the run's last event is not the early stop: \(String(describing: events.last))")
        return
    }
    #expect(patience == 3 && best.step == watch.best?.step)

    // The shell: the same run, rendered.
    let folder = try temporaryFolder()
    let keep = folder.appendingPathComponent("best.safetensors").path
    let (session, _, console) = try makeShell(running: [
        "set hidden 128", "set embed 16", "set seq 20", "set batch 16", "set lr 0.01", "set eval 10", "set seed 5",
        "set keepbest \(keep)", "load \(fixture("tiny.txt"))", "train until 3"])
    let printed = unwrapped(console.stderr).split(separator: "\n").map(String.init)
    #expect(printed.filter { $0.contains(": validation loss ") && $0.hasPrefix("step ") } == validations)
    #expect(printed.contains { $0.hasPrefix("note: validation loss rose twice in a row") } == overfitting)
    let reports = unwrapped(console.stdout + console.stderr)
    #expect(reports.contains("stopped: validation has not improved for 3 validations; restored the best, "
                             + "step \(grouped(best.step)) "), "\(reports)")
    // The same run: the same parameters restored.
    #expect(try #require(session.model).parameters.array == trainer.model.parameters.array)
}

@Test func aRunWorseThanGuessingIsNotedOnceAsTheShellSaysIt() throws {
    // A model made confidently wrong: one character's output bias far above the others, so every validation scores
    // worse than guessing all characters alike while every number stays finite.
    let corpus = try Corpus.make(text: String(repeating: "abcabcabd\n", count: 40), normalization: NormalizationOptions())
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.2)
    var generator = SeededGenerator(seed: 1)
    let config = RecurrentConfig(vocabularySize: corpus.vocabulary.count, embeddingSize: 4, hiddenSize: 8, layerCount: 1)
    let model = try config.makeModel(generator: &generator)
    let bias = RecurrentLayout(config: config).fcBias
    model.parameters.pointer[bias.offset] = 60
    let trainer = try Trainer(model: model, dataset: dataset,
                              settings: TrainingSettings(sequenceLength: 8, batch: 4, learningRate: 1e-6), seed: 2)
    let run = try TrainingRun(trainer: trainer, watch: RunWatch(), amount: .steps(3), evaluationInterval: 1)
    var events: [TrainingEvent] = []
    #expect(try run.run(interrupted: { false }, cancellation: .never) { events.append($0) } == .completed)
    let diverged = events.compactMap { event -> Double? in
        if case .diverged(let loss, let V) = event, V == corpus.vocabulary.count { return loss }
        return nil
    }
    #expect(diverged.count == 1 && diverged[0] > log(Double(corpus.vocabulary.count)) + 0.5)

    // The shell's line for it names the way back.
    let console = BufferConsole()
    var renderer = TrainingEventRenderer(console: console, settings: Settings(), stoppingEarly: false, watch: RunWatch())
    renderer.render(.diverged(loss: diverged[0], vocabularySize: corpus.vocabulary.count))
    #expect(unwrapped(console.stderr).contains("training has diverged; lower `lr` (now 0.002), then `reset`"))
}

/// A flag the cancellation reads and a test sets (checked between batches of work, on one thread here).
private final class StopFlag: @unchecked Sendable {
    var raised = false
}

@Test func ctrlCDuringTheFinalValidationKeepsTheStepsAndSaysSo() throws {
    let corpus = try Corpus.make(text: String(repeating: "the cat sat on the mat.\n", count: 200),
                                 normalization: NormalizationOptions())
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.3)
    var generator = SeededGenerator(seed: 1)
    let config = RecurrentConfig(vocabularySize: corpus.vocabulary.count, embeddingSize: 4, hiddenSize: 8, layerCount: 1)
    let model = try config.makeModel(generator: &generator)
    // Windows of 8, 4 at a time: the validation takes several batches, so Ctrl-C can come in the middle of it.
    let trainer = try Trainer(model: model, dataset: dataset,
                              settings: TrainingSettings(sequenceLength: 8, batch: 4, learningRate: 1e-3), seed: 2)
    #expect(dataset.validationWindowCount(length: 8) > 8)
    let run = try TrainingRun(trainer: trainer, watch: RunWatch(), amount: .steps(3), evaluationInterval: 0)
    let stop = StopFlag()
    var events: [TrainingEvent] = []
    var shares: [Double] = []
    let outcome = try run.run(interrupted: { false }, cancellation: Cancellation { stop.raised }) { event in
        events.append(event)
        if case .validating(_, let done) = event {
            shares.append(done)
            stop.raised = true  // Ctrl-C once the validation is under way
        }
    }
    #expect(outcome == .interrupted && trainer.step == 3 && trainer.validationHistory.isEmpty)
    #expect(shares.count == 1 && shares[0] > 0 && shares[0] < 1)
    guard case .interrupted(let snapshot, duringValidation: true)? = events.last else {
        Issue.record("the last event is not an interruption during the validation: \(String(describing: events.last))")
        return
    }
    #expect(snapshot.step == 3 && snapshot.stepsDone == 3)

    // The shell says what happened: the steps were trained and kept, the validation was skipped.
    let console = BufferConsole()
    var renderer = TrainingEventRenderer(console: console, settings: Settings(), stoppingEarly: false, watch: RunWatch())
    renderer.render(events.last!)
    #expect(unwrapped(console.stderr).contains("interrupted: `train` stopped during the validation after step 3: 3 steps "
                                               + "trained and kept, the validation skipped"))
}

@Test func theLiveLineShowsAValidationUnderWay() {
    let progress = TrainingProgress(step: 40, lastStep: 100, epoch: 0.5, recentLosses: [2.1, 2.0], validation: 2.2,
                                    tokensPerSecond: 12_345, remaining: 10, validating: 0.45)
    #expect(progress.line(sparkline: false).hasSuffix("validating 45%"))
    // It stays when the line is cut to fit: step, loss and the validation's progress are the last to go.
    let narrow = progress.line(sparkline: true, width: 40)
    #expect(narrow.contains("validating 45%") && narrow.count <= 40, "\(narrow)")
}

/// keepbest that cannot be written: said once per run, and every later failure is quiet (the best is still kept in
/// memory, so no "best not kept" either).
@Test func aKeepbestThatKeepsFailingIsSaidOnce() throws {
    let corpus = try Corpus.load(path: fixture("tiny.txt"), normalization: Settings().normalization)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    var generator = SeededGenerator(seed: 5)
    let model = try RecurrentConfig(vocabularySize: corpus.vocabulary.count, embeddingSize: 8, hiddenSize: 32)
        .makeModel(generator: &generator)
    let trainer = try Trainer(model: model, dataset: dataset,
                              settings: TrainingSettings(sequenceLength: 20, batch: 8, learningRate: 0.01), seed: 6)
    let run = try TrainingRun(trainer: trainer, watch: RunWatch(), amount: .steps(40), evaluationInterval: 5)
    struct DiskFull: Error {}
    var attempts = 0
    run.outputs.keepBest = { attempts += 1; throw DiskFull() }
    var events: [TrainingEvent] = []
    _ = try run.run(interrupted: { false }, cancellation: .never) { events.append($0) }
    let failed = events.filter { if case .keepbestFailed = $0 { return true } else { return false } }.count
    let notKept = events.filter { if case .bestNotKept = $0 { return true } else { return false } }.count
    #expect(attempts >= 2, "the test needs two failed writes")
    #expect(failed == 1 && notKept == 0, "\(events)")
}
