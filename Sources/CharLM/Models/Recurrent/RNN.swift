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

/// A vanilla RNN layer. Both biases enter the pre-activation unchanged (`TypedRecurrentLayer.projectionBias`); it
/// keeps no buffers beyond those every kind has.
struct RNNLayer: TypedRecurrentLayer {
    let views: RecurrentLayerViews

    /// Forward through T steps from h_0 in slot 0 of `activations`, whose `projection` holds each step's input
    /// projection on entry: the recurrent product is added to it, then tanh.
    func forward(weights: LayerWeights, activations: LayerActivations<RNNLayer>, length T: Int, batch B: Int,
                 refreshWeights: Bool, context: ComputeContext) {
        let H = views.hiddenSize
        forwardThroughTime(
            weightHH: weights.weightHH, buffers: activations.loop,
            product: { activations.projection(at: $0, batch: B) }, accumulate: true, length: T, batch: B,
            refreshWeights: refreshWeights, context: context
        ) { t, rows, units in
            let offset = rows.lowerBound * H
            rnnCellForward(preactivations: activations.projection(at: t, batch: B) + offset,
                           hidden: activations.loop.hidden(at: t + 1, batch: B) + offset, batch: rows.count,
                           hiddenSize: H, units: units)
        }
    }

    /// Backward through T steps, the mirror of `forward`. Leaves dLoss/d(pre-activations) in
    /// `activations.projection` and accumulates dW_hh, db_ih and db_hh into `gradients`.
    func backward(weights: LayerWeights, gradients: LayerWeights, activations: LayerActivations<RNNLayer>,
                  length T: Int, batch B: Int, outputGradient: UnsafePointer<Float>, context: ComputeContext) {
        let H = views.hiddenSize
        let dHiddenNext = UnsafePointer(activations.loop.hiddenNext.pointer)
        backwardThroughTime(
            weightHH: weights.weightHH, weightHHGradient: gradients.weightHH, buffers: activations.loop,
            productGradient: activations.projection.pointer, accumulate: false, length: T, batch: B,
            context: context
        ) { t, rows, units in
            let offset = rows.lowerBound * H
            rnnCellBackward(preactivations: activations.projection(at: t, batch: B) + offset,
                            outputGradient: outputGradient + t * B * H + offset, hiddenGradient: dHiddenNext + offset,
                            batch: rows.count, hiddenSize: H, units: units)
        }
        // Both biases enter the pre-activation unchanged, so each gets the column sums of da.
        addColumnSums(of: activations.projection.pointer, rows: T * B, buffers: activations.loop,
                      into: [gradients.biasIH, gradients.biasHH], context: context)
    }
}
