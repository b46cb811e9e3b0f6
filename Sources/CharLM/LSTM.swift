// One LSTM layer over a whole sequence: forward and backward through time, side by side.
//
// Shape letters, used throughout the package:
//   V vocabulary size, E embedding width, H hidden width, L layers, T time steps, B batch size.
// Every sequence buffer is time-major: row (t, b) of a (T, B, X) buffer starts at (t * B + b) * X, so the B rows of
// one time step are contiguous and "all T steps" is one (T*B, X) matrix. That lets the input projection of every
// step be a single matrix product; only h_{t-1} * W_hh^T stays inside the time loop.
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

/// What one layer keeps from its forward pass for the backward pass, sized for up to `capacity` = T*B rows.
public final class LSTMActivations {
    /// H.
    let hiddenSize: Int
    /// (T, B, 4H) gate activations after their nonlinearity, gate order i, f, g, o.
    let gates: FloatBuffer
    /// (T+1, B, H) cell states; slot 0 holds the initial state c_0.
    let cell: FloatBuffer
    /// (T+1, B, H) hidden states; slot 0 holds the initial state h_0, slots 1...T are the layer's output.
    let hidden: FloatBuffer
    /// (T, B, H) tanh(c_t), kept so backward need not recompute it.
    let cellTanh: FloatBuffer
    /// (4H) b_ih + b_hh, summed once per forward pass.
    let bias: FloatBuffer

    init(hiddenSize H: Int, steps T: Int, batch B: Int) {
        hiddenSize = H
        gates = FloatBuffer(count: T * B * 4 * H)
        cell = FloatBuffer(count: (T + 1) * B * H)
        hidden = FloatBuffer(count: (T + 1) * B * H)
        cellTanh = FloatBuffer(count: T * B * H)
        bias = FloatBuffer(count: 4 * H)
    }

    /// The hidden state at slot t (t = 0 is h_0), as a (B, H) block.
    func hidden(at t: Int, batch B: Int) -> UnsafeMutablePointer<Float> { hidden.pointer + t * B * hiddenSize }
    /// The cell state at slot t (t = 0 is c_0), as a (B, H) block.
    func cell(at t: Int, batch B: Int) -> UnsafeMutablePointer<Float> { cell.pointer + t * B * hiddenSize }
}

/// Scratch space for one layer's backward pass, shared by all layers (only one runs backward at a time).
final class LSTMGradientScratch {
    /// (T, B, 4H) gradients of the loss with respect to the gate pre-activations.
    let gatePreactivations: FloatBuffer
    /// (B, H) gradient flowing into h_{t-1} from step t.
    let hiddenNext: FloatBuffer
    /// (B, H) gradient flowing into c_{t-1} from step t.
    let cellNext: FloatBuffer
    /// (4H) column sums of the gate gradients: the bias gradient.
    let biasSum: FloatBuffer

    init(hiddenSize H: Int, steps T: Int, batch B: Int) {
        gatePreactivations = FloatBuffer(count: T * B * 4 * H)
        hiddenNext = FloatBuffer(count: B * H)
        cellNext = FloatBuffer(count: B * H)
        biasSum = FloatBuffer(count: 4 * H)
    }
}

/// Forward through T steps from the initial state in slot 0 of `activations`.
///
/// - Parameters:
///   - input: (T, B, in) layer input (embeddings for layer 0, the layer below's output above it).
///   - weights: this layer's parameters.
///   - activations: receives gates, cells, hidden states and tanh(c) for every step.
func lstmForward(
    input: UnsafePointer<Float>, inputSize: Int, weights: LSTMLayerWeights,
    activations: LSTMActivations, steps T: Int, batch B: Int
) {
    let H = activations.hiddenSize
    let G = 4 * H
    let gates = activations.gates.pointer
    // Input projection of all T steps at once: gates(T*B, 4H) = input(T*B, in) * W_ih^T.
    BLAS.gemm(.none, .transposed, m: T * B, n: G, k: inputSize,
              a: input, lda: inputSize, b: weights.weightIH, ldb: inputSize, beta: 0, c: gates, ldc: G)
    // Both biases enter every step's pre-activation unchanged, so add them once.
    let bias = activations.bias.pointer
    for j in 0..<G { bias[j] = weights.biasIH[j] + weights.biasHH[j] }
    for t in 0..<T {
        let stepGates = gates + t * B * G
        // Recurrent projection: gates_t(B, 4H) += h_{t-1}(B, H) * W_hh^T.
        BLAS.gemm(.none, .transposed, m: B, n: G, k: H,
                  a: activations.hidden(at: t, batch: B), lda: H, b: weights.weightHH, ldb: H,
                  beta: 1, c: stepGates, ldc: G)
        lstmCellForward(
            gates: stepGates, bias: bias, cellPrevious: activations.cell(at: t, batch: B),
            cell: activations.cell(at: t + 1, batch: B), cellTanh: activations.cellTanh.pointer + t * B * H,
            hidden: activations.hidden(at: t + 1, batch: B), batch: B, hiddenSize: H)
    }
}

