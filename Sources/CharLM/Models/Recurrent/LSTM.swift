// One LSTM layer over a whole sequence: forward and backward through time, side by side. The model
// (RecurrentModel.swift) computes the input projection x_t W_ih^T + b_ih + b_hh for every step before the time loop
// (Layer.swift says who does what); this file runs the recurrence.
//
// Shape letters, used throughout the package:
//   V vocabulary size, E embedding width, H hidden width, L layers, T time steps, B batch size.
// Every sequence buffer is time-major: row (t, b) of a (T, B, X) buffer starts at (t * B + b) * X, so the B rows of
// one time step are contiguous and "all T steps" is one (T*B, X) matrix. That lets the input projection of every
// step be a single matrix product (or, for layer 0, a row lookup: see RecurrentModel.swift); only h_{t-1} * W_hh^T
// stays inside the time loop (Recurrence.swift, shared by every kind), on our own kernel (PackedProduct.swift) and
// on every thread of the context's team (Compute.swift, ThreadTeam.swift).
// The element-wise cell is in GateKernels.swift.
//
// Memory: a layer keeps its gate activations (T, B, 4H), cells and hidden states (T+1, B, H) for backward, which
// then overwrites the gate activations with their gradients (each step's are read just before they are replaced).
// tanh(c_t) is recomputed in backward rather than stored.
//
// The cell (PyTorch's nn.LSTM, gate order i, f, g, o):
//   a = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh          (B, 4H) pre-activations
//   i = sigmoid(a_i)  f = sigmoid(a_f)  g = tanh(a_g)  o = sigmoid(a_o)
//   c_t = f * c_{t-1} + i * g
//   h_t = o * tanh(c_t)

import Foundation

/// An LSTM layer (PyTorch's nn.LSTM, one layer of it). Its input projection carries b_ih + b_hh, both of which
/// enter the pre-activations unchanged (`TypedRecurrentLayer.projectionBias`).
struct LSTMLayer: TypedRecurrentLayer {
    let views: RecurrentLayerViews

    /// The cell states c_t, in `LayerActivations.memory`.
    static var hasCellState: Bool { true }

    /// (B, H) backward's dLoss/dc_{t-1} flowing back from step t.
    func makeBuffers(length T: Int, batch B: Int) -> FloatBuffer { FloatBuffer(count: B * views.hiddenSize) }

    /// Forward through T steps from the initial state in slot 0 of `activations`, whose `projection` holds each
    /// step's input projection (biases included) on entry: the recurrent product is added to it, then the cell turns
    /// it into the gate activations and makes c_t and h_t.
    func forward(weights: LayerWeights, activations: LayerActivations<LSTMLayer>, length T: Int, batch B: Int,
                 refreshWeights: Bool, context: ComputeContext) {
        let H = views.hiddenSize
        forwardThroughTime(
            weightHH: weights.weightHH, buffers: activations.loop,
            product: { activations.projection(at: $0, batch: B) }, accumulate: true, length: T, batch: B,
            refreshWeights: refreshWeights, context: context
        ) { t, rows, units in
            let (first, G) = (rows.lowerBound, 4 * H)
            lstmCellForward(
                gates: activations.projection(at: t, batch: B) + first * G,
                cellPrevious: activations.cell(at: t, batch: B) + first * H,
                cell: activations.cell(at: t + 1, batch: B) + first * H,
                hidden: activations.loop.hidden(at: t + 1, batch: B) + first * H, batch: rows.count, hiddenSize: H,
                units: units)
        }
    }

    /// Backward through T steps, the mirror of `forward`. Leaves dLoss/d(pre-activations) in
    /// `activations.projection` for the input projection's backward (in RecurrentModel.swift), and accumulates dW_hh,
    /// db_ih and db_hh into `gradients` (one zeroing per training step happens elsewhere).
    func backward(weights: LayerWeights, gradients: LayerWeights, activations: LayerActivations<LSTMLayer>,
                  length T: Int, batch B: Int, outputGradient: UnsafePointer<Float>, context: ComputeContext) {
        let H = views.hiddenSize
        let dHiddenNext = activations.loop.hiddenNext.pointer
        let dCellNext = activations.cellNext.pointer
        activations.cellNext.zero()
        backwardThroughTime(
            weightHH: weights.weightHH, weightHHGradient: gradients.weightHH, buffers: activations.loop,
            productGradient: activations.projection.pointer, accumulate: false, length: T, batch: B, context: context
        ) { t, rows, units in
            // gate activations of step t in, their pre-activation gradients out (same place)
            let (G, offset) = (4 * H, rows.lowerBound * H)
            lstmCellBackward(
                gates: activations.projection(at: t, batch: B) + rows.lowerBound * G,
                cellPrevious: activations.cell(at: t, batch: B) + offset,
                cell: activations.cell(at: t + 1, batch: B) + offset,
                outputGradient: outputGradient + t * B * H + offset, hiddenGradient: dHiddenNext + offset,
                cellGradient: dCellNext + offset, batch: rows.count, hiddenSize: H, units: units)
        }
        // Both biases enter the pre-activation unchanged, so each gets the column sums of dgates.
        addColumnSums(of: activations.projection.pointer, rows: T * B, buffers: activations.loop,
                      into: [gradients.biasIH, gradients.biasHH], context: context)
    }
}

/// The LSTM's names for its buffers.
extension LayerActivations where Layer == LSTMLayer {
    /// The cell state at slot t (t = 0 is c_0), as a (B, H) block of `memory`.
    func cell(at t: Int, batch B: Int) -> UnsafeMutablePointer<Float> { memory.pointer + t * B * hiddenSize }
    /// (B, H) backward's dLoss/dc_{t-1} flowing back from step t.
    var cellNext: FloatBuffer { own }
}
