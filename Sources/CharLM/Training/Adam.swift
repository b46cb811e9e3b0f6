// Gradient clipping and the Adam optimizer, each a single loop over the flat buffers. Semantics follow PyTorch's
// `torch.nn.utils.clip_grad_norm_`, `torch.optim.Adam` and, with a weight decay, `torch.optim.AdamW` (decoupled
// decay on the ranges the family's parameter table flags: the transformer's every tensor of 2+ dimensions, embeddings
// included, as nanoGPT groups them; the recurrent families' weight matrices, not their embedding). No amsgrad.

import Foundation

/// Scales `gradients` so their global L2 norm is at most `maxNorm` (PyTorch: coefficient maxNorm / (norm + 1e-6),
/// applied only when below 1). Returns the norm before clipping. `maxNorm` <= 0 disables clipping.
@discardableResult
public func clipGradientNorm(_ gradients: FloatBuffer, maxNorm: Float) -> Double {
    let g = gradients.pointer
    var sumOfSquares = 0.0
    for index in 0..<gradients.count { sumOfSquares += Double(g[index]) * Double(g[index]) }
    let norm = sumOfSquares.squareRoot()
    if maxNorm > 0 && norm.isFinite {
        let coefficient = Double(maxNorm) / (norm + 1e-6)
        if coefficient < 1 {
            let scale = Float(coefficient)
            for index in 0..<gradients.count { g[index] *= scale }
        }
    }
    return norm
}

/// Adam's hyper-parameters.
public struct AdamSettings: Equatable, Sendable {
    public var learningRate: Float
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    /// AdamW's decoupled weight decay (0: plain Adam): before each update, every decayed parameter is multiplied by
    /// 1 - lr * weightDecay.
    public var weightDecay: Float
    /// The learning rate's and weight decay's defaults are the `lr` and `wd` settings' (SettingDeclarations.swift).
    public init(learningRate: Float = Setting.lr.defaultFloat, weightDecay: Float = Setting.wd.defaultFloat) {
        self.learningRate = learningRate
        self.weightDecay = weightDecay
    }
}

/// Adam with bias correction, over one flat parameter buffer:
///   p *= 1 - lr wd                         (AdamW, only in `decayedRanges`; wd 0 skips it)
///   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
///   p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
public final class Adam {
    public var settings: AdamSettings
    /// The parts of the flat buffer weight decay applies to: the weight matrices (`RecurrentLayout.decayedRanges`).
    public let decayedRanges: [Range<Int>]
    /// First moment, same layout as the parameters.
    public let firstMoment: FloatBuffer
    /// Second moment, same layout as the parameters.
    public let secondMoment: FloatBuffer
    /// Updates applied so far (t in the formula).
    public private(set) var stepCount = 0

    public init(parameterCount: Int, settings: AdamSettings, decayedRanges: [Range<Int>] = []) {
        precondition(decayedRanges.allSatisfy { $0.lowerBound >= 0 && $0.upperBound <= parameterCount })
        self.settings = settings
        self.decayedRanges = decayedRanges
        firstMoment = FloatBuffer(count: parameterCount)
        secondMoment = FloatBuffer(count: parameterCount)
    }

    /// One update of `parameters` from `gradients`.
    public func update(parameters: FloatBuffer, gradients: FloatBuffer) {
        precondition(parameters.count == firstMoment.count && gradients.count == firstMoment.count)
        stepCount += 1
        let (beta1, beta2, epsilon) = (settings.beta1, settings.beta2, settings.epsilon)
        let correction1 = 1 - pow(Double(beta1), Double(stepCount))
        let correction2 = 1 - pow(Double(beta2), Double(stepCount))
        let stepSize = Float(Double(settings.learningRate) / correction1)
        let rootCorrection2 = Float(correction2.squareRoot())
        let p = parameters.pointer, g = gradients.pointer
        let m = firstMoment.pointer, v = secondMoment.pointer
        // AdamW: the decay is decoupled from the gradient (it never enters m or v), applied first as PyTorch does.
        if settings.weightDecay > 0 {
            let keep = 1 - settings.learningRate * settings.weightDecay
            for range in decayedRanges { for index in range { p[index] *= keep } }
        }
        // 16 parameters at a time (VectorMath.swift), the last partial group on zero-padded copies.
        func update(_ gradient: Lanes, _ moment: Lanes, _ squares: Lanes, _ parameter: Lanes) -> (Lanes, Lanes, Lanes) {
            let newMoment = beta1 * moment + (1 - beta1) * gradient
            let newSquares = beta2 * squares + (1 - beta2) * gradient * gradient
            let denominator = newSquares.squareRoot() / rootCorrection2 + epsilon
            return (newMoment, newSquares, parameter - stepSize * newMoment / denominator)
        }
        let (full, tailStart, tail) = groups(parameters.count)
        for index in full {
            let (newM, newV, newP) = update(load(g + index), load(m + index), load(v + index), load(p + index))
            store(newM, m + index); store(newV, v + index); store(newP, p + index)
        }
        if tail > 0 {
            let index = tailStart
            let (newM, newV, newP) = update(loadPartial(g + index, tail), loadPartial(m + index, tail),
                                            loadPartial(v + index, tail), loadPartial(p + index, tail))
            storePartial(newM, m + index, tail); storePartial(newV, v + index, tail); storePartial(newP, p + index, tail)
        }
    }

    /// Forgets the moments and the step count: the next update is a fresh optimizer's first.
    public func restart() {
        firstMoment.zero()
        secondMoment.zero()
        stepCount = 0
    }

    /// Restores moments and step count (checkpoint resume).
    public func restore(firstMoment m: [Float], secondMoment v: [Float], stepCount: Int) {
        precondition(m.count == firstMoment.count && v.count == secondMoment.count)
        firstMoment.copy(from: FloatBuffer(m))
        secondMoment.copy(from: FloatBuffer(v))
        self.stepCount = stepCount
    }
}
