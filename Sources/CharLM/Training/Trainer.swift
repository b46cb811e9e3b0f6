// Training: batches -> model -> loss -> gradients -> clipping -> Adam -> parameters, one step at a time, for any
// model family behind the model interface (Models/LanguageModel.swift). The validation protocol is Evaluation.swift;
// a whole `train` run (validations, keep-best, autosave, log) is TrainingRun.swift. No terminal I/O.

import Foundation

/// The settings of a training run that are not part of the architecture.
public struct TrainingSettings: Equatable, Sendable {
    /// T: characters per training window (the `seq` setting).
    public var sequenceLength: Int
    /// B: windows per batch.
    public var batch: Int
    public var learningRate: Float
    /// Global gradient-norm limit; 0 disables clipping.
    public var clip: Float
    /// Steps of linear learning-rate warm-up from 0 to `learningRate`; 0 for none.
    public var warmupSteps: Int
    /// The step at which a cosine decay from `learningRate` reaches `learningRate / 10` (and stays); 0 keeps the
    /// learning rate constant. Counted from the run's first step, as nanoGPT's `lr_decay_iters` is.
    public var decaySteps: Int
    /// AdamW's decoupled weight decay on the weight matrices (0: plain Adam).
    public var weightDecay: Float

    /// Each default is its setting's (SettingDeclarations.swift).
    public init(sequenceLength: Int = Setting.seq.defaultInteger, batch: Int = Setting.batch.defaultInteger,
                learningRate: Float = Setting.lr.defaultFloat, clip: Float = Setting.clip.defaultFloat,
                warmupSteps: Int = Setting.warmup.defaultInteger, decaySteps: Int = Setting.decay.defaultInteger,
                weightDecay: Float = Setting.wd.defaultFloat) {
        self.sequenceLength = sequenceLength
        self.batch = batch
        self.learningRate = learningRate
        self.clip = clip
        self.warmupSteps = warmupSteps
        self.decaySteps = decaySteps
        self.weightDecay = weightDecay
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

    /// Throws `outOfRange` for a value outside its setting's declaration (SettingDeclarations.swift).
    public func validate() throws {
        try Setting.seq.check(sequenceLength)
        try Setting.batch.check(batch)
        try Setting.lr.check(learningRate)
        try Setting.clip.check(clip)
        try Setting.warmup.check(warmupSteps)
        try Setting.decay.check(decaySteps)
        try Setting.wd.check(weightDecay)
        // AdamW multiplies each weight by 1 - lr wd every step: at 1 or more that zeroes or flips every weight.
        guard Double(learningRate) * Double(weightDecay) < 1 else {
            throw CharLMError.outOfRange(setting: "wd", rule: "below 1/lr (\(formatSettingNumber(1 / Double(learningRate))) with lr "
                                            + "\(formatSettingNumber(learningRate))), as each step multiplies the weights by 1 - lr x wd",
                                         got: formatSettingNumber(weightDecay))
        }
    }
}

/// One validation during training: after which step, and the loss in nats per character.
public struct ValidationPoint: Equatable, Sendable {
    public var step: Int
    public var loss: Double

    public init(step: Int, loss: Double) {
        self.step = step
        self.loss = loss
    }
}

/// The parts of a training step, in order, as `Trainer.onPhase` reports them.
public enum TrainingPhase: CaseIterable, Sendable {
    /// B random windows gathered into the workspace.
    case batch
    case forward
    /// Cross-entropy and its gradient with respect to the logits.
    case loss
    case backward
    /// The global gradient norm, and clipping to `clip`.
    case clip
    /// Adam's update of the parameters.
    case update
}

/// Owns a model, its optimizer and the data, and advances them one step at a time.
public final class Trainer {
    /// The most steps a run may count (a checkpoint may hold no more): training one step a microsecond would take
    /// eleven days to reach it, and every figure derived from it stays far from overflowing.
    public static let maximumStep = 1_000_000_000_000

