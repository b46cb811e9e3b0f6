// One LSTM layer over a whole sequence: forward and backward through time, side by side. The model (Model.swift)
// computes the input projection x_t W_ih^T + b_ih + b_hh for every step before the time loop (Layer.swift says who
// does what); this file runs the recurrence.
//
// Shape letters, used throughout the package:
//   V vocabulary size, E embedding width, H hidden width, L layers, T time steps, B batch size.
// Every sequence buffer is time-major: row (t, b) of a (T, B, X) buffer starts at (t * B + b) * X, so the B rows of
// one time step are contiguous and "all T steps" is one (T*B, X) matrix. That lets the input projection of every
// step be a single matrix product (or, for layer 0, a row lookup: see Model.swift); only h_{t-1} * W_hh^T stays
// inside the time loop, on our own kernel (PackedProduct.swift) and on every thread of the context's team
// (Compute.swift, ThreadTeam.swift).
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

    init(_ views: RecurrentLayerViews, in buffer: FloatBuffer) {
        weightIH = buffer.pointer + views.weightIH.offset
        weightHH = buffer.pointer + views.weightHH.offset
        biasIH = buffer.pointer + views.biasIH.offset
        biasHH = buffer.pointer + views.biasHH.offset
    }
}

/// An LSTM layer (PyTorch's nn.LSTM, one layer of it).
struct LSTMLayer: RecurrentLayer {
    let views: RecurrentLayerViews

    /// b_ih + b_hh: both biases enter the pre-activations unchanged.
    func projectionBias(_ parameters: FloatBuffer, into row: UnsafeMutablePointer<Float>) {
        let weights = LSTMLayerWeights(views, in: parameters)
        for j in 0..<(4 * views.hiddenSize) { row[j] = weights.biasIH[j] + weights.biasHH[j] }
    }

    func makeActivations(length T: Int, batch B: Int) -> RecurrentActivations {
        LSTMActivations(hiddenSize: views.hiddenSize, length: T, batch: B)
    }

    func forward(parameters: FloatBuffer, activations: RecurrentActivations, length T: Int, batch B: Int,
                 refreshWeights: Bool, context: ComputeContext) {
        lstmForward(weights: LSTMLayerWeights(views, in: parameters), activations: activations as! LSTMActivations,
                    length: T, batch: B, refreshWeights: refreshWeights, context: context)
    }

    func backward(parameters: FloatBuffer, gradients: FloatBuffer, activations: RecurrentActivations, length T: Int,
                  batch B: Int, outputGradient: UnsafePointer<Float>, context: ComputeContext) {
        lstmBackward(weights: LSTMLayerWeights(views, in: parameters), gradients: LSTMLayerWeights(views, in: gradients),
                     activations: activations as! LSTMActivations, length: T, batch: B,
                     outputGradient: outputGradient, context: context)
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
    /// (T+1, B, H) hidden states; slot 0 holds the initial state h_0, slots 1...T are the layer's output.
    let hidden: FloatBuffer
    /// W_hh^T (H, 4H) packed for the forward recurrent product h_{t-1} W_hh^T (PackedProduct.swift); made on first
    /// use, as generation (batch 1) never needs it.
    private var packedForward: PackedMatrix?
    /// W_hh (4H, H) packed for the backward recurrent product dgates_t W_hh.
    private var packedBackward: PackedMatrix?
    /// Backward's scratch space.
    let scratch: LSTMGradientScratch

    init(hiddenSize H: Int, length T: Int, batch B: Int) {
        hiddenSize = H
        gates = FloatBuffer(count: T * B * 4 * H)
        cell = FloatBuffer(count: (T + 1) * B * H)
        hidden = FloatBuffer(count: (T + 1) * B * H)
        scratch = LSTMGradientScratch(hiddenSize: H, length: T, batch: B)
    }

    /// W_hh^T packed for the forward product with `kernel`'s panels.
    func recurrentWeights(kernel: PackedKernel) -> PackedMatrix {
        if let packedForward, packedForward.kernel == kernel { return packedForward }
        let made = PackedMatrix(rows: hiddenSize, columns: 4 * hiddenSize, kernel: kernel)
        packedForward = made
        return made
    }

    /// W_hh packed for the backward product with `kernel`'s panels.
    func recurrentWeightsBackward(kernel: PackedKernel) -> PackedMatrix {
        if let packedBackward, packedBackward.kernel == kernel { return packedBackward }
        let made = PackedMatrix(rows: 4 * hiddenSize, columns: hiddenSize, kernel: kernel)
        packedBackward = made
        return made
    }

    /// The hidden state at slot t (t = 0 is h_0), as a (B, H) block.
    func hidden(at t: Int, batch B: Int) -> UnsafeMutablePointer<Float> { hidden.pointer + t * B * hiddenSize }
    /// The cell state at slot t (t = 0 is c_0), as a (B, H) block.
    func cell(at t: Int, batch B: Int) -> UnsafeMutablePointer<Float> { cell.pointer + t * B * hiddenSize }
    /// Step t's (B, 4H) block of `gates` (t = 0 ... T-1).
    func gates(at t: Int, batch B: Int) -> UnsafeMutablePointer<Float> { gates.pointer + t * B * 4 * hiddenSize }

    // RecurrentActivations
    var projection: FloatBuffer { gates }
    func outputs(batch B: Int) -> UnsafeMutablePointer<Float> { hidden(at: 1, batch: B) }

    func resetState(batch B: Int) {
        hidden(at: 0, batch: B).update(repeating: 0, count: B * hiddenSize)
        cell(at: 0, batch: B).update(repeating: 0, count: B * hiddenSize)
    }

    func carryState(length T: Int, batch B: Int) {
        hidden(at: 0, batch: B).update(from: hidden(at: T, batch: B), count: B * hiddenSize)
        cell(at: 0, batch: B).update(from: cell(at: T, batch: B), count: B * hiddenSize)
    }

    func memory(at t: Int, batch B: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: cell(at: t, batch: B), count: B * hiddenSize)
    }

