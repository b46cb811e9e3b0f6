// One LSTM layer over a whole sequence: forward and backward through time, side by side.
//
// Shape letters, used throughout the package:
//   V vocabulary size, E embedding width, H hidden width, L layers, T time steps, B batch size.
// Every sequence buffer is time-major: row (t, b) of a (T, B, X) buffer starts at (t * B + b) * X, so the B rows of
// one time step are contiguous and "all T steps" is one (T*B, X) matrix. That lets the input projection of every
// step be a single matrix product (or, for layer 0, a row lookup: see Model.swift); only h_{t-1} * W_hh^T stays
// inside the time loop. The element-wise cell is in GateKernels.swift.
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
    /// (H, 4H) W_hh transposed: BLAS runs the recurrent products faster on this layout than on W_hh's own
    /// (measured on the default shape: 230 against 291 microseconds per step forward, 267 against 299 backward).
    let weightHHTransposed: FloatBuffer

    init(hiddenSize H: Int, steps T: Int, batch B: Int) {
        hiddenSize = H
        gates = FloatBuffer(count: T * B * 4 * H)
        cell = FloatBuffer(count: (T + 1) * B * H)
        hidden = FloatBuffer(count: (T + 1) * B * H)
        weightHHTransposed = FloatBuffer(count: H * 4 * H)
    }

    /// The hidden state at slot t (t = 0 is h_0), as a (B, H) block.
    func hidden(at t: Int, batch B: Int) -> UnsafeMutablePointer<Float> { hidden.pointer + t * B * hiddenSize }
    /// The cell state at slot t (t = 0 is c_0), as a (B, H) block.
    func cell(at t: Int, batch B: Int) -> UnsafeMutablePointer<Float> { cell.pointer + t * B * hiddenSize }
    /// Step t's (B, 4H) block of `gates` (t = 0 ... T-1).
    func gates(at t: Int, batch B: Int) -> UnsafeMutablePointer<Float> { gates.pointer + t * B * 4 * hiddenSize }

    /// Copies W_hh (4H, H) into `weightHHTransposed` (H, 4H); once per pass, after the parameters last changed.
    func refreshTransposedWeights(_ weightHH: UnsafePointer<Float>) {
        transpose(weightHH, rows: 4 * hiddenSize, columns: hiddenSize, into: weightHHTransposed.pointer)
    }
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

/// out(columns, rows) = in(rows, columns)^T, in 32 x 32 tiles so reads and writes both stay in cache.
func transpose(_ source: UnsafePointer<Float>, rows: Int, columns: Int, into destination: UnsafeMutablePointer<Float>) {
    let tile = 32
    for rowStart in stride(from: 0, to: rows, by: tile) {
        for columnStart in stride(from: 0, to: columns, by: tile) {
            for r in rowStart..<min(rowStart + tile, rows) {
                for c in columnStart..<min(columnStart + tile, columns) {
                    destination[c * rows + r] = source[r * columns + c]
                }
            }
        }
    }
}

/// The input side of a layer above layer 0, for all T steps at once:
///   gates(T*B, 4H) = input(T*B, in) * W_ih^T + b_ih + b_hh
func lstmInputProjection(
    input: UnsafePointer<Float>, inputSize: Int, weights: LSTMLayerWeights, gates: UnsafeMutablePointer<Float>,
    rows: Int, hiddenSize H: Int
) {
    let G = 4 * H
    for r in 0..<rows {
        let row = gates + r * G
        for j in 0..<G { row[j] = weights.biasIH[j] + weights.biasHH[j] }
    }
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
/// - Parameters:
///   - weights: this layer's parameters.
///   - activations: receives gate activations, cells and hidden states for every step.
///   - refreshWeights: whether to copy W_hh into `activations.weightHHTransposed` first (false only when the
///     parameters have not changed since the last pass with this workspace, as while generating).
func lstmForward(
    weights: LSTMLayerWeights, activations: LSTMActivations, steps T: Int, batch B: Int, refreshWeights: Bool
) {
    let H = activations.hiddenSize
    let G = 4 * H
    if refreshWeights { activations.refreshTransposedWeights(weights.weightHH) }
    let weightHHTransposed = activations.weightHHTransposed.pointer
    for t in 0..<T {
        let stepGates = activations.gates(at: t, batch: B)
        // Recurrent projection: gates_t(B, 4H) += h_{t-1}(B, H) * W_hh^T(H, 4H).
        BLAS.gemm(.none, .none, m: B, n: G, k: H,
                  a: activations.hidden(at: t, batch: B), lda: H, b: weightHHTransposed, ldb: G,
                  beta: 1, c: stepGates, ldc: G)
        lstmCellForward(
            gates: stepGates, cellPrevious: activations.cell(at: t, batch: B),
            cell: activations.cell(at: t + 1, batch: B), hidden: activations.hidden(at: t + 1, batch: B),
            batch: B, hiddenSize: H)
    }
}

/// Backward through T steps, the mirror of `lstmForward`. Leaves dLoss/d(pre-activations) in `activations.gates`
/// for the input side's backward, and accumulates dW_hh, db_ih and db_hh into `gradients` (one zeroing per training
/// step happens elsewhere).
///
/// - Parameter outputGradient: (T, B, H) dLoss/dh_t for t = 1...T from above (the output layer or the next layer).
func lstmBackward(
    weights: LSTMLayerWeights, gradients: LSTMLayerWeights, activations: LSTMActivations, steps T: Int, batch B: Int,
    outputGradient: UnsafePointer<Float>, scratch: LSTMGradientScratch
) {
    let H = activations.hiddenSize
    let G = 4 * H
    let dHiddenNext = scratch.hiddenNext.pointer
    let dCellNext = scratch.cellNext.pointer
    scratch.hiddenNext.zero()
    scratch.cellNext.zero()
    for t in stride(from: T - 1, through: 0, by: -1) {
        // through the cell: gate activations of step t in, their pre-activation gradients out (same place).
        let stepGates = activations.gates(at: t, batch: B)
        lstmCellBackward(
            gates: stepGates, cellPrevious: activations.cell(at: t, batch: B), cell: activations.cell(at: t + 1, batch: B),
            outputGradient: outputGradient + t * B * H, hiddenGradient: dHiddenNext, cellGradient: dCellNext,
            batch: B, hiddenSize: H)
        // through h_{t-1} * W_hh^T: dh_{t-1}(B, H) = dgates_t(B, 4H) * W_hh(4H, H), W_hh read as (W_hh^T)^T
        if t > 0 {
            BLAS.gemm(.none, .transposed, m: B, n: H, k: G,
                      a: stepGates, lda: G, b: activations.weightHHTransposed.pointer, ldb: G,
                      beta: 0, c: dHiddenNext, ldc: H)
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
