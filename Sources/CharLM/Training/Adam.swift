// Gradient clipping and the Adam optimizer, each a single loop over the flat buffers. Semantics follow PyTorch's
// `torch.nn.utils.clip_grad_norm_`, `torch.optim.Adam` and, with a weight decay, `torch.optim.AdamW` (decoupled
// decay on the ranges the family's parameter table flags: the transformer's every tensor of 2+ dimensions, embeddings
// included, as nanoGPT groups them; the recurrent families' weight matrices, not their embedding). No amsgrad.

import Foundation

/// Scales `gradients` so their global L2 norm is at most `maxNorm` (PyTorch: coefficient maxNorm / (norm + 1e-6),
/// applied only when below 1). Returns the norm before clipping. `maxNorm` <= 0 disables clipping.
///
/// The sum of squares is in double precision, in blocks of `clipBlock` gradients (each on 8 double lanes), the
/// blocks' sums added in order: the same bits whatever the size of `context`'s team, which shares the blocks out
/// (nil: the calling thread alone).
@discardableResult
public func clipGradientNorm(_ gradients: FloatBuffer, maxNorm: Float, context: ComputeContext? = nil) -> Double {
    let team = context?.team ?? .solo
    let g = gradients.pointer
    let count = gradients.count
    let blocks = (count + clipBlock - 1) / clipBlock
    var blockSums = [Double](repeating: 0, count: blocks)
    blockSums.withUnsafeMutableBufferPointer { sums in
        team.runParts(work: count) { member in
            for block in member.share(of: blocks) {
                let start = block * clipBlock
                var squares = SIMD8<Double>()
                forEachGroup(min(clipBlock, count - start)) { offset, lanes in
                    let values = load(g + start + offset, lanes: lanes)
                    let (low, high) = (SIMD8<Double>(values.lowHalf), SIMD8<Double>(values.highHalf))
                    squares += low * low + high * high
                }
                sums[block] = squares.sum()
            }
        }
    }
    let norm = blockSums.reduce(0, +).squareRoot()
    if maxNorm > 0 && norm.isFinite {
        let coefficient = Double(maxNorm) / (norm + 1e-6)
        if coefficient < 1 {
            let scale = Float(coefficient)
            team.runParts(work: count) { member in
                let part = member.share(of: blocks)
                let range = min(count, part.lowerBound * clipBlock)..<min(count, part.upperBound * clipBlock)
                forEachGroup(range.count) { offset, lanes in
                    let pointer = g + range.lowerBound + offset
                    store(load(pointer, lanes: lanes) * scale, pointer, lanes: lanes)
                }
            }
        }
    }
    return norm
}

/// Gradients per block of `clipGradientNorm`'s sum (a multiple of 16).
let clipBlock = 4096

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

    /// One update of `parameters` from `gradients`. The team of `context` (nil: the calling thread alone) shares the
    /// parameters out in groups of 16; each parameter's update is its own, so the bits are the same whatever its size.
    public func update(parameters: FloatBuffer, gradients: FloatBuffer, context: ComputeContext? = nil) {
        let team = context?.team ?? .solo
        precondition(parameters.count == firstMoment.count && gradients.count == firstMoment.count)
        stepCount += 1
        let (beta1, beta2, epsilon) = (settings.beta1, settings.beta2, settings.epsilon)
        let correction1 = 1 - pow(Double(beta1), Double(stepCount))
        let correction2 = 1 - pow(Double(beta2), Double(stepCount))
        let stepSize = Float(Double(settings.learningRate) / correction1)
        let rootCorrection2 = Float(correction2.squareRoot())
        let p = parameters.pointer, g = gradients.pointer
        let m = firstMoment.pointer, v = secondMoment.pointer
        let keep = settings.weightDecay > 0 ? 1 - settings.learningRate * settings.weightDecay : 1
        let count = parameters.count
        let groupCount = (count + Lanes.scalarCount - 1) / Lanes.scalarCount
        team.runParts(work: count * 4) { member in
            let groups = member.share(of: groupCount)
            let width = Lanes.scalarCount
            let part = min(count, groups.lowerBound * width)..<min(count, groups.upperBound * width)
            if part.isEmpty { return }
            // AdamW: the decay is decoupled from the gradient (it never enters m or v), applied first as PyTorch does.
            if keep != 1 {
                for range in decayedRanges {
                    let decayed = range.clamped(to: part)
                    forEachGroup(decayed.count) { offset, lanes in
                        let pointer = p + decayed.lowerBound + offset
                        store(load(pointer, lanes: lanes) * keep, pointer, lanes: lanes)
                    }
                }
            }
            // 16 parameters at a time (VectorMath.swift), a last partial group on zero-padded lanes.
            forEachGroup(part.count) { offset, lanes in
                let index = part.lowerBound + offset
                let gradient = load(g + index, lanes: lanes)
                let moment = beta1 * load(m + index, lanes: lanes) + (1 - beta1) * gradient
                let squares = beta2 * load(v + index, lanes: lanes) + (1 - beta2) * gradient * gradient
                let denominator = squares.squareRoot() / rootCorrection2 + epsilon
                store(moment, m + index, lanes: lanes)
                store(squares, v + index, lanes: lanes)
                store(load(p + index, lanes: lanes) - stepSize * moment / denominator, p + index, lanes: lanes)
            }
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