    public let model: any TrainableLanguageModel
    public let optimizer: Adam
    public let dataset: Dataset
    public private(set) var settings: TrainingSettings
    /// Draws batch offsets and dropout masks.
    public var generator: SeededGenerator
    /// Completed training steps.
    public private(set) var step = 0
    /// Training loss of the latest completed steps, in order, the last being step `step`'s: every step up to
    /// `maximumLossHistory`, then the latest ones (between that and 1.5 times that, so memory and a checkpoint's
    /// header stay bounded: about 22 bytes a loss in the file, whose header may hold 100 MB).
    public private(set) var lossHistory: [Double] = []
    public static let maximumLossHistory = 1_000_000
    /// Every validation `validate()` ran, in order.
    public private(set) var validationHistory: [ValidationPoint] = []
    /// Global gradient norm of the latest step, before clipping.
    public private(set) var lastGradientNorm = 0.0
    /// Called as each phase of a step ends (profiling); nil costs nothing.
    public var onPhase: ((TrainingPhase) -> Void)?
    /// The buffers of the steps' forward and backward passes, and of validation.
    private var workspace: ModelPass

    public init(model: any TrainableLanguageModel, dataset: Dataset, settings: TrainingSettings, seed: UInt64,
                context: ComputeContext = .machine) throws {
        try settings.validate()
        try model.architecture.checkLength(settings.sequenceLength)
        try dataset.checkTrainable(length: settings.sequenceLength)
        try MemoryBudget.checkTraining(model.architecture, length: settings.sequenceLength, batch: settings.batch,
                                       withOptimizer: true)
        self.model = model
        self.dataset = dataset
        self.settings = settings
        let table = model.architecture.parameters
        optimizer = Adam(parameterCount: table.totalCount,
                         settings: AdamSettings(learningRate: settings.learningRate, weightDecay: settings.weightDecay),
                         decayedRanges: table.decayedRanges)
        generator = SeededGenerator(seed: seed)
        workspace = model.makePass(length: settings.sequenceLength, batch: settings.batch, context: context)
    }

    /// The threads and kernels the steps run on.
    public var context: ComputeContext { workspace.context }

    /// Training steps that make one pass over the training split's tokens: ceil(n / (B*T)).
    public var stepsPerEpoch: Int {
        let perStep = settings.sequenceLength * settings.batch
        return max(1, (dataset.trainRange.count + perStep - 1) / perStep)
    }

    /// One step: sample a batch of B random windows from the training split, then `trainStep(onBatch:)`.
    @discardableResult
    public func trainStep() throws -> Double {
        let (T, B) = (settings.sequenceLength, settings.batch)
        dataset.sampleBatch(length: T, batch: B, generator: &generator, inputs: workspace.inputs, targets: workspace.targets)
        onPhase?(.batch)
        return try trainOnWorkspaceBatch()
    }

