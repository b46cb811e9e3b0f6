// One LSTM layer over a whole sequence: forward and backward through time, side by side.
//
// Shape letters, used throughout the package:
//   V vocabulary size, E embedding width, H hidden width, L layers, T time steps, B batch size.
// Every sequence buffer is time-major: row (t, b) of a (T, B, X) buffer starts at (t * B + b) * X, so the B rows of
// one time step are contiguous and "all T steps" is one (T*B, X) matrix. That lets the input projection of every
// step be a single matrix product (or, for layer 0, a row lookup: see Model.swift); only h_{t-1} * W_hh^T stays
// inside the time loop, on our own kernel (PackedProduct.swift) and on every thread of the team (ThreadTeam.swift).
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

/// Raw pointers to one layer's parameter tensors (or their gradients) inside a flat buffer.
struct LSTMLayerWeights {
    /// (4H, in)
    let weightIH: UnsafeMutablePointer<Float>
    /// (4H, H)
    let weightHH: UnsafeMutablePointer<Float>
    /// (4H)
    let biasIH: UnsafeMutablePointer<Float>
    /// (4H)
    let biasHH: UnsafeMutablePointer<Float>

    init(_ views: LSTMLayerViews, in buffer: FloatBuffer) {
        weightIH = buffer.pointer + views.weightIH.offset
        weightHH = buffer.pointer + views.weightHH.offset
        biasIH = buffer.pointer + views.biasIH.offset
        biasHH = buffer.pointer + views.biasHH.offset
    }
}

/// What one layer keeps from its forward pass for the backward pass, sized for up to T*B rows.
public final class LSTMActivations {
    /// H.
    let hiddenSize: Int
    /// (T, B, 4H) gate order i, f, g, o. The input projection (biases included) before the forward pass, the gate
    /// activations after it, and dLoss/d(pre-activations) after the backward pass.
    let gates: FloatBuffer
    /// (T+1, B, H) cell states; slot 0 holds the initial state c_0.
    let cell: FloatBuffer
    /// (T+1, B, H) hidden states; slot 0 holds the initial state h_0, slots 1...T are the layer's output.
    let hidden: FloatBuffer
    /// W_hh^T (H, 4H) packed for the forward recurrent product h_{t-1} W_hh^T (PackedProduct.swift); made on first
    /// use, as generation (batch 1) never needs it.
    lazy var recurrentWeights = PackedMatrix(rows: hiddenSize, columns: 4 * hiddenSize)
    /// W_hh (4H, H) packed for the backward recurrent product dgates_t W_hh.
    lazy var recurrentWeightsBackward = PackedMatrix(rows: 4 * hiddenSize, columns: hiddenSize)

    init(hiddenSize H: Int, steps T: Int, batch B: Int) {
        hiddenSize = H
        gates = FloatBuffer(count: T * B * 4 * H)
        cell = FloatBuffer(count: (T + 1) * B * H)
        hidden = FloatBuffer(count: (T + 1) * B * H)
    }

    /// The hidden state at slot t (t = 0 is h_0), as a (B, H) block.
    func hidden(at t: Int, batch B: Int) -> UnsafeMutablePointer<Float> { hidden.pointer + t * B * hiddenSize }
    /// The cell state at slot t (t = 0 is c_0), as a (B, H) block.
    func cell(at t: Int, batch B: Int) -> UnsafeMutablePointer<Float> { cell.pointer + t * B * hiddenSize }
    /// Step t's (B, 4H) block of `gates` (t = 0 ... T-1).
    func gates(at t: Int, batch B: Int) -> UnsafeMutablePointer<Float> { gates.pointer + t * B * 4 * hiddenSize }
}

/// Scratch space for one layer's backward pass, shared by all layers (only one runs backward at a time).
final class LSTMGradientScratch {
    /// (B, H) gradient flowing into h_{t-1} from step t.
    let hiddenNext: FloatBuffer
    /// (B, H) gradient flowing into c_{t-1} from step t.
    let cellNext: FloatBuffer
    /// (T*B) ones: the bias gradient is dgates^T times this.
    let ones: FloatBuffer
    /// (4H) column sums of the gate gradients.
    let biasSum: FloatBuffer

