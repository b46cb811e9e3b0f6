// What a run's validations say, for a user who leaves training running: the best parameters so far (one flat copy,
// replaced whenever validation improves), how many validations have passed since the last improvement (early
// stopping), and whether the model has begun to memorise its training text (overfitting). No I/O: the training run
// (TrainingRun.swift) reports what it finds, and the shell decides what to say.

import Foundation

/// The parameters of the lowest validation loss so far, kept as one flat copy of the parameter buffer. Adam's moments
/// are not kept: restoring the best restarts the optimizer.
public final class BestParameters {
    /// The step after which the kept parameters were validated.
    public private(set) var step: Int
    /// Their validation loss, nats per character.
    public private(set) var loss: Double
    /// The window length T and validation share the loss was measured with: losses measured otherwise are not compared
    /// with it.
    public private(set) var protocolKey: ValidationProtocol
    /// The copy, in `RecurrentLayout` order.
    public let values: FloatBuffer

    init(step: Int, loss: Double, protocolKey: ValidationProtocol, copying parameters: FloatBuffer) {
        self.step = step
        self.loss = loss
        self.protocolKey = protocolKey
        values = FloatBuffer(count: parameters.count)
        values.copy(from: parameters)
    }

    func replace(step: Int, loss: Double, protocolKey: ValidationProtocol, copying parameters: FloatBuffer) {
        self.step = step
        self.loss = loss
        self.protocolKey = protocolKey
        values.copy(from: parameters)
    }
}

/// What a validation loss was measured with: losses are comparable only when both match.
public struct ValidationProtocol: Equatable, Sendable {
    /// T: the window length.
    public var sequenceLength: Int
    /// The share of the corpus held out.
    public var validationFraction: Double

    public init(sequenceLength: Int, validationFraction: Double) {
        self.sequenceLength = sequenceLength
        self.validationFraction = validationFraction
    }
}

/// Watches the validations of one model's training: keeps the best parameters and counts validations without
/// improvement.
public final class RunWatch {
    /// The best so far, or nil before the first validation.
    public private(set) var best: BestParameters?
    /// Validations since the best improved (0 right after an improvement).
    public private(set) var validationsSinceImprovement = 0

    public init() {}

    /// Records a validation of `parameters` after `step`. When it is the lowest loss so far (or the first measured
    /// with this protocol), the parameters are copied and true is returned. The copy's memory is checked first
    /// (`MemoryBudget`): when it does not fit, nothing is kept and the error says so.
    @discardableResult
    public func record(step: Int, loss: Double, protocolKey: ValidationProtocol, parameters: FloatBuffer) throws -> Bool {
        guard loss.isFinite else { return false }
        if let best, best.protocolKey == protocolKey, best.values.count == parameters.count {
            guard loss < best.loss else {
                validationsSinceImprovement += 1
                return false
            }
            best.replace(step: step, loss: loss, protocolKey: protocolKey, copying: parameters)
        } else {
            try MemoryBudget.check(Double(parameters.count) * 4, for: "a copy of the best parameters",
                                   hint: "`set hidden` smaller and `reset`")
            best = BestParameters(step: step, loss: loss, protocolKey: protocolKey, copying: parameters)
        }
        validationsSinceImprovement = 0
        return true
    }

    /// Starts counting validations without improvement afresh (a new `train until`).
    public func restartPatience() { validationsSinceImprovement = 0 }

    /// Whether the sign of overfitting was given for this model (it is given once).
    public private(set) var overfittingNoted = false

    /// The sign of overfitting in these histories the first time it shows for this model, else nil.
    func noteOverfitting(validationHistory: [ValidationPoint], lossHistory: [Double], lastStep: Int) -> OverfittingSign? {
        guard !overfittingNoted,
              let sign = OverfittingSign.detect(validationHistory: validationHistory, lossHistory: lossHistory,
                                                lastStep: lastStep) else { return nil }
        overfittingNoted = true
        return sign
    }
}

/// The sign of overfitting: validation loss rose at two validations in a row while the training loss fell over the
/// same steps.
public struct OverfittingSign: Equatable, Sendable {
    /// The last three validations, oldest first, each higher than the one before.
    public let validations: [ValidationPoint]
    /// Mean training loss over the steps just before the first and the last of them.
    public let trainingBefore: Double
    public let trainingAfter: Double

    /// Training losses averaged before a validation: the steps since the validation before it, at most this many.
    static let trainingWindow = 50

    /// The sign in these histories, or nil. The last of `lossHistory` is the loss of step `lastStep` (default: the
    /// history is complete, its count), the one before it of the step before, and so on.
    public static func detect(validationHistory: [ValidationPoint], lossHistory: [Double], lastStep: Int? = nil) -> OverfittingSign? {
        guard validationHistory.count >= 3 else { return nil }
        let last = Array(validationHistory.suffix(3))
        guard last[0].step < last[1].step, last[1].step < last[2].step,
              last[0].loss < last[1].loss, last[1].loss < last[2].loss else { return nil }
        let before = validationHistory.count >= 4 ? validationHistory[validationHistory.count - 4].step : 0
        let offset = (lastStep ?? lossHistory.count) - lossHistory.count  // the step before the history's first
        guard let early = meanTrainingLoss(lossHistory, endingAt: last[0].step - offset, after: before - offset),
              let late = meanTrainingLoss(lossHistory, endingAt: last[2].step - offset, after: last[1].step - offset),
              late < early else { return nil }
        return OverfittingSign(validations: last, trainingBefore: early, trainingAfter: late)
    }

    /// Mean loss of the entries after index `after` - 1 up to index `end` - 1 (at most `trainingWindow` of them);
    /// nil when none is known.
    private static func meanTrainingLoss(_ losses: [Double], endingAt end: Int, after: Int) -> Double? {
        let end = min(end, losses.count)
        let start = max(after, end - trainingWindow, 0)
        guard end > start else { return nil }
        return losses[start..<end].reduce(0, +) / Double(end - start)
    }
}
