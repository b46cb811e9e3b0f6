// One GRU layer over a whole sequence (PyTorch's nn.GRU, one layer of it): forward and backward through time, side by
// side. The model computes the input projection x_t W_ih^T + bias for every step before the time loop (Layer.swift);
// the loop is Recurrence.swift's; the element-wise cell is in GateKernels.swift. Shape letters as in LSTM.swift.
//
// The cell (gate order r, z, n, as PyTorch stacks them in W_ih, W_hh, b_ih and b_hh):
//   r = sigmoid(x W_ir^T + b_ir + h_{t-1} W_hr^T + b_hr)              reset gate
//   z = sigmoid(x W_iz^T + b_iz + h_{t-1} W_hz^T + b_hz)              update gate
//   n = tanh(x W_in^T + b_in + r * (h_{t-1} W_hn^T + b_hn))           candidate
//   h_t = (1 - z) * n + z * h_{t-1}
// b_hn sits inside the reset gate's product, so unlike the LSTM the recurrent product cannot simply be added to the
// input projection: it goes to a buffer of its own, `recurrent`, and the cell combines the two. The input projection
// carries b_ih, plus b_hr and b_hz (which enter r and z unchanged); the cell adds b_hn.
//
// Memory: a layer keeps r, z, n (T, B, 3H), the recurrent product with u_n + b_hn in its n block (T, B, 3H) and the
// hidden states (T+1, B, H) for backward, which overwrites the first two with their gradients.

import Foundation

/// A GRU layer.
struct GRULayer: TypedRecurrentLayer {
    let views: RecurrentLayerViews

    /// b_ih + b_hh for r and z; b_in alone for n (b_hn goes inside the reset product, in the cell).
    func projectionBias(_ parameters: FloatBuffer, into row: UnsafeMutablePointer<Float>) {
        let weights = LayerWeights(views, in: parameters)
        let H = views.hiddenSize
        for j in 0..<(2 * H) { row[j] = weights.biasIH[j] + weights.biasHH[j] }
        for j in (2 * H)..<(3 * H) { row[j] = weights.biasIH[j] }
    }

    /// (T, B, 3H) h_{t-1} W_hh^T, its n block then u_n + b_hn, after the forward pass; dLoss/d(h_{t-1} W_hh^T + b_hh)
    /// after the backward pass.
    func makeBuffers(length T: Int, batch B: Int) -> FloatBuffer { FloatBuffer(count: T * B * 3 * views.hiddenSize) }

    /// Forward through T steps from h_0 in slot 0 of `activations`, whose `projection` holds each step's input
    /// projection on entry: the recurrent product goes to `recurrent`, then the cell makes r, z, n and h_t.
    func forward(weights: LayerWeights, activations: LayerActivations<GRULayer>, length T: Int, batch B: Int,
                 refreshWeights: Bool, context: ComputeContext) {
        let H = views.hiddenSize
        let biasHN = UnsafePointer(weights.biasHH + 2 * H)
        forwardThroughTime(
            weightHH: weights.weightHH, buffers: activations.loop,
            product: { activations.recurrent(at: $0, batch: B) }, accumulate: false, length: T, batch: B,
            refreshWeights: refreshWeights, context: context
        ) { t, rows, units in
            let (first, G) = (rows.lowerBound, 3 * H)
            gruCellForward(
                gates: activations.projection(at: t, batch: B) + first * G,
                recurrent: activations.recurrent(at: t, batch: B) + first * G, biasHN: biasHN,
                hiddenPrevious: activations.loop.hidden(at: t, batch: B) + first * H,
                hidden: activations.loop.hidden(at: t + 1, batch: B) + first * H, batch: rows.count, hiddenSize: H,
                units: units)
        }
    }

    /// Backward through T steps, the mirror of `forward`. Leaves dLoss/d(input projection) in
    /// `activations.projection`, and accumulates dW_hh, db_ih (the projection's gradient) and db_hh (the recurrent
    /// product's) into `gradients`.
    func backward(weights: LayerWeights, gradients: LayerWeights, activations: LayerActivations<GRULayer>,
                  length T: Int, batch B: Int, outputGradient: UnsafePointer<Float>, context: ComputeContext) {
        let H = views.hiddenSize
        let dHiddenNext = activations.loop.hiddenNext.pointer
        backwardThroughTime(
            weightHH: weights.weightHH, weightHHGradient: gradients.weightHH, buffers: activations.loop,
            productGradient: activations.recurrent.pointer, accumulate: true, length: T, batch: B, context: context
        ) { t, rows, units in
            let (G, offset) = (3 * H, rows.lowerBound * H)
            gruCellBackward(
                gates: activations.projection(at: t, batch: B) + rows.lowerBound * G,
                recurrent: activations.recurrent(at: t, batch: B) + rows.lowerBound * G,
                hiddenPrevious: activations.loop.hidden(at: t, batch: B) + offset,
                outputGradient: outputGradient + t * B * H + offset, hiddenGradient: dHiddenNext + offset,
                batch: rows.count, hiddenSize: H, units: units)
        }
        // b_ih enters the projection unchanged, b_hh the recurrent product (b_hn inside the reset gate's product).
        let rows = T * B
        addColumnSums(of: activations.projection.pointer, rows: rows, buffers: activations.loop,
                      into: [gradients.biasIH], context: context)
        addColumnSums(of: activations.recurrent.pointer, rows: rows, buffers: activations.loop,
                      into: [gradients.biasHH], context: context)
    }
}

/// The GRU's names for its buffers.
extension LayerActivations where Layer == GRULayer {
    /// (T, B, 3H) the recurrent product (`GRULayer.makeBuffers`).
    var recurrent: FloatBuffer { own }
    /// Step t's (B, 3H) block of `recurrent`.
    func recurrent(at t: Int, batch B: Int) -> UnsafeMutablePointer<Float> { own.pointer + t * B * width }
}
