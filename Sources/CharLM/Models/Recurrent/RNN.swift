// One vanilla RNN layer over a whole sequence (PyTorch's nn.RNN with tanh, one layer of it): forward and backward
// through time, side by side. The model computes the input projection for every step before the time loop
// (Layer.swift); the loop is Recurrence.swift's; the element-wise cell is in GateKernels.swift. Shape letters as in
// LSTM.swift.
//
// The cell: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh). No gates and no separate memory: the gradient
// reaching h_{t-1} passes through W_hh and tanh' at every step, which is why it vanishes (or explodes) over long
// spans where the LSTM's and the GRU's additive paths carry it.
//
// Memory: a layer keeps h_t twice, as the activation (T, B, H), which backward overwrites with its gradient, and as
// the hidden states (T+1, B, H) the next step and the layer above read.

import Foundation

/// A vanilla RNN layer.
struct RNNLayer: RecurrentLayer {
    let views: RecurrentLayerViews

    /// b_ih + b_hh: both enter the pre-activation unchanged.
    func projectionBias(_ parameters: FloatBuffer, into row: UnsafeMutablePointer<Float>) {
        let weights = LayerWeights(views, in: parameters)
        for j in 0..<views.hiddenSize { row[j] = weights.biasIH[j] + weights.biasHH[j] }
    }

    func makeActivations(length T: Int, batch B: Int) -> RecurrentActivations {
        RNNActivations(hiddenSize: views.hiddenSize, length: T, batch: B)
    }

    /// Forward through T steps from h_0 in slot 0 of `activations`, whose `preactivations` hold each step's input
    /// projection on entry: the recurrent product is added to them, then tanh.
    func forward(parameters: FloatBuffer, activations: RecurrentActivations, length T: Int, batch B: Int,
                 refreshWeights: Bool, context: ComputeContext) {
        let weights = LayerWeights(views, in: parameters)
        let activations = activations as! RNNActivations
        let H = views.hiddenSize
        forwardThroughTime(
            weightHH: weights.weightHH, buffers: activations.loop,
            product: { activations.preactivations(at: $0, batch: B) }, accumulate: true, length: T, batch: B,
            refreshWeights: refreshWeights, context: context
        ) { t, rows in
            let offset = rows.lowerBound * H
            rnnCellForward(preactivations: activations.preactivations(at: t, batch: B) + offset,
                           hidden: activations.loop.hidden(at: t + 1, batch: B) + offset, batch: rows.count,
                           hiddenSize: H)
        }
    }

    /// Backward through T steps, the mirror of `forward`. Leaves dLoss/d(pre-activations) in
    /// `activations.preactivations` and accumulates dW_hh, db_ih and db_hh into `gradients`.
    func backward(parameters: FloatBuffer, gradients: FloatBuffer, activations: RecurrentActivations, length T: Int,
                  batch B: Int, outputGradient: UnsafePointer<Float>, context: ComputeContext) {
        let (weights, dWeights) = (LayerWeights(views, in: parameters), LayerWeights(views, in: gradients))
        let activations = activations as! RNNActivations
        let H = views.hiddenSize
        let dHiddenNext = UnsafePointer(activations.loop.hiddenNext.pointer)
        backwardThroughTime(
            weightHH: weights.weightHH, weightHHGradient: dWeights.weightHH, buffers: activations.loop,
            productGradient: activations.preactivations.pointer, accumulate: false, length: T, batch: B,
            context: context
        ) { t, rows in
            let offset = rows.lowerBound * H
            rnnCellBackward(preactivations: activations.preactivations(at: t, batch: B) + offset,
                            outputGradient: outputGradient + t * B * H + offset, hiddenGradient: dHiddenNext + offset,
                            batch: rows.count, hiddenSize: H)
        }
        // Both biases enter the pre-activation unchanged, so each gets the column sums of da.
        addColumnSums(of: activations.preactivations.pointer, rows: T * B, buffers: activations.loop,
                      into: [dWeights.biasIH, dWeights.biasHH], context: context)
    }
}

/// What one RNN layer keeps from its forward pass for the backward pass, sized for up to T*B rows.
final class RNNActivations: RecurrentActivations {
    /// H.
    let hiddenSize: Int
    /// (T, B, H) the input projection before the forward pass, h_t after it, dLoss/d(pre-activation) after the
    /// backward pass.
    let preactivations: FloatBuffer
    /// Hidden states, packed W_hh and backward's scratch (Recurrence.swift).
    let loop: TimeLoopBuffers

    init(hiddenSize H: Int, length T: Int, batch B: Int) {
        hiddenSize = H
        preactivations = FloatBuffer(count: T * B * H)
        loop = TimeLoopBuffers(hiddenSize: H, width: H, length: T, batch: B)
    }

    /// Step t's (B, H) block of `preactivations`.
    func preactivations(at t: Int, batch B: Int) -> UnsafeMutablePointer<Float> {
        preactivations.pointer + t * B * hiddenSize
    }

    // RecurrentActivations
    var projection: FloatBuffer { preactivations }
    func outputs(batch B: Int) -> UnsafeMutablePointer<Float> { loop.hidden(at: 1, batch: B) }
    func resetState(batch B: Int) { loop.resetHidden(batch: B) }
    func carryState(length T: Int, batch B: Int) { loop.carryHidden(length: T, batch: B) }
    /// No separate memory: `cells` shows h.
    func memory(at t: Int, batch B: Int) -> UnsafeBufferPointer<Float> { loop.hiddenState(at: t, batch: B) }
    func hiddenState(at t: Int, batch B: Int) -> UnsafeBufferPointer<Float> { loop.hiddenState(at: t, batch: B) }
}
