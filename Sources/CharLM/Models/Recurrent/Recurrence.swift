// The time loop every recurrent layer shares (LSTM.swift, GRU.swift, RNN.swift): the recurrent product
// h_{t-1} W_hh^T on the packed kernel, then the kind's element-wise cell, step after step forward; the cell's
// derivative, then the product with W_hh, step after step backward; and, after the backward loop, dW_hh and the
// bias gradients as whole-sequence products. A layer kind supplies only its cell (GateKernels.swift) and where the
// recurrent product goes.
//
// The loop runs on every thread of the context's team, as one job per pass. Fused (`TimeLoop.fused`, the default),
// each thread owns a group of hidden units, whole panels of the packed kernel's width: forward, it multiplies h_{t-1}
// by its units' columns of every gate's block of W_hh^T (all B rows) and runs the cell on those units straight
// away, as generation's stepper does (Stepper.swift); then one barrier, so that every thread sees all of h_t before
// the next product. Backward, it runs the cell's derivative on its units (all B rows), waits once for the others'
// dLoss/d(product_t), and computes its units' columns of dLoss/dh_{t-1}, which its next cell reads. Split
// (`TimeLoop.split`, the loop before), the product is cut by columns, then after a barrier the cell by rows of the
// batch, then a barrier again. Each element is computed by the same arithmetic in the same order either way, so the
// two give the same bits (TimeLoopTests). Batches smaller than the kernel's six rows (generation) take BLAS's
// matrix-vector product forward instead.
//
// W_hh^T is packed per gate, as G blocks of (H, H) (G = gateCount), so that a unit's columns sit in the same panel of
// every gate's block whatever H is; W_hh (P, H) is packed whole for backward, its panels being units already.
//
// Shapes: P = G * H; `product(t)` is a (B, P) block whose rows are P apart, gate g's columns at g * H.

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
    /// G = P / H gate blocks.
    var gateCount: Int { width / hiddenSize }
    /// Per gate g, W_g^T (H, H) packed for the forward product h_{t-1} W_hh^T (PackedProduct.swift), W_g being rows
    /// g*H ..< (g+1)*H of W_hh; made on first use, as generation (batch 1) never needs them.
    private var packedForward: [PackedMatrix] = []
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

    /// Each gate's block of W_hh^T packed for the forward product with `kernel`'s panels.
    func forwardWeights(kernel: PackedKernel) -> [PackedMatrix] {
        if let first = packedForward.first, first.kernel == kernel { return packedForward }
        packedForward = (0..<gateCount).map { _ in PackedMatrix(rows: hiddenSize, columns: hiddenSize, kernel: kernel) }
        return packedForward
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
        // W_hh^T per gate and W_hh, each P rows of H columns padded to whole panels
        return (T + 1) * B * H + B * H + T * B + P + 2 * P * ((H / packedPadding).rounded(.up) * packedPadding)
    }
}

/// How a member of the team takes its part of each step: its units (fused), or its columns of the product and its
/// rows of the batch (split).
private struct StepShare {
    /// Its panels of W_hh^T's gate blocks and of W_hh, numbered 0 ..< G * unit panels forward (gate-major) and
    /// 0 ..< unit panels backward; fused, the panels of its units.
    let forwardPanels: Range<Int>
    let backwardPanels: Range<Int>
    /// The rows of the batch and the units its cell runs on: all rows and its units (fused), or its rows and all
    /// units (split).
    let cellRows: Range<Int>
    let cellUnits: Range<Int>
    let fused: Bool

    init(member: TeamMember, fused: Bool, unitPanels: Int, panelWidth: Int, gateCount G: Int, hiddenSize H: Int,
         batch B: Int) {
        self.fused = fused
        let panels = member.share(of: unitPanels)
        // fused: the member's hidden units, whole panels of the packed kernel (the same in every gate's block)
        let units = min(H, panels.lowerBound * panelWidth)..<min(H, panels.upperBound * panelWidth)
        backwardPanels = panels
        forwardPanels = fused ? panels : member.share(of: G * unitPanels)
        cellRows = fused ? 0..<B : member.share(of: B)
        cellUnits = fused ? units : 0..<H
    }

    /// Whether the member has a cell to run.
    var hasCell: Bool { !cellRows.isEmpty && !cellUnits.isEmpty }

    /// Gate g's panels among the member's forward panels (fused: all its unit panels, in every gate).
    func panels(ofGate g: Int, unitPanels n: Int) -> Range<Int> {
        if fused { return forwardPanels }
        let lower = max(forwardPanels.lowerBound, g * n), upper = min(forwardPanels.upperBound, (g + 1) * n)
        return lower < upper ? (lower - g * n)..<(upper - g * n) : 0..<0
    }
}

/// Whether a loop of H units on `context` runs fused: as the context asks, unless its unit panels (H in panels of
/// the time loops' kernel) would leave the members' shares uneven by more than a quarter (fewer panels than 4 per
/// member, not a multiple of the team's size: H 100 in two 64-column panels on 3 threads), where the split loop
/// shares the work more evenly. Both give the same bits.
func runsFused(_ context: ComputeContext, hiddenSize H: Int) -> Bool {
    let width = context.packedKernel.panelWidth
    let (size, n) = (context.team.size, (H + width - 1) / width)
    return context.timeLoop == .fused && (n % size == 0 || n >= 4 * size)
}

