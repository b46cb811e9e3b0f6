// Training end to end on small data: it learns, it is reproducible, and its faults leave nothing half-changed.

import CharLM
import Foundation
import Testing

/// A trainer on `text` with a small model.
private func makeTrainer(
    text: String, H: Int = 32, L: Int = 2, dropout: Float = 0, length T: Int = 16, batch B: Int = 8,
    learningRate: Float = 1e-2, seed: UInt64 = 1, cell: LayerKind = .lstm
) throws -> Trainer {
    let corpus = try Corpus.make(text: text, normalization: .raw)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    let config = RecurrentConfig(
        vocabularySize: corpus.vocabulary.count, embeddingSize: 8, hiddenSize: H, layerCount: L, dropout: dropout,
        layerKind: cell)
    var generator = SeededGenerator(seed: seed)
    let model = try RecurrentModel(config: config, generator: &generator)
    return try Trainer(
        model: model, dataset: dataset, settings: TrainingSettings(sequenceLength: T, batch: B, learningRate: learningRate),
        seed: seed &+ 100)
}

/// Every piece of state a training step may change.
private struct Snapshot: Equatable {
    let parameters: [Float], firstMoment: [Float], secondMoment: [Float], adamSteps: Int, step: Int, losses: [Double]
    init(_ trainer: Trainer) {
        parameters = trainer.model.parameters.array
        firstMoment = trainer.optimizer.firstMoment.array
        secondMoment = trainer.optimizer.secondMoment.array
        adamSteps = trainer.optimizer.stepCount
        step = trainer.step
        losses = trainer.lossHistory
    }
}

@Test(arguments: LayerKind.allCases)
func aShortRepetitiveTextIsLearned(cell: LayerKind) throws {
    // Each character determines the next, so a model that learned the text predicts it almost surely.
    let trainer = try makeTrainer(text: String(repeating: "abcdefghij\n", count: 60), cell: cell)
    var loss = Double.infinity
    for _ in 0..<300 { loss = try trainer.trainStep() }
    #expect(loss < 0.05, "training loss \(loss)")
    let evaluation = try trainer.evaluate()
    #expect(evaluation.nats < 0.05, "validation loss \(evaluation.nats)")
    #expect(abs(evaluation.bits - evaluation.nats / log(2)) < 1e-12)
    #expect(abs(evaluation.perplexity - exp(evaluation.nats)) < 1e-12)
}

@Test(arguments: [Float(0), 0.3])
func theSameSeedGivesBitIdenticalLosses(dropout: Float) throws {
    let text = String(repeating: "to be or not to be, that is the question\n", count: 20)
    let first = try makeTrainer(text: text, L: 3, dropout: dropout)
    let second = try makeTrainer(text: text, L: 3, dropout: dropout)
    for _ in 0..<15 {
        try first.trainStep()
        try second.trainStep()
    }
    #expect(first.lossHistory == second.lossHistory)
    #expect(first.model.parameters.array == second.model.parameters.array)
    // And a different seed gives a different run.
    let other = try makeTrainer(text: text, L: 3, dropout: dropout, seed: 2)
    for _ in 0..<15 { try other.trainStep() }
    #expect(other.lossHistory != first.lossHistory)
}

@Test func aNonFiniteLossStopsTrainingAndRestoresEverything() throws {
    let trainer = try makeTrainer(text: String(repeating: "hello world\n", count: 30))
    for _ in 0..<3 { try trainer.trainStep() }
    // Overflow the output layer: every logit becomes infinite, the loss NaN.
    let bias = trainer.model.layout.fcBias.offset
    trainer.model.parameters[bias] = .infinity
    let before = Snapshot(trainer)
    let error = try #require(throws: CharLMError.self) { try trainer.trainStep() }
    guard case .nonFiniteLoss(let step, let loss) = error else { Issue.record("unexpected \(error)"); return }
    #expect(step == 4 && loss.isNaN)
    #expect(error.description.hasPrefix("training stopped at step 4: the loss became NaN."))
    let after = Snapshot(trainer)
    #expect(after.parameters.elementsEqual(before.parameters) { $0 == $1 || ($0.isNaN && $1.isNaN) })
    #expect(after.firstMoment == before.firstMoment && after.secondMoment == before.secondMoment)
    #expect(after.adamSteps == before.adamSteps && after.step == before.step && after.losses == before.losses)
    // Repair the parameter and training carries on.
    trainer.model.parameters[bias] = 0
    try trainer.trainStep()
    #expect(trainer.step == 4)
}

