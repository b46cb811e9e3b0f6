// The time loop every recurrent layer shares (LSTM.swift, GRU.swift, RNN.swift): the recurrent product
// h_{t-1} W_hh^T on the packed kernel, then the kind's element-wise cell, step after step forward; the cell's
// derivative, then the product with W_hh, step after step backward; and, after the backward loop, dW_hh and the
// bias gradients as whole-sequence products. A layer kind supplies only its cell (GateKernels.swift) and where the
// recurrent product goes.
//
// The loop runs on every thread of the context's team: each multiplies its own panels of the packed W_hh (all B
// rows), then, after a barrier, runs the cell on its own rows of the batch (all H units), then waits for the others
// again. Batches smaller than the kernel's six rows (generation) take BLAS's matrix-vector product instead.
//
// Shapes: P = gateCount * H; `product(t)` is a (B, P) block whose rows are P apart.

import Foundation

/// The buffers every kind keeps for its time loop: hidden states, the packed copies of W_hh and backward's scratch.
final class TimeLoopBuffers {
    /// H.
    let hiddenSize: Int
    /// P = gateCount * H: the width of the recurrent product.
    let width: Int
    /// (T+1, B, H) hidden states; slot 0 holds the initial state h_0, slots 1...T are the layer's output.
    let hidden: FloatBuffer
    /// (B, H) dLoss/dh_{t-1} flowing back from step t.
    let hiddenNext: FloatBuffer
    /// (T*B) ones: a bias gradient is the gradient block's transpose times this.
    let ones: FloatBuffer
    /// (P) column sums of a gradient block.
    let biasSum: FloatBuffer
    /// W_hh^T (H, P) packed for the forward product h_{t-1} W_hh^T (PackedProduct.swift); made on first use, as
    /// generation (batch 1) never needs it.
    private var packedForward: PackedMatrix?
    /// W_hh (P, H) packed for the backward product dproduct_t W_hh.
    private var packedBackward: PackedMatrix?

    init(hiddenSize H: Int, width P: Int, length T: Int, batch B: Int) {
        hiddenSize = H
        width = P
        hidden = FloatBuffer(count: (T + 1) * B * H)
        hiddenNext = FloatBuffer(count: B * H)
        ones = FloatBuffer(count: T * B)
        ones.pointer.update(repeating: 1, count: T * B)
        biasSum = FloatBuffer(count: P)
    }

    /// The hidden state at slot t (t = 0 is h_0), as a (B, H) block.
    func hidden(at t: Int, batch B: Int) -> UnsafeMutablePointer<Float> { hidden.pointer + t * B * hiddenSize }

    /// The same block, read-only: what `RecurrentActivations.hiddenState` hands out.
    func hiddenState(at t: Int, batch B: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: hidden(at: t, batch: B), count: B * hiddenSize)
    }

    /// h_0 = 0 for B sequences.
    func resetHidden(batch B: Int) { hidden(at: 0, batch: B).update(repeating: 0, count: B * hiddenSize) }

    /// h_0 = h_T: the next pass starts where the last one ended.
    func carryHidden(length T: Int, batch B: Int) {
        hidden(at: 0, batch: B).update(from: hidden(at: T, batch: B), count: B * hiddenSize)
    }

    /// W_hh^T packed for the forward product with `kernel`'s panels.
    func forwardWeights(kernel: PackedKernel) -> PackedMatrix {
        if let packedForward, packedForward.kernel == kernel { return packedForward }
        let made = PackedMatrix(rows: hiddenSize, columns: width, kernel: kernel)
        packedForward = made
        return made
    }

    /// W_hh packed for the backward product with `kernel`'s panels.
    func backwardWeights(kernel: PackedKernel) -> PackedMatrix {
        if let packedBackward, packedBackward.kernel == kernel { return packedBackward }
        let made = PackedMatrix(rows: width, columns: hiddenSize, kernel: kernel)
        packedBackward = made
        return made
    }

    /// How many floats these buffers hold for T steps of B sequences (Resources.swift adds them up).
    static func floatCount(hiddenSize H: Double, width P: Double, length T: Double, batch B: Double) -> Double {
        let packedPadding = 64.0  // panels padded to the kernel's width, at most 64 columns
        return (T + 1) * B * H + B * H + T * B + P + 2 * H * ((P / packedPadding).rounded(.up) * packedPadding)
    }
}

