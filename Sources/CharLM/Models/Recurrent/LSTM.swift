// One LSTM layer over a whole sequence: forward and backward through time, side by side. The model (Model.swift)
// computes the input projection x_t W_ih^T + b_ih + b_hh for every step before the time loop (Layer.swift says who
// does what); this file runs the recurrence.
//
// Shape letters, used throughout the package:
//   V vocabulary size, E embedding width, H hidden width, L layers, T time steps, B batch size.
// Every sequence buffer is time-major: row (t, b) of a (T, B, X) buffer starts at (t * B + b) * X, so the B rows of
// one time step are contiguous and "all T steps" is one (T*B, X) matrix. That lets the input projection of every
// step be a single matrix product (or, for layer 0, a row lookup: see Model.swift); only h_{t-1} * W_hh^T stays
// inside the time loop (Recurrence.swift, shared by every kind), on our own kernel (PackedProduct.swift) and on every
// thread of the context's team (Compute.swift, ThreadTeam.swift).
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

/// An LSTM layer (PyTorch's nn.LSTM, one layer of it).
struct LSTMLayer: RecurrentLayer {
    let views: RecurrentLayerViews

    /// b_ih + b_hh: both biases enter the pre-activations unchanged.
    func projectionBias(_ parameters: FloatBuffer, into row: UnsafeMutablePointer<Float>) {
        let weights = LayerWeights(views, in: parameters)
        for j in 0..<(4 * views.hiddenSize) { row[j] = weights.biasIH[j] + weights.biasHH[j] }
    }

    func makeActivations(length T: Int, batch B: Int) -> RecurrentActivations {
        LSTMActivations(hiddenSize: views.hiddenSize, length: T, batch: B)
    }

    /// Forward through T steps from the initial state in slot 0 of `activations`, whose `gates` hold each step's
    /// input projection (biases included) on entry: the recurrent product is added to them, then the cell turns them
    /// into the gate activations and makes c_t and h_t.
    func forward(parameters: FloatBuffer, activations: RecurrentActivations, length T: Int, batch B: Int,
                 refreshWeights: Bool, context: ComputeContext) {
        let weights = LayerWeights(views, in: parameters)
        let activations = activations as! LSTMActivations
        let H = views.hiddenSize
        forwardThroughTime(
            weightHH: weights.weightHH, buffers: activations.loop, product: { activations.gates(at: $0, batch: B) },
            accumulate: true, length: T, batch: B, refreshWeights: refreshWeights, context: context
        ) { t, rows in
            let (first, G) = (rows.lowerBound, 4 * H)
            lstmCellForward(
                gates: activations.gates(at: t, batch: B) + first * G,
                cellPrevious: activations.cell(at: t, batch: B) + first * H,
                cell: activations.cell(at: t + 1, batch: B) + first * H,
                hidden: activations.loop.hidden(at: t + 1, batch: B) + first * H, batch: rows.count, hiddenSize: H)
        }
    }

    /// Backward through T steps, the mirror of `forward`. Leaves dLoss/d(pre-activations) in `activations.gates`
    /// for the input projection's backward (in Model.swift), and accumulates dW_hh, db_ih and db_hh into
    /// `gradients` (one zeroing per training step happens elsewhere).
    func backward(parameters: FloatBuffer, gradients: FloatBuffer, activations: RecurrentActivations, length T: Int,
                  batch B: Int, outputGradient: UnsafePointer<Float>, context: ComputeContext) {
        let (weights, dWeights) = (LayerWeights(views, in: parameters), LayerWeights(views, in: gradients))
        let activations = activations as! LSTMActivations
        let H = views.hiddenSize
        let dHiddenNext = activations.loop.hiddenNext.pointer
        let dCellNext = activations.cellNext.pointer
        activations.cellNext.zero()
        backwardThroughTime(
            weightHH: weights.weightHH, weightHHGradient: dWeights.weightHH, buffers: activations.loop,
            productGradient: activations.gates.pointer, accumulate: false, length: T, batch: B, context: context
        ) { t, rows in
            // gate activations of step t in, their pre-activation gradients out (same place)
            let (G, offset) = (4 * H, rows.lowerBound * H)
            lstmCellBackward(
                gates: activations.gates(at: t, batch: B) + rows.lowerBound * G,
                cellPrevious: activations.cell(at: t, batch: B) + offset,
                cell: activations.cell(at: t + 1, batch: B) + offset,
                outputGradient: outputGradient + t * B * H + offset, hiddenGradient: dHiddenNext + offset,
                cellGradient: dCellNext + offset, batch: rows.count, hiddenSize: H)
        }
        // Both biases enter the pre-activation unchanged, so each gets the column sums of dgates.
        addColumnSums(of: activations.gates.pointer, rows: T * B, buffers: activations.loop,
                      into: [dWeights.biasIH, dWeights.biasHH], context: context)
    }
}

/// What one layer keeps from its forward pass for the backward pass, sized for up to T*B rows.
final class LSTMActivations: RecurrentActivations {
    /// H.
    let hiddenSize: Int
    /// (T, B, 4H) gate order i, f, g, o. The input projection (biases included) before the forward pass, the gate
    /// activations after it, and dLoss/d(pre-activations) after the backward pass.
    let gates: FloatBuffer
    /// (T+1, B, H) cell states; slot 0 holds the initial state c_0.
    let cell: FloatBuffer
    /// (B, H) backward's dLoss/dc_{t-1} flowing back from step t.
    let cellNext: FloatBuffer
    /// Hidden states, packed W_hh and backward's scratch (Recurrence.swift).
    let loop: TimeLoopBuffers

    init(hiddenSize H: Int, length T: Int, batch B: Int) {
        hiddenSize = H
        gates = FloatBuffer(count: T * B * 4 * H)
        cell = FloatBuffer(count: (T + 1) * B * H)
        cellNext = FloatBuffer(count: B * H)
        loop = TimeLoopBuffers(hiddenSize: H, width: 4 * H, length: T, batch: B)
    }

    /// The cell state at slot t (t = 0 is c_0), as a (B, H) block.
    func cell(at t: Int, batch B: Int) -> UnsafeMutablePointer<Float> { cell.pointer + t * B * hiddenSize }
    /// Step t's (B, 4H) block of `gates` (t = 0 ... T-1).
    func gates(at t: Int, batch B: Int) -> UnsafeMutablePointer<Float> { gates.pointer + t * B * 4 * hiddenSize }

    // RecurrentActivations
    var projection: FloatBuffer { gates }
    func outputs(batch B: Int) -> UnsafeMutablePointer<Float> { loop.hidden(at: 1, batch: B) }

    func resetState(batch B: Int) {
        loop.resetHidden(batch: B)
        cell(at: 0, batch: B).update(repeating: 0, count: B * hiddenSize)
    }

    func carryState(length T: Int, batch B: Int) {
        loop.carryHidden(length: T, batch: B)
        cell(at: 0, batch: B).update(from: cell(at: T, batch: B), count: B * hiddenSize)
    }

    func memory(at t: Int, batch B: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: cell(at: t, batch: B), count: B * hiddenSize)
    }

    func hiddenState(at t: Int, batch B: Int) -> UnsafeBufferPointer<Float> { loop.hiddenState(at: t, batch: B) }
}