    /// One step on a given batch: `inputs[b]` and `targets[b]` are B sequences of T token indices.
    @discardableResult
    public func trainStep(inputs: [[Int]], targets: [[Int]]) throws -> Double {
        let (T, B) = (settings.sequenceLength, settings.batch)
        let V = model.vocabularySize
        guard inputs.count == B, targets.count == B, (inputs + targets).allSatisfy({ $0.count == T }) else {
            throw CharLMError.batchShapeMismatch(sequences: B, length: T)
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
        onPhase?(.batch)
        return try trainOnWorkspaceBatch()
    }

    /// Forward, loss, backward, clip, Adam on the batch in the workspace. Returns the batch's mean loss (before the
    /// update). A non-finite loss or gradient throws and leaves parameters and optimizer state as they were.
    private func trainOnWorkspaceBatch() throws -> Double {
        let (T, B) = (settings.sequenceLength, settings.batch)
        guard step < Self.maximumStep, optimizer.stepCount < Self.maximumStep else {
            throw CharLMError.tooLarge(what: "the step count", value: String(max(step, optimizer.stepCount)),
                                       maximum: String(Self.maximumStep))
        }
        workspace.forward(length: T, batch: B, mode: .training, generator: &generator)
        onPhase?(.forward)
        let loss = workspace.loss(length: T, batch: B, vocabularySize: model.vocabularySize, gradient: true)
        guard loss.isFinite else { throw CharLMError.nonFiniteLoss(step: step + 1, loss: loss) }
        onPhase?(.loss)
        model.gradients.zero(team: context.team)
        workspace.backward(length: T, batch: B)
        onPhase?(.backward)
        lastGradientNorm = clipGradientNorm(model.gradients, maxNorm: settings.clip, context: context)
        guard lastGradientNorm.isFinite else { throw CharLMError.nonFiniteGradient(step: step + 1) }
        onPhase?(.clip)
        // Nothing has changed the parameters or the optimizer until here.
        optimizer.settings.learningRate = settings.learningRate(atStep: step + 1)
        optimizer.settings.weightDecay = settings.weightDecay
        optimizer.update(parameters: model.parameters, gradients: model.gradients, context: context)
        // Finite gradients can still make an infinite parameter (an optimizer state from a damaged file, say): stop
        // here rather than train, evaluate and save a broken model.
        if let index = model.parameters.firstNonFinite() { throw CharLMError.nonFiniteParameters(step: step + 1, index: index) }
        step += 1
        lossHistory.append(loss)
        if lossHistory.count > Self.maximumLossHistory * 3 / 2 {
            lossHistory.removeFirst(lossHistory.count - Self.maximumLossHistory)
        }
        onPhase?(.update)
        return loss
    }

    /// Validation loss with the standard protocol (Evaluation.swift), T = `settings.sequenceLength`, run B windows
    /// at a time; `progress` gets the share done after each batch of windows.
    public func evaluate(cancellation: Cancellation = .never, progress: (Double) -> Void = { _ in }) throws -> Evaluation {
        try CharLM.evaluate(scorer: workspace, dataset: dataset, length: settings.sequenceLength, batch: settings.batch,
                            cancellation: cancellation, progress: progress)
    }

    /// `evaluate()`, recorded in `validationHistory` at the current step.
    @discardableResult
    public func validate(cancellation: Cancellation = .never, progress: (Double) -> Void = { _ in }) throws -> Evaluation {
        let evaluation = try evaluate(cancellation: cancellation, progress: progress)
        guard evaluation.nats.isFinite else { throw CharLMError.nonFiniteValidation(step: step) }
        validationHistory.append(ValidationPoint(step: step, loss: evaluation.nats))
        return evaluation
    }

    /// Everything needed to resume this run exactly: progress and the optimizer's state.
    public var state: (training: TrainingState, optimizer: OptimizerState) {
        (TrainingState(settings: settings, validationFraction: dataset.validationFraction, step: step,
                       generator: generator, lossHistory: lossHistory, validationHistory: validationHistory),
         OptimizerState(firstMoment: optimizer.firstMoment.array, secondMoment: optimizer.secondMoment.array,
                        stepCount: optimizer.stepCount, settings: optimizer.settings))
    }

    /// Continues a run saved with `state`: the next step draws what it would have drawn had the run not stopped.
    /// Without `optimizer` (a file with only the model) Adam starts afresh.
    public func restore(training: TrainingState, optimizer saved: OptimizerState?) throws {
        try training.settings.validate()
        try model.architecture.checkLength(training.settings.sequenceLength)
        try dataset.checkTrainable(length: training.settings.sequenceLength)
        if let saved {
            let count = model.parameters.count
            guard saved.firstMoment.count == count, saved.secondMoment.count == count else {
                throw CharLMError.optimizerStateMismatch
            }
            optimizer.restore(firstMoment: saved.firstMoment, secondMoment: saved.secondMoment, stepCount: saved.stepCount)
            optimizer.settings = saved.settings
        }
        try resizeWorkspace(for: training.settings)
        settings = training.settings
        step = training.step
        generator = training.generator
        lossHistory = Array(training.lossHistory.suffix(Self.maximumLossHistory * 3 / 2))
        validationHistory = training.validationHistory
    }

    /// Applies changed settings (window, batch, learning rate, clip) to the steps that follow.
    public func apply(_ changed: TrainingSettings) throws {
        try changed.validate()
        try dataset.checkTrainable(length: changed.sequenceLength)
        try resizeWorkspace(for: changed)
        settings = changed
    }

    /// A larger workspace when `settings` needs one (on the same compute context), if it fits in memory.
    private func resizeWorkspace(for settings: TrainingSettings) throws {
        try model.architecture.checkLength(settings.sequenceLength)
        if !workspace.fits(length: settings.sequenceLength, batch: settings.batch) {
            try MemoryBudget.checkTraining(model.architecture, length: settings.sequenceLength, batch: settings.batch,
                                           withOptimizer: false)
            workspace = model.makePass(length: settings.sequenceLength, batch: settings.batch, context: workspace.context)
        }
    }
}