@Test func aCorpusTooShortForOneWindowIsExplained() throws {
    #expect(throws: CharLMError.corpusTooShort(split: "training", tokens: 36, needed: 101, seq: 100)) {
        try makeTrainer(text: String(repeating: "abcd", count: 10), length: 100)
    }
    let error = try #require(throws: CharLMError.self) {
        try makeTrainer(text: String(repeating: "abcd", count: 10), length: 100)
    }
    #expect(error.description == "the training split has 36 characters; it needs at least seq+1 = 101 (seq is 100): lower `val` (the share held out), lower `seq` or load more text")
}

@Test func evaluationOnAnEmptyValidationSplitIsExplained() throws {
    let corpus = try Corpus.make(text: String(repeating: "abcd", count: 40), normalization: .raw)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0)
    var generator = SeededGenerator(seed: 1)
    let model = try RecurrentModel(config: RecurrentConfig(vocabularySize: 4, embeddingSize: 4, hiddenSize: 4, layerCount: 1), generator: &generator)
    let trainer = try Trainer(model: model, dataset: dataset, settings: TrainingSettings(sequenceLength: 10, batch: 2), seed: 1)
    #expect(throws: CharLMError.noValidationSplit) { try trainer.evaluate() }
    // A split too short for one window names the split, its size and what it needs.
    let short = try Trainer(model: model, dataset: Dataset(tokens: corpus.tokens, validationFraction: 0.05),
                            settings: TrainingSettings(sequenceLength: 10, batch: 2), seed: 1)
    #expect(throws: CharLMError.corpusTooShort(split: "validation", tokens: 8, needed: 11, seq: 10)) { try short.evaluate() }
}

@Test func evaluationMatchesTheNaiveReferenceOverAllWindows() throws {
    // The protocol computed independently: every window from a zero state through the Double-precision model.
    let trainer = try makeTrainer(text: String(repeating: "the cat sat on the mat. ", count: 30), length: 6, batch: 4)
    for _ in 0..<5 { try trainer.trainStep() }
    let evaluation = try trainer.evaluate()
    let dataset = trainer.dataset
    let windows = dataset.validationWindowCount(length: 6)
    #expect(windows == (dataset.validationRange.count - 1) / 6 && windows > 4)  // several batches, the last partial
    let base = dataset.validationRange.lowerBound
    let inputs = (0..<windows).map { k in (0..<6).map { dataset.tokens[base + k * 6 + $0] } }
    let targets = (0..<windows).map { k in (0..<6).map { dataset.tokens[base + k * 6 + $0 + 1] } }
    let reference = NaiveModel(model: trainer.model.recurrent).run(inputs: inputs, targets: targets).loss!
    #expect(abs(evaluation.nats - reference) < 1e-5)
    #expect(evaluation.characters == windows * 6)
}

@Test func invalidTrainingSettingsAreRefused() throws {
    let text = String(repeating: "abcdefgh", count: 40)
    #expect(throws: CharLMError.outOfRange(setting: "lr", rule: "a number above 0, at most 1", got: "-1")) {
        try makeTrainer(text: text, learningRate: -1)
    }
    #expect(throws: CharLMError.outOfRange(setting: "batch", rule: "a whole number from 1 to 4096", got: "0")) {
        try makeTrainer(text: text, batch: 0)
    }
}

@Test func learningRateWarmsUpThenFollowsTheCosineToATenth() {
    let lr: Float = 3e-3
    let constant = TrainingSettings(learningRate: lr)
    #expect([1, 2, 1000, 1_000_000].allSatisfy { constant.learningRate(atStep: $0) == lr })
    let scheduled = TrainingSettings(learningRate: lr, warmupSteps: 10, decaySteps: 110)
    // Linear warm-up: step k of 10 uses k/10 of lr.
    #expect(abs(scheduled.learningRate(atStep: 1) - lr / 10) < 1e-9)
    #expect(abs(scheduled.learningRate(atStep: 5) - lr / 2) < 1e-9)
    #expect(scheduled.learningRate(atStep: 10) == lr)
    // Cosine from lr (step 10) to lr/10 (step 110): halfway at step 60, (1 + cos(pi/4))/2 of the way at step 35.
    #expect(abs(scheduled.learningRate(atStep: 60) - (lr + lr / 10) / 2) < 1e-8)
    let quarter = lr / 10 + Float(0.5 * (1 + cos(Double.pi / 4))) * (lr - lr / 10)
    #expect(abs(scheduled.learningRate(atStep: 35) - quarter) < 1e-8)
    #expect(abs(scheduled.learningRate(atStep: 110) - lr / 10) < 1e-9)
    #expect(abs(scheduled.learningRate(atStep: 5000) - lr / 10) < 1e-9)
    // Monotone after warm-up.
    let rates = (10...120).map { scheduled.learningRate(atStep: $0) }
    #expect(zip(rates, rates.dropFirst()).allSatisfy { $0 >= $1 })
}
