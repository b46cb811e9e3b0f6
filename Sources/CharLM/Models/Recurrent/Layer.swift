// The seam between the model and its recurrent layers. The model (RecurrentModel.swift) owns everything that is the
// same for every kind of layer: the embedding, each layer's input projection x W_ih^T + bias for all T steps at once
// (a row lookup for layer 0), dropout between layers, the output layer, and the backward of each. A layer kind owns
// only its recurrence: the time loop forward and backward (the loop itself is shared: Recurrence.swift), the
// gradients of W_hh and the biases, and the state it carries between passes. Each kind (LSTM.swift, GRU.swift,
// RNN.swift) is a file with a type conforming to `TypedRecurrentLayer`, a row in `LayerKind` (RecurrentParameters.swift: its
// PyTorch name and gate count) and a case in `makeRecurrentLayer`; nothing in the trainer, the sampler or the shell
// changes.
//
// Types: the model holds layers of any kind, as `RecurrentLayer` values, and their buffers, as `RecurrentActivations`.
// A kind's passes are written against its own buffers, `LayerActivations<Kind>`: the buffers every kind has, written
// once here, and the kind's own (`Buffers`). The buffers keep the layer that made them, so the model's untyped call
// reaches the kind's typed pass through them (the `TypedRecurrentLayer` extension below), with no cast.
//
// Shapes: P = gateCount * H, the width of a layer's input projection (4H for the LSTM, 3H for the GRU, H for the
// RNN); sequence buffers are time-major (T, B, X), as everywhere in the package (see LSTM.swift).

/// One recurrent layer of any kind, as the model calls it: its parameters' views and its recurrence, forward and
/// backward.
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

    /// The views of the layer that made these buffers.
    var layerViews: RecurrentLayerViews { get }
    /// That layer's `forward` on these buffers, typed (`TypedRecurrentLayer`).
    func runForward(parameters: FloatBuffer, length T: Int, batch B: Int, refreshWeights: Bool,
                    context: ComputeContext)
    /// That layer's `backward` on these buffers, typed.
    func runBackward(parameters: FloatBuffer, gradients: FloatBuffer, length T: Int, batch B: Int,
                     outputGradient: UnsafePointer<Float>, context: ComputeContext)
}

/// A kind of recurrent layer, as written: its passes take its own buffers, `LayerActivations<Self>`, so they need no
/// cast. The extension below makes it a `RecurrentLayer`.
protocol TypedRecurrentLayer: RecurrentLayer {
    /// What the kind keeps besides the buffers every kind has (the LSTM's dLoss/dc, the GRU's recurrent product).
    associatedtype Buffers = Void
    /// Whether the kind carries a memory besides h (the LSTM's cell state c): `LayerActivations.memory` is then a
    /// buffer of its own, else the hidden states themselves.
    static var hasCellState: Bool { get }

    /// The kind's own buffers for passes of up to T steps over B sequences.
    func makeBuffers(length T: Int, batch B: Int) -> Buffers

    /// `RecurrentLayer.forward` on this kind's buffers; `weights` are this layer's tensors in the parameters.
    func forward(weights: LayerWeights, activations: LayerActivations<Self>, length T: Int, batch B: Int,
                 refreshWeights: Bool, context: ComputeContext)

    /// `RecurrentLayer.backward` on this kind's buffers; `gradients` are this layer's tensors in the gradients.
    func backward(weights: LayerWeights, gradients: LayerWeights, activations: LayerActivations<Self>,
                  length T: Int, batch B: Int, outputGradient: UnsafePointer<Float>, context: ComputeContext)
}

extension TypedRecurrentLayer {
    static var hasCellState: Bool { false }

    /// b_ih + b_hh: both biases enter the pre-activations unchanged (the LSTM and the RNN; the GRU has its own).
    func projectionBias(_ parameters: FloatBuffer, into row: UnsafeMutablePointer<Float>) {
        let weights = LayerWeights(views, in: parameters)
        for j in 0..<(views.kind.gateCount * views.hiddenSize) { row[j] = weights.biasIH[j] + weights.biasHH[j] }
    }

    func makeActivations(length T: Int, batch B: Int) -> RecurrentActivations {
        LayerActivations(layer: self, length: T, batch: B)
    }

    // The one place a layer of any kind meets its typed buffers: `activations` were made by this layer (or one with
    // the same views), which they keep, and run its typed pass.

