// Training and evaluation: batches -> model -> loss -> gradients -> clipping -> Adam -> parameters, one step at a
// time, plus the validation protocol. No terminal I/O: callers show progress from the values returned.

import Foundation

/// The settings of a training run that are not part of the architecture.
public struct TrainingSettings: Equatable, Sendable {
    /// T: characters per training window.
    public var steps: Int = 100
    /// B: windows per batch.
    public var batch: Int = 64
    public var learningRate: Float = 2e-3
    /// Global gradient-norm limit; 0 disables clipping.
    public var clip: Float = 5
    /// Steps of linear learning-rate warm-up from 0 to `learningRate`; 0 for none.
    public var warmupSteps: Int = 0
    /// The step at which a cosine decay from `learningRate` reaches `learningRate / 10` (and stays); 0 keeps the
    /// learning rate constant. Counted from the run's first step, as nanoGPT's `lr_decay_iters` is.
    public var decaySteps: Int = 0

    public init(steps: Int = 100, batch: Int = 64, learningRate: Float = 2e-3, clip: Float = 5,
                warmupSteps: Int = 0, decaySteps: Int = 0) {
        self.steps = steps
        self.batch = batch
        self.learningRate = learningRate
        self.clip = clip
        self.warmupSteps = warmupSteps
        self.decaySteps = decaySteps
    }

    /// The learning rate of step `step` (1 is the first): `learningRate * step / warmupSteps` during warm-up, then
    /// the cosine from `learningRate` down to `learningRate / 10` at `decaySteps`, then `learningRate / 10`.
    public func learningRate(atStep step: Int) -> Float {
        if step <= warmupSteps { return learningRate * Float(step) / Float(warmupSteps) }
        guard decaySteps > warmupSteps else { return learningRate }
        let minimum = learningRate / 10
        let progress = min(1, Double(step - warmupSteps) / Double(decaySteps - warmupSteps))
        return minimum + Float(0.5 * (1 + cos(Double.pi * progress))) * (learningRate - minimum)
    }

    public func validate() throws {
        guard (1...10_000).contains(steps) else {
            throw CharLMError.invalidSetting(name: "seq", message: "must be between 1 and 10000; got \(steps)")
        }
        guard (1...4096).contains(batch) else {
            throw CharLMError.invalidSetting(name: "batch", message: "must be between 1 and 4096; got \(batch)")
        }
        guard learningRate > 0 && learningRate.isFinite else {
            throw CharLMError.invalidSetting(name: "lr", message: "must be > 0; got \(learningRate)")
        }
        guard clip >= 0 && clip.isFinite else {
            throw CharLMError.invalidSetting(name: "clip", message: "must be >= 0 (0 turns clipping off); got \(clip)")
        }
        guard warmupSteps >= 0 else {
            throw CharLMError.invalidSetting(name: "warmup", message: "must be >= 0 (0 turns it off); got \(warmupSteps)")
        }
        guard decaySteps >= 0 else {
            throw CharLMError.invalidSetting(name: "decay", message: "must be >= 0 (0 keeps lr constant); got \(decaySteps)")
        }
    }
}

/// A validation result in the three usual units.
public struct Evaluation: Equatable, Sendable {
    /// Mean cross-entropy, nats per character.
    public let nats: Double
    /// Characters predicted.
    public let characters: Int
    /// Bits per character.
    public var bits: Double { nats / log(2) }
    /// exp(nats).
    public var perplexity: Double { exp(nats) }
}

/// Mean cross-entropy over the validation split with the standard protocol: non-overlapping windows of T inputs
/// from the split's first token (floor((n-1)/T) of them), a zero state per window, every predicted character counted.
/// Windows run B at a time in `workspace`.
public func evaluate(
    model: CharLSTM, dataset: Dataset, steps T: Int, batch B: Int, workspace: ModelWorkspace
) throws -> Evaluation {
    let windows = dataset.validationWindowCount(steps: T)
    guard windows > 0 else {
        throw CharLMError.corpusTooShort(
            split: "validation", tokens: dataset.validationRange.count, needed: T + 1, seq: T)
    }
    var unused = SeededGenerator(seed: 0)  // inference mode draws nothing
    var total = 0.0
    var first = 0
    while first < windows {
        let count = min(B, windows - first)
        dataset.validationBatch(steps: T, first: first, count: count, inputs: workspace.inputs, targets: workspace.targets)
        model.forward(steps: T, batch: count, workspace: workspace, mode: .inference, generator: &unused)
        total += model.loss(steps: T, batch: count, workspace: workspace, gradient: false) * Double(count * T)
        first += count
    }
    return Evaluation(nats: total / Double(windows * T), characters: windows * T)
}

/// Owns a model, its optimizer and the data, and advances them one step at a time.
public final class Trainer {
    public let model: CharLSTM
    public let optimizer: Adam
    public let dataset: Dataset
    public private(set) var settings: TrainingSettings
    /// Draws batch offsets and dropout masks.
    public var generator: SeededGenerator
    /// Completed training steps.
    public private(set) var step = 0
    /// Training loss of every completed step, in order.
    public private(set) var lossHistory: [Double] = []
    /// Global gradient norm of the latest step, before clipping.
    public private(set) var lastGradientNorm = 0.0
    private var workspace: ModelWorkspace