    init(hiddenSize H: Int, steps T: Int, batch B: Int) {
        hiddenNext = FloatBuffer(count: B * H)
        cellNext = FloatBuffer(count: B * H)
        ones = FloatBuffer(count: T * B)
        ones.pointer.update(repeating: 1, count: T * B)
        biasSum = FloatBuffer(count: 4 * H)
    }
}

/// The input side of a layer above layer 0, for all T steps at once:
///   gates(T*B, 4H) = input(T*B, in) * W_ih^T + b_ih + b_hh
func lstmInputProjection(
    input: UnsafePointer<Float>, inputSize: Int, weights: LSTMLayerWeights, gates: UnsafeMutablePointer<Float>,
    rows: Int, hiddenSize H: Int
) {
    if rows == 0 { return }
    let G = 4 * H
    // row 0 holds the biases, then every other row copies it
    for j in 0..<G { gates[j] = weights.biasIH[j] + weights.biasHH[j] }
    for r in 1..<rows { (gates + r * G).update(from: gates, count: G) }
    BLAS.gemm(.none, .transposed, m: rows, n: G, k: inputSize,
              a: input, lda: inputSize, b: weights.weightIH, ldb: inputSize, beta: 1, c: gates, ldc: G)
}

/// Backward of `lstmInputProjection`, given dLoss/dgates in `gates`:
///   dW_ih(4H, in) += dgates^T(4H, T*B) * input(T*B, in);  dinput(T*B, in) = dgates(T*B, 4H) * W_ih(4H, in)
/// (the biases' gradients are summed in `lstmBackward`, for every layer).
func lstmInputProjectionBackward(
    input: UnsafePointer<Float>, inputSize: Int, weights: LSTMLayerWeights, gradients: LSTMLayerWeights,
    gates: UnsafePointer<Float>, rows: Int, hiddenSize H: Int, inputGradient: UnsafeMutablePointer<Float>
) {
    let G = 4 * H
    BLAS.gemm(.transposed, .none, m: G, n: inputSize, k: rows,
              a: gates, lda: G, b: input, ldb: inputSize, beta: 1, c: gradients.weightIH, ldc: inputSize)
    BLAS.gemm(.none, .none, m: rows, n: inputSize, k: G,
              a: gates, lda: G, b: weights.weightIH, ldb: inputSize, beta: 0, c: inputGradient, ldc: inputSize)
}

/// Forward through T steps from the initial state in slot 0 of `activations`, whose `gates` hold each step's input
/// projection (biases included) on entry.
///
/// The time loop runs on every thread of `team`: each multiplies its own panels of W_hh^T (all B rows), then, after
/// a barrier, runs the cell on its own rows of the batch (all H units), then waits for the others again. Batches
/// smaller than the kernel's six rows (generation) take BLAS on one thread instead.
///
/// - Parameters:
///   - weights: this layer's parameters.
///   - activations: receives gate activations, cells and hidden states for every step.
///   - refreshWeights: whether to pack W_hh into `activations.recurrentWeights` first (false only when the
///     parameters have not changed since the last pass with this workspace, as while generating).
func lstmForward(
    weights: LSTMLayerWeights, activations: LSTMActivations, steps T: Int, batch B: Int, refreshWeights: Bool,
    team: ThreadTeam
) {
    let H = activations.hiddenSize
    let G = 4 * H
    if B < PackedMatrix.blockRows {
        // Generation (batch 1) and other small batches: BLAS's matrix-vector product on W_hh as stored, one thread.
        for t in 0..<T {
            let stepGates = activations.gates(at: t, batch: B)
            BLAS.gemm(.none, .transposed, m: B, n: G, k: H, a: activations.hidden(at: t, batch: B), lda: H,
                      b: weights.weightHH, ldb: H, beta: 1, c: stepGates, ldc: G)
            lstmCellForward(
                gates: stepGates, cellPrevious: activations.cell(at: t, batch: B),
                cell: activations.cell(at: t + 1, batch: B), hidden: activations.hidden(at: t + 1, batch: B),
                batch: B, hiddenSize: H)
        }
        return
    }
    let packed = activations.recurrentWeights
    team.run { member in
        let panels = member.share(of: packed.panelCount)
        let rows = member.share(of: B)
        // Each thread packs the panels it multiplies with, so no barrier is needed before the loop.
        if refreshWeights { packed.pack(weights.weightHH, transposed: true, panels: panels) }
        for t in 0..<T {
            let stepGates = activations.gates(at: t, batch: B)
            // Recurrent projection: gates_t(B, 4H) += h_{t-1}(B, H) * W_hh^T(H, 4H), this thread's columns.
            packed.multiply(activations.hidden(at: t, batch: B), lda: H, rows: B, panels: panels,
                            into: stepGates, ldc: G, accumulate: true)
            member.barrier()
            // The cell, this thread's rows.
            if !rows.isEmpty {
                let first = rows.lowerBound
                lstmCellForward(
                    gates: stepGates + first * G, cellPrevious: activations.cell(at: t, batch: B) + first * H,
                    cell: activations.cell(at: t + 1, batch: B) + first * H,
                    hidden: activations.hidden(at: t + 1, batch: B) + first * H, batch: rows.count, hiddenSize: H)
            }
            member.barrier()
        }
    }
}