/// Forward through T steps: for each t, product(t) (B, P) += (or =) h_{t-1} W_hh^T, then `cell(t, rows)` on the
/// given rows of the batch, which must write h_t (slot t+1 of `buffers.hidden`).
///
/// - Parameters:
///   - accumulate: whether the product adds to what `product(t)` holds (the LSTM and the RNN add it to the input
///     projection) or replaces it (the GRU keeps it apart, as its reset gate multiplies part of it).
///   - refreshWeights: whether to pack W_hh first (false only when the parameters have not changed since the last
///     pass with these buffers, as while generating).
func forwardThroughTime(
    weightHH: UnsafePointer<Float>, buffers: TimeLoopBuffers, product: (Int) -> UnsafeMutablePointer<Float>,
    accumulate: Bool, length T: Int, batch B: Int, refreshWeights: Bool, context: ComputeContext,
    cell: (_ t: Int, _ rows: Range<Int>) -> Void
) {
    let (H, P) = (buffers.hiddenSize, buffers.width)
    if B < PackedMatrix.blockRows {
        // Generation (batch 1) and other small batches: BLAS's matrix-vector product on W_hh as stored.
        for t in 0..<T {
            BLAS.gemm(.none, .transposed, m: B, n: P, k: H, a: buffers.hidden(at: t, batch: B), lda: H,
                      b: weightHH, ldb: H, beta: accumulate ? 1 : 0, c: product(t), ldc: P, context: context)
            cell(t, 0..<B)
        }
        return
    }
    let packed = buffers.forwardWeights(kernel: context.packedKernel)
    context.team.run { member in
        let panels = member.share(of: packed.panelCount)
        let rows = member.share(of: B)
        // Each thread packs the panels it multiplies with, so no barrier is needed before the loop.
        if refreshWeights { packed.pack(weightHH, transposed: true, panels: panels) }
        for t in 0..<T {
            // Recurrent product: product_t(B, P) (+)= h_{t-1}(B, H) * W_hh^T(H, P), this thread's columns.
            packed.multiply(buffers.hidden(at: t, batch: B), lda: H, rows: B, panels: panels,
                            into: product(t), ldc: P, accumulate: accumulate)
            member.barrier()
            if !rows.isEmpty { cell(t, rows) }  // the cell, this thread's rows
            member.barrier()
        }
    }
}

/// Backward through T steps, the mirror of `forwardThroughTime`. For each t from T-1 down: `cell(t, rows)` reads
/// dLoss/dh_t from above plus `buffers.hiddenNext` (from step t+1) and writes dLoss/d(product_t) into step t's
/// (B, P) block of `productGradient` and, when `accumulate` is true, the part of dLoss/dh_{t-1} that does not flow
/// through W_hh into `buffers.hiddenNext`; then hiddenNext (+)= dproduct_t W_hh. After the loop:
/// dW_hh(P, H) += dproduct^T(P, T*B) * h_{0...T-1}(T*B, H). The bias gradients are the kind's (`addColumnSums`).
///
/// - Parameters:
///   - productGradient: (T, B, P) dLoss/d(product), filled by `cell` one step at a time.
///   - accumulate: whether the cell leaves part of dLoss/dh_{t-1} in `hiddenNext` for the product to add to (the
///     GRU: h_t = (1 - z) n + z h_{t-1}), or the product alone makes it (the LSTM and the RNN).
func backwardThroughTime(
    weightHH: UnsafePointer<Float>, weightHHGradient: UnsafeMutablePointer<Float>, buffers: TimeLoopBuffers,
    productGradient: UnsafeMutablePointer<Float>, accumulate: Bool, length T: Int, batch B: Int,
    context: ComputeContext, cell: (_ t: Int, _ rows: Range<Int>) -> Void
) {
    let (H, P) = (buffers.hiddenSize, buffers.width)
    let dHiddenNext = buffers.hiddenNext.pointer
    buffers.hiddenNext.zero()
    let packed = buffers.backwardWeights(kernel: context.packedKernel)
    context.team.run { member in
        let panels = member.share(of: packed.panelCount)
        let rows = member.share(of: B)
        packed.pack(weightHH, transposed: false, panels: panels)
        for t in stride(from: T - 1, through: 0, by: -1) {
            if !rows.isEmpty { cell(t, rows) }  // through the cell, this thread's rows
            member.barrier()
            // through h_{t-1} * W_hh^T: dh_{t-1}(B, H) (+)= dproduct_t(B, P) * W_hh(P, H), this thread's columns.
            if t > 0 {
                packed.multiply(productGradient + t * B * P, lda: P, rows: B, panels: panels, into: dHiddenNext,
                                ldc: H, accumulate: accumulate)
            }
            member.barrier()
        }
    }
    // dW_hh(P, H) += dproduct^T(P, T*B) * h_{t-1}(T*B, H), as one product over all T*B rows: slots 0..<T of
    // `hidden` are h_0 ... h_{T-1}.
    Products.gemm(.transposed, .none, m: P, n: H, k: T * B, a: productGradient, lda: P, b: buffers.hidden.pointer,
                  ldb: H, beta: 1, c: weightHHGradient, ldc: H, context: context)
}

/// (P) += the column sums of a (T*B, P) gradient block: the gradient of a bias added to every row.
func addColumnSums(of gradient: UnsafePointer<Float>, rows: Int, buffers: TimeLoopBuffers,
                   into biasGradients: [UnsafeMutablePointer<Float>], context: ComputeContext) {
    let P = buffers.width
    BLAS.gemv(.transposed, rows: rows, cols: P, a: gradient, lda: P, x: buffers.ones.pointer, beta: 0,
              y: buffers.biasSum.pointer, context: context)
    let sums = buffers.biasSum.pointer
    for bias in biasGradients {
        for j in 0..<P { bias[j] += sums[j] }
    }
}