/// Backward through T steps, the mirror of `lstmForward`: same argument order, plus the upstream gradient.
/// Accumulates into `gradients` (one zeroing per training step happens elsewhere).
///
/// - Parameters:
///   - input: (T, B, in) the input the forward pass saw.
///   - outputGradient: (T, B, H) dLoss/dh_t for t = 1...T from above (the output layer or the next LSTM layer).
///   - inputGradient: (T, B, in) receives dLoss/dinput (overwritten), or nil when nobody needs it.
func lstmBackward(
    input: UnsafePointer<Float>, inputSize: Int, weights: LSTMLayerWeights, gradients: LSTMLayerWeights,
    activations: LSTMActivations, steps T: Int, batch B: Int,
    outputGradient: UnsafePointer<Float>, inputGradient: UnsafeMutablePointer<Float>?, scratch: LSTMGradientScratch
) {
    let H = activations.hiddenSize
    let G = 4 * H
    let gates = activations.gates.pointer
    let dGates = scratch.gatePreactivations.pointer
    let dHiddenNext = scratch.hiddenNext.pointer
    let dCellNext = scratch.cellNext.pointer
    scratch.hiddenNext.zero()
    scratch.cellNext.zero()
    for t in stride(from: T - 1, through: 0, by: -1) {
        let stepGates = gates + t * B * G
        let stepDGates = dGates + t * B * G
        lstmCellBackward(
            gates: stepGates, cellPrevious: activations.cell(at: t, batch: B),
            cellTanh: activations.cellTanh.pointer + t * B * H, outputGradient: outputGradient + t * B * H,
            hiddenGradient: dHiddenNext, cellGradient: dCellNext, gateGradients: stepDGates, batch: B, hiddenSize: H)
        // through h_{t-1} * W_hh^T: dh_{t-1}(B, H) = dgates_t(B, 4H) * W_hh(4H, H)
        if t > 0 {
            BLAS.gemm(.none, .none, m: B, n: H, k: G,
                      a: stepDGates, lda: G, b: weights.weightHH, ldb: H, beta: 0, c: dHiddenNext, ldc: H)
        }
    }
    let rows = T * B
    // Weight gradients as one product over all T*B rows.
    // dW_ih(4H, in) += dgates^T(4H, T*B) * input(T*B, in)
    BLAS.gemm(.transposed, .none, m: G, n: inputSize, k: rows,
              a: dGates, lda: G, b: input, ldb: inputSize, beta: 1, c: gradients.weightIH, ldc: inputSize)
    // dW_hh(4H, H) += dgates^T(4H, T*B) * h_{t-1}(T*B, H), where slots 0..<T of `hidden` are h_0 ... h_{T-1}
    BLAS.gemm(.transposed, .none, m: G, n: H, k: rows,
              a: dGates, lda: G, b: activations.hidden.pointer, ldb: H, beta: 1, c: gradients.weightHH, ldc: H)
    // Both biases enter the pre-activation unchanged, so each gets the column sums of dgates.
    let biasSum = scratch.biasSum.pointer
    scratch.biasSum.zero()
    for r in 0..<rows {
        let da = dGates + r * G
        for j in 0..<G { biasSum[j] += da[j] }
    }
    for j in 0..<G {
        gradients.biasIH[j] += biasSum[j]
        gradients.biasHH[j] += biasSum[j]
    }
    // through input * W_ih^T: dinput(T*B, in) = dgates(T*B, 4H) * W_ih(4H, in)
    if let inputGradient {
        BLAS.gemm(.none, .none, m: rows, n: inputSize, k: G,
                  a: dGates, lda: G, b: weights.weightIH, ldb: inputSize, beta: 0, c: inputGradient, ldc: inputSize)
    }
}