/// Forward through T steps: for each t, product(t) (B, P) += (or =) h_{t-1} W_hh^T, then `cell(t, rows, units)` on
/// the given rows of the batch and hidden units, which must write those units of h_t (slot t+1 of
/// `buffers.hidden`) and may read only those units' columns of product(t) (each gate's). See the top of the file.
///
/// - Parameters:
///   - accumulate: whether the product adds to what `product(t)` holds (the LSTM and the RNN add it to the input
///     projection) or replaces it (the GRU keeps it apart, as its reset gate multiplies part of it).
///   - refreshWeights: whether to pack W_hh first (false only when the parameters have not changed since the last
///     pass with these buffers, as while generating).
func forwardThroughTime(
    weightHH: UnsafePointer<Float>, buffers: TimeLoopBuffers, product: (Int) -> UnsafeMutablePointer<Float>,
    accumulate: Bool, length T: Int, batch B: Int, refreshWeights: Bool, context: ComputeContext,
    cell: (_ t: Int, _ rows: Range<Int>, _ units: Range<Int>) -> Void
) {
    let (H, P, G) = (buffers.hiddenSize, buffers.width, buffers.gateCount)
    if B < PackedMatrix.blockRows {
        // Generation (batch 1) and other small batches: BLAS's matrix-vector product on W_hh as stored.
        for t in 0..<T {
            BLAS.gemm(.none, .transposed, m: B, n: P, k: H, a: buffers.hidden(at: t, batch: B), lda: H,
                      b: weightHH, ldb: H, beta: accumulate ? 1 : 0, c: product(t), ldc: P, context: context)
            cell(t, 0..<B, 0..<H)
        }
        return
    }
    let packed = buffers.forwardWeights(kernel: context.packedKernel)
    let (unitPanels, panelWidth) = (packed[0].panelCount, packed[0].panelWidth)
    let fused = runsFused(context, hiddenSize: H)
    context.team.run { member in
        let share = StepShare(member: member, fused: fused, unitPanels: unitPanels, panelWidth: panelWidth,
                              gateCount: G, hiddenSize: H, batch: B)
        // Each thread packs the panels it multiplies with, so no barrier is needed before the loop.
        if refreshWeights {
            for g in 0..<G {
                packed[g].pack(weightHH + g * H * H, transposed: true,
                               panels: share.panels(ofGate: g, unitPanels: unitPanels))
            }
        }
        for t in 0..<T {
            // Recurrent product: product_t(B, P) (+)= h_{t-1}(B, H) * W_hh^T(H, P), this thread's panels of each
            // gate's (B, H) block.
            for g in 0..<G {
                packed[g].multiply(buffers.hidden(at: t, batch: B), lda: H, rows: B,
                                   panels: share.panels(ofGate: g, unitPanels: unitPanels), into: product(t) + g * H,
                                   ldc: P, accumulate: accumulate)
            }
            // Split: the cell's rows need every thread's columns.
            if !fused { member.barrier() }
            if share.hasCell { cell(t, share.cellRows, share.cellUnits) }
            // h_t complete before anyone's next product reads it
            member.barrier()
        }
    }
}

/// Backward through T steps, the mirror of `forwardThroughTime`. For each t from T-1 down: `cell(t, rows, units)`
/// reads dLoss/dh_t from above plus `buffers.hiddenNext` (from step t+1) for those rows and units, and writes those
/// units' columns of dLoss/d(product_t) into step t's (B, P) block of `productGradient` and, when `accumulate` is
/// true, the part of dLoss/dh_{t-1} that does not flow through W_hh into those units of `buffers.hiddenNext`; then
/// hiddenNext (+)= dproduct_t W_hh. After the loop: dW_hh(P, H) += dproduct^T(P, T*B) * h_{0...T-1}(T*B, H). The
/// bias gradients are the kind's (`addColumnSums`).
///
/// - Parameters:
///   - productGradient: (T, B, P) dLoss/d(product), filled by `cell` one step at a time.
///   - accumulate: whether the cell leaves part of dLoss/dh_{t-1} in `hiddenNext` for the product to add to (the
///     GRU: h_t = (1 - z) n + z h_{t-1}), or the product alone makes it (the LSTM and the RNN).
func backwardThroughTime(
    weightHH: UnsafePointer<Float>, weightHHGradient: UnsafeMutablePointer<Float>, buffers: TimeLoopBuffers,
    productGradient: UnsafeMutablePointer<Float>, accumulate: Bool, length T: Int, batch B: Int,
    context: ComputeContext, cell: (_ t: Int, _ rows: Range<Int>, _ units: Range<Int>) -> Void
) {
    let (H, P, G) = (buffers.hiddenSize, buffers.width, buffers.gateCount)
    let dHiddenNext = buffers.hiddenNext.pointer
    buffers.hiddenNext.zero()
    let packed = buffers.backwardWeights(kernel: context.packedKernel)
    let fused = runsFused(context, hiddenSize: H)
    context.team.run { member in
        let share = StepShare(member: member, fused: fused, unitPanels: packed.panelCount,
                              panelWidth: packed.panelWidth, gateCount: G, hiddenSize: H, batch: B)
        packed.pack(weightHH, transposed: false, panels: share.backwardPanels)
        for t in stride(from: T - 1, through: 0, by: -1) {
            if share.hasCell { cell(t, share.cellRows, share.cellUnits) }  // through the cell
            // dproduct_t complete (every unit's columns) before anyone's product reads it
            member.barrier()
            // through h_{t-1} * W_hh^T: dh_{t-1}(B, H) (+)= dproduct_t(B, P) * W_hh(P, H), this thread's columns
            // (fused: its units, which its next cell reads, so no barrier between).
            if t > 0 {
                packed.multiply(productGradient + t * B * P, lda: P, rows: B, panels: share.backwardPanels,
                                into: dHiddenNext, ldc: H, accumulate: accumulate)
            }
            // Split: the next cell's rows need every thread's columns.
            if !fused { member.barrier() }
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