    public init(model: CharLSTM, dataset: Dataset, settings: TrainingSettings, seed: UInt64) throws {
        try settings.validate()
        try dataset.checkTrainable(steps: settings.steps)
        self.model = model
        self.dataset = dataset
        self.settings = settings
        optimizer = Adam(parameterCount: model.layout.totalCount, settings: AdamSettings(learningRate: settings.learningRate))
        generator = SeededGenerator(seed: seed)
        workspace = model.makeWorkspace(steps: settings.steps, batch: settings.batch)
    }

    /// Training steps that make one pass over the training split's tokens: ceil(n / (B*T)).
    public var stepsPerEpoch: Int {
        let perStep = settings.steps * settings.batch
        return max(1, (dataset.trainRange.count + perStep - 1) / perStep)
    }

    /// One step: sample a batch of B random windows from the training split, then `trainStep(onBatch:)`.
    @discardableResult
    public func trainStep() throws -> Double {
        let (T, B) = (settings.steps, settings.batch)
        dataset.sampleBatch(steps: T, batch: B, generator: &generator, inputs: workspace.inputs, targets: workspace.targets)
        return try trainOnWorkspaceBatch()
    }

    /// One step on a given batch: `inputs[b]` and `targets[b]` are B sequences of T token indices.
    @discardableResult
    public func trainStep(inputs: [[Int]], targets: [[Int]]) throws -> Double {
        let (T, B) = (settings.steps, settings.batch)
        let V = model.config.vocabularySize
        guard inputs.count == B, targets.count == B, (inputs + targets).allSatisfy({ $0.count == T }) else {
            throw CharLMError.invalidSetting(name: "batch", message: "must be \(B) sequences of \(T) tokens")
        }
        for sequence in inputs + targets {
            if let bad = sequence.first(where: { $0 < 0 || $0 >= V }) {
                throw CharLMError.tokenOutOfRange(token: bad, vocabularySize: V)
            }
        }
        for b in 0..<B {
            for t in 0..<T {
                workspace.inputs[t * B + b] = Int32(inputs[b][t])
                workspace.targets[t * B + b] = Int32(targets[b][t])
            }
        }
        return try trainOnWorkspaceBatch()
    }

    /// Forward, loss, backward, clip, Adam on the batch in the workspace. Returns the batch's mean loss (before the
    /// update). A non-finite loss or gradient throws and leaves parameters and optimizer state as they were.
    private func trainOnWorkspaceBatch() throws -> Double {
        let (T, B) = (settings.steps, settings.batch)
        model.forward(steps: T, batch: B, workspace: workspace, mode: .training, generator: &generator)
        let loss = model.loss(steps: T, batch: B, workspace: workspace, gradient: true)
        guard loss.isFinite else { throw CharLMError.nonFiniteLoss(step: step + 1, loss: loss) }
        model.gradients.zero()
        model.backward(steps: T, batch: B, workspace: workspace)
        lastGradientNorm = clipGradientNorm(model.gradients, maxNorm: settings.clip)
        guard lastGradientNorm.isFinite else { throw CharLMError.nonFiniteGradient(step: step + 1) }
        // Nothing has changed the parameters or the optimizer until here.
        optimizer.settings.learningRate = settings.learningRate(atStep: step + 1)
        optimizer.update(parameters: model.parameters, gradients: model.gradients)
        step += 1
        lossHistory.append(loss)
        return loss
    }

    /// Validation loss with the standard protocol, T = `settings.steps`, run B windows at a time.
    public func evaluate() throws -> Evaluation {
        try CharLM.evaluate(model: model, dataset: dataset, steps: settings.steps, batch: settings.batch, workspace: workspace)
    }

    /// Everything needed to resume this run exactly: progress and the optimizer's state.
    public var state: (training: TrainingState, optimizer: OptimizerState) {
        (TrainingState(settings: settings, validationFraction: dataset.validationFraction, step: step,
                       generator: generator, lossHistory: lossHistory),
         OptimizerState(firstMoment: optimizer.firstMoment.array, secondMoment: optimizer.secondMoment.array,
                        stepCount: optimizer.stepCount, settings: optimizer.settings))
    }

    /// Continues a run saved with `state`: the next step draws what it would have drawn had the run not stopped.
    /// Without `optimizer` (a file with only the model) Adam starts afresh.
    public func restore(training: TrainingState, optimizer saved: OptimizerState?) throws {
        try training.settings.validate()
        try dataset.checkTrainable(steps: training.settings.steps)
        if let saved {
            guard saved.firstMoment.count == model.layout.totalCount, saved.secondMoment.count == model.layout.totalCount else {
                throw CharLMError.invalidSetting(name: "optimizer state", message: "does not match the model's size")
            }
            optimizer.restore(firstMoment: saved.firstMoment, secondMoment: saved.secondMoment, stepCount: saved.stepCount)
            optimizer.settings = saved.settings
        }
        if training.settings.steps > workspace.maxSteps || training.settings.batch > workspace.maxBatch {
            workspace = model.makeWorkspace(steps: training.settings.steps, batch: training.settings.batch)
        }
        settings = training.settings
        step = training.step
        generator = training.generator
        lossHistory = training.lossHistory
    }

    /// Applies changed settings (window, batch, learning rate, clip) to the steps that follow.
    public func apply(_ changed: TrainingSettings) throws {
        try changed.validate()
        try dataset.checkTrainable(steps: changed.steps)
        if changed.steps > workspace.maxSteps || changed.batch > workspace.maxBatch {
            workspace = model.makeWorkspace(steps: changed.steps, batch: changed.batch)
        }
        settings = changed
    }
}