    func hiddenState(at t: Int, batch B: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: hidden(at: t, batch: B), count: B * hiddenSize)
    }
}

/// Scratch space for one layer's backward pass.
final class LSTMGradientScratch {
    /// (B, H) gradient flowing into h_{t-1} from step t.
    let hiddenNext: FloatBuffer
    /// (B, H) gradient flowing into c_{t-1} from step t.
    let cellNext: FloatBuffer
    /// (T*B) ones: the bias gradient is dgates^T times this.
    let ones: FloatBuffer
    /// (4H) column sums of the gate gradients.
    let biasSum: FloatBuffer

    init(hiddenSize H: Int, length T: Int, batch B: Int) {
        hiddenNext = FloatBuffer(count: B * H)
        cellNext = FloatBuffer(count: B * H)
        ones = FloatBuffer(count: T * B)
        ones.pointer.update(repeating: 1, count: T * B)
        biasSum = FloatBuffer(count: 4 * H)
    }
}

/// Forward through T steps from the initial state in slot 0 of `activations`, whose `gates` hold each step's input
/// projection (biases included) on entry.
///
/// The time loop runs on every thread of the context's team: each multiplies its own panels of W_hh^T (all B rows), then, after
/// a barrier, runs the cell on its own rows of the batch (all H units), then waits for the others again. Batches
/// smaller than the kernel's six rows (generation) take BLAS's matrix-vector product instead, shared by the team.
///
/// - Parameters:
///   - weights: this layer's parameters.
///   - activations: receives gate activations, cells and hidden states for every step.
///   - refreshWeights: whether to pack W_hh into `activations.recurrentWeights` first (false only when the
///     parameters have not changed since the last pass with this workspace, as while generating).
func lstmForward(
    weights: LSTMLayerWeights, activations: LSTMActivations, length T: Int, batch B: Int, refreshWeights: Bool,
    context: ComputeContext
) {
    let H = activations.hiddenSize
    let G = 4 * H
    if B < PackedMatrix.blockRows {
        // Generation (batch 1) and other small batches: BLAS's matrix-vector product on W_hh as stored.
        for t in 0..<T {
            let stepGates = activations.gates(at: t, batch: B)
            BLAS.gemm(.none, .transposed, m: B, n: G, k: H, a: activations.hidden(at: t, batch: B), lda: H,
                      b: weights.weightHH, ldb: H, beta: 1, c: stepGates, ldc: G, context: context)
            lstmCellForward(
                gates: stepGates, cellPrevious: activations.cell(at: t, batch: B),
                cell: activations.cell(at: t + 1, batch: B), hidden: activations.hidden(at: t + 1, batch: B),
                batch: B, hiddenSize: H)
        }
        return
    }
    let packed = activations.recurrentWeights(kernel: context.packedKernel)
    context.team.run { member in
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
/// for the input projection's backward (in Model.swift), and accumulates dW_hh, db_ih and db_hh into `gradients` (one zeroing per training
/// step happens elsewhere).
///
/// - Parameter outputGradient: (T, B, H) dLoss/dh_t for t = 1...T from above (the output layer or the next layer).
func lstmBackward(
    weights: LSTMLayerWeights, gradients: LSTMLayerWeights, activations: LSTMActivations, length T: Int, batch B: Int,
    outputGradient: UnsafePointer<Float>, context: ComputeContext
) {
    let scratch = activations.scratch
    let H = activations.hiddenSize
    let G = 4 * H
    let dHiddenNext = scratch.hiddenNext.pointer
    let dCellNext = scratch.cellNext.pointer
    scratch.hiddenNext.zero()
    scratch.cellNext.zero()
    let packed = activations.recurrentWeightsBackward(kernel: context.packedKernel)
    context.team.run { member in
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
    Products.gemm(.transposed, .none, m: G, n: H, k: rows,
                 a: dGates, lda: G, b: activations.hidden.pointer, ldb: H, beta: 1, c: gradients.weightHH, ldc: H,
                 context: context)
    // Both biases enter the pre-activation unchanged, so each gets the column sums of dgates: dgates^T * ones.
    BLAS.gemv(.transposed, rows: rows, cols: G, a: dGates, lda: G, x: scratch.ones.pointer, beta: 0,
              y: scratch.biasSum.pointer, context: context)
    let biasSum = scratch.biasSum.pointer
    for j in 0..<G {
        gradients.biasIH[j] += biasSum[j]
        gradients.biasHH[j] += biasSum[j]
    }
}