/// Backward through T steps, the mirror of `lstmForward`. Leaves dLoss/d(pre-activations) in `activations.gates`
/// for the input side's backward, and accumulates dW_hh, db_ih and db_hh into `gradients` (one zeroing per training
/// step happens elsewhere).
///
/// - Parameter outputGradient: (T, B, H) dLoss/dh_t for t = 1...T from above (the output layer or the next layer).
func lstmBackward(
    weights: LSTMLayerWeights, gradients: LSTMLayerWeights, activations: LSTMActivations, steps T: Int, batch B: Int,
    outputGradient: UnsafePointer<Float>, scratch: LSTMGradientScratch, team: ThreadTeam
) {
    let H = activations.hiddenSize
    let G = 4 * H
    let dHiddenNext = scratch.hiddenNext.pointer
    let dCellNext = scratch.cellNext.pointer
    scratch.hiddenNext.zero()
    scratch.cellNext.zero()
    let packed = activations.recurrentWeightsBackward
    team.run { member in
        let panels = member.share(of: packed.panelCount)
        let rows = member.share(of: B)
        packed.pack(weights.weightHH, transposed: false, panels: panels)
        for t in stride(from: T - 1, through: 0, by: -1) {
            // through the cell, this thread's rows: gate activations of step t in, their pre-activation gradients
            // out (same place).
            let stepGates = activations.gates(at: t, batch: B)
            if !rows.isEmpty {
                let (gateOffset, offset) = (rows.lowerBound * G, rows.lowerBound * H)
                lstmCellBackward(
                    gates: stepGates + gateOffset, cellPrevious: activations.cell(at: t, batch: B) + offset,
                    cell: activations.cell(at: t + 1, batch: B) + offset,
                    outputGradient: outputGradient + t * B * H + offset, hiddenGradient: dHiddenNext + offset,
                    cellGradient: dCellNext + offset, batch: rows.count, hiddenSize: H)
            }
            member.barrier()
            // through h_{t-1} * W_hh^T: dh_{t-1}(B, H) = dgates_t(B, 4H) * W_hh(4H, H), this thread's columns.
            if t > 0 {
                packed.multiply(stepGates, lda: G, rows: B, panels: panels, into: dHiddenNext, ldc: H,
                                accumulate: false)
            }
            member.barrier()
        }
    }
    let rows = T * B
    let dGates = UnsafePointer(activations.gates.pointer)
    // dW_hh(4H, H) += dgates^T(4H, T*B) * h_{t-1}(T*B, H), as one product over all T*B rows: slots 0..<T of
    // `hidden` are h_0 ... h_{T-1}.
    BLAS.gemm(.transposed, .none, m: G, n: H, k: rows,
              a: dGates, lda: G, b: activations.hidden.pointer, ldb: H, beta: 1, c: gradients.weightHH, ldc: H)
    // Both biases enter the pre-activation unchanged, so each gets the column sums of dgates: dgates^T * ones.
    BLAS.gemv(.transposed, rows: rows, cols: G, a: dGates, lda: G, x: scratch.ones.pointer, beta: 0,
              y: scratch.biasSum.pointer)
    let biasSum = scratch.biasSum.pointer
    for j in 0..<G {
        gradients.biasIH[j] += biasSum[j]
        gradients.biasHH[j] += biasSum[j]
    }
}