    func forward(parameters: FloatBuffer, activations: RecurrentActivations, length T: Int, batch B: Int,
                 refreshWeights: Bool, context: ComputeContext) {
        precondition(activations.layerViews == views, "activations made for another layer")
        activations.runForward(parameters: parameters, length: T, batch: B, refreshWeights: refreshWeights,
                               context: context)
    }

    func backward(parameters: FloatBuffer, gradients: FloatBuffer, activations: RecurrentActivations, length T: Int,
                  batch B: Int, outputGradient: UnsafePointer<Float>, context: ComputeContext) {
        precondition(activations.layerViews == views, "activations made for another layer")
        activations.runBackward(parameters: parameters, gradients: gradients, length: T, batch: B,
                                outputGradient: outputGradient, context: context)
    }
}

extension TypedRecurrentLayer where Buffers == Void {
    func makeBuffers(length T: Int, batch B: Int) {}
}

/// What one layer keeps from its forward pass for the backward pass, and the state it carries between passes, sized
/// for up to T*B rows: the buffers every kind has, and the kind's own.
final class LayerActivations<Layer: TypedRecurrentLayer>: RecurrentActivations {
    // Fields of a fixed size first, whose offsets are then known without the generic class's metadata.
    /// H.
    let hiddenSize: Int
    /// P = gateCount * H.
    let width: Int
    /// (T, B, P) in the kind's block order. The input projection (bias included) before the forward pass, the
    /// activations after it (the LSTM's i, f, g, o; the GRU's r, z, n; the RNN's h_t), and dLoss/d(input projection)
    /// after the backward pass.
    let projection: FloatBuffer
    /// Hidden states, packed W_hh and backward's scratch (Recurrence.swift).
    let loop: TimeLoopBuffers
    /// (T+1, B, H) the layer's memory, slot 0 the initial state: the LSTM's cell states c_t, in a buffer of their
    /// own; for kinds without a cell state, the hidden states `loop.hidden` themselves.
    let memory: FloatBuffer
    /// The kind's own buffers.
    let own: Layer.Buffers
    /// The layer that made these buffers: `runForward` and `runBackward` run its passes on them.
    let layer: Layer

    init(layer: Layer, length T: Int, batch B: Int) {
        let H = layer.views.hiddenSize
        let P = layer.views.kind.gateCount * H
        self.layer = layer
        hiddenSize = H
        width = P
        projection = FloatBuffer(count: T * B * P)
        loop = TimeLoopBuffers(hiddenSize: H, width: P, length: T, batch: B)
        memory = Layer.hasCellState ? FloatBuffer(count: (T + 1) * B * H) : loop.hidden
        own = layer.makeBuffers(length: T, batch: B)
    }

    /// Step t's (B, P) block of `projection` (t = 0 ... T-1).
    func projection(at t: Int, batch B: Int) -> UnsafeMutablePointer<Float> { projection.pointer + t * B * width }

    // RecurrentActivations
    var layerViews: RecurrentLayerViews { layer.views }

    func runForward(parameters: FloatBuffer, length T: Int, batch B: Int, refreshWeights: Bool,
                    context: ComputeContext) {
        layer.forward(weights: LayerWeights(layer.views, in: parameters), activations: self, length: T, batch: B,
                      refreshWeights: refreshWeights, context: context)
    }

    func runBackward(parameters: FloatBuffer, gradients: FloatBuffer, length T: Int, batch B: Int,
                     outputGradient: UnsafePointer<Float>, context: ComputeContext) {
        layer.backward(weights: LayerWeights(layer.views, in: parameters),
                       gradients: LayerWeights(layer.views, in: gradients), activations: self, length: T, batch: B,
                       outputGradient: outputGradient, context: context)
    }

    func outputs(batch B: Int) -> UnsafeMutablePointer<Float> { loop.hidden(at: 1, batch: B) }

    func resetState(batch B: Int) {
        loop.resetHidden(batch: B)
        if Layer.hasCellState { memory.pointer.update(repeating: 0, count: B * hiddenSize) }
    }

    func carryState(length T: Int, batch B: Int) {
        loop.carryHidden(length: T, batch: B)
        let count = B * hiddenSize
        if Layer.hasCellState { memory.pointer.update(from: memory.pointer + T * count, count: count) }
    }

    func memory(at t: Int, batch B: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: memory.pointer + t * B * hiddenSize, count: B * hiddenSize)
    }

    func hiddenState(at t: Int, batch B: Int) -> UnsafeBufferPointer<Float> { loop.hiddenState(at: t, batch: B) }
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
