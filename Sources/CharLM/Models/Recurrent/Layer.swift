// The seam between the model and its recurrent layers. The model (Model.swift) owns everything that is the same for
// every kind of layer: the embedding, each layer's input projection x W_ih^T + bias for all T steps at once (a row
// lookup for layer 0), dropout between layers, the output layer, and the backward of each. A layer kind owns only
// its recurrence: the time loop forward and backward (the loop itself is shared: Recurrence.swift), the gradients
// of W_hh and the biases, and the state it carries between passes. Each kind (LSTM.swift, GRU.swift, RNN.swift) is
// a file with a type conforming to `RecurrentLayer`, a row in `LayerKind` (Parameters.swift: its PyTorch name and
// gate count) and a case in `makeRecurrentLayer`; nothing in the trainer, the sampler or the shell changes.
//
// Shapes: P = gateCount * H, the width of a layer's input projection (4H for the LSTM, 3H for the GRU, H for the
// RNN); sequence buffers are time-major (T, B, X), as everywhere in the package (see LSTM.swift).

/// One recurrent layer: its parameters' views and its recurrence, forward and backward.
protocol RecurrentLayer {
    /// Names and offsets of this layer's tensors in the flat buffers.
    var views: RecurrentLayerViews { get }

    /// The (P) row the input projection adds to every x W_ih^T row, from `parameters` (the LSTM: b_ih + b_hh).
    func projectionBias(_ parameters: FloatBuffer, into row: UnsafeMutablePointer<Float>)

    /// Buffers for passes of up to T steps over B sequences.
    func makeActivations(length T: Int, batch B: Int) -> RecurrentActivations

    /// Forward through T steps from the state in slot 0 of `activations`, whose `projection` holds each step's
    /// input projection (bias included) on entry. Fills the outputs h_1 ... h_T.
    ///
    /// - Parameter refreshWeights: false only when the parameters have not changed since the last pass with these
    ///   activations (generation, one character at a time), so derived copies of the weights may be reused.
    func forward(parameters: FloatBuffer, activations: RecurrentActivations, length T: Int, batch B: Int,
                 refreshWeights: Bool, context: ComputeContext)

    /// Backward through T steps for the forward pass just run. Leaves dLoss/d(input projection) (T, B, P) in
    /// `activations.projection`, and accumulates the gradients of W_hh and both biases into `gradients`.
    ///
    /// - Parameter outputGradient: (T, B, H) dLoss/dh_t for t = 1...T from above.
    func backward(parameters: FloatBuffer, gradients: FloatBuffer, activations: RecurrentActivations, length T: Int,
                  batch B: Int, outputGradient: UnsafePointer<Float>, context: ComputeContext)
}

/// What one layer keeps between its forward and backward passes, and the state it carries between passes.
protocol RecurrentActivations: AnyObject {
    /// (T, B, P): the input projection before forward; after it, the gate activations in the kind's block order
    /// (LSTM i, f, g, o; GRU r, z, n; the RNN's h_t); dLoss/d(input projection) after backward.
    var projection: FloatBuffer { get }
    /// (T, B, H) the outputs h_1 ... h_T of the last forward pass, contiguous.
    func outputs(batch B: Int) -> UnsafeMutablePointer<Float>
    /// Sets the state carried into the next pass (h_0, and c_0 for the LSTM) to zero for B sequences.
    func resetState(batch B: Int)
    /// Makes the state after the last pass's step T the state the next pass starts from.
    func carryState(length T: Int, batch B: Int)
    /// (B, H) the layer's memory at slot t (t = 0 is the initial state): the cell state c_t for the LSTM, the
    /// hidden state h_t for the GRU and the RNN. What `cells` shows.
    func memory(at t: Int, batch B: Int) -> UnsafeBufferPointer<Float>
    /// (B, H) the hidden state h_t at slot t (t = 0 is the initial state).
    func hiddenState(at t: Int, batch B: Int) -> UnsafeBufferPointer<Float>
}

/// The layer object for `views.kind`.
func makeRecurrentLayer(_ views: RecurrentLayerViews) -> RecurrentLayer {
    switch views.kind {
    case .lstm: return LSTMLayer(views: views)
    case .gru: return GRULayer(views: views)
    case .rnn: return RNNLayer(views: views)
    }
}

/// Raw pointers to one layer's parameter tensors (or their gradients) inside a flat buffer.
struct LayerWeights {
    /// (P, in)
    let weightIH: UnsafeMutablePointer<Float>
    /// (P, H)
    let weightHH: UnsafeMutablePointer<Float>
    /// (P)
    let biasIH: UnsafeMutablePointer<Float>
    /// (P)
    let biasHH: UnsafeMutablePointer<Float>

    init(_ views: RecurrentLayerViews, in buffer: FloatBuffer) {
        weightIH = buffer.pointer + views.weightIH.offset
        weightHH = buffer.pointer + views.weightHH.offset
        biasIH = buffer.pointer + views.biasIH.offset
        biasHH = buffer.pointer + views.biasHH.offset
    }
}
