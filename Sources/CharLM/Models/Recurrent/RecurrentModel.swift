// The whole network: Embedding (V x E) -> L recurrent layers (H) -> Linear (H -> V), forward and backward side by
// side. Parameters and gradients live in two flat buffers laid out by `RecurrentLayout`; activations live in a
// `ModelWorkspace` allocated once per (T, B) and reused. This file does what is the same for every kind of layer
// (Layer.swift): the embedding, each layer's input projection, dropout, the output layer; each layer runs its own
// recurrence (LSTM.swift). Loss is in Loss.swift.
//
// Embedding then layer 0's input projection is, for each character v, the same (P) row (P = 4H for the LSTM):
// embedding[v] W_ih0^T + layer 0's projection bias. The forward pass computes those V rows once (a (V, P) table) and
// looks them up, instead of multiplying T*B embedding rows; backward sums the projection gradients per character and
// multiplies only the V sums.

import Foundation

/// Buffers for one forward and backward pass over up to T steps of B sequences, and the compute context the passes
/// run on. Allocate once and reuse.
public final class ModelWorkspace {
    /// The model whose passes this workspace holds.
    let model: RecurrentModel
    /// Largest T and B this workspace holds.
    public let maxLength: Int, maxBatch: Int
    /// P = gateCount * H: the width of each layer's input projection.
    let projectionWidth: Int
    /// (T, B) token indices: inputs and targets, time-major.
    public let inputs: UnsafeMutablePointer<Int32>
    public let targets: UnsafeMutablePointer<Int32>
    /// (V, P) layer 0's input projection of every character: embedding W_ih0^T + projection bias.
    let inputTable: FloatBuffer
    /// (V, P) dLoss/d(inputTable): layer 0's projection gradients summed per character.
    let inputTableGradient: FloatBuffer
    /// One per layer.
    let layers: [RecurrentActivations]
    /// (T, B, H) per layer boundary (L-1 of them, only when dropout > 0): 0 or 1/(1-p) for each output.
    public let dropoutMasks: [FloatBuffer]
    /// (T, B, H) per layer boundary: the masked outputs that feed the next layer.
    let droppedOutputs: [FloatBuffer]
    /// (T, B, V) output scores; the loss overwrites them with their gradient.
    public let logits: FloatBuffer
    /// (T, B, H) dLoss/d(output of the layer being back-propagated).
    let outputGradient: FloatBuffer
    /// (T, B, H) dLoss/d(input of the layer above layer 0 being back-propagated), before the dropout mask below it;
    /// empty without dropout (or with one layer), where that gradient goes straight into `outputGradient`.
    let inputGradient: FloatBuffer
    /// The threads and kernels this workspace's passes run on.
    public let context: ComputeContext

    init(model: RecurrentModel, length T: Int, batch B: Int, context: ComputeContext) {
        let config = model.config
        let (V, H, L) = (config.vocabularySize, config.hiddenSize, config.layerCount)
        let P = config.layerKind.gateCount * H
        self.model = model
        maxLength = T
        maxBatch = B
        projectionWidth = P
        self.context = context
        inputs = .allocate(capacity: T * B)
        inputs.initialize(repeating: 0, count: T * B)
        targets = .allocate(capacity: T * B)
        targets.initialize(repeating: 0, count: T * B)
        inputTable = FloatBuffer(count: V * P)
        inputTableGradient = FloatBuffer(count: V * P)
        layers = model.layers.map { $0.makeActivations(length: T, batch: B) }
        let boundaries = config.dropout > 0 ? L - 1 : 0
        dropoutMasks = (0..<boundaries).map { _ in FloatBuffer(count: T * B * H) }
        droppedOutputs = (0..<boundaries).map { _ in FloatBuffer(count: T * B * H) }
        logits = FloatBuffer(count: T * B * V)
        outputGradient = FloatBuffer(count: T * B * H)
        inputGradient = FloatBuffer(count: boundaries > 0 ? T * B * H : 0)
    }

    deinit {
        inputs.deallocate()
        targets.deallocate()
    }

    /// Sets the initial state of every layer to zero for B sequences.
    public func resetState(batch B: Int) {
        for layer in layers { layer.resetState(batch: B) }
    }

    /// Makes the final state of the last pass (after step T) the initial state of the next one, so generation can
    /// feed one character at a time.
    public func carryState(length T: Int, batch B: Int) {
        for layer in layers { layer.carryState(length: T, batch: B) }
    }

    /// (B, H) the memory of `layer` at slot t (t = 0 is the initial state): the LSTM's cell state c_t, the GRU's
    /// and the RNN's hidden state h_t.
    public func cellState(layer: Int, slot t: Int, batch B: Int) -> UnsafeBufferPointer<Float> {
        layers[layer].memory(at: t, batch: B)
    }

    /// (B, P) the activations of `layer`'s blocks at step t (0 ... T-1) of the last forward pass, in the kind's block
    /// order (`LayerKind.blockNames`: LSTM i, f, g, o; GRU r, z, n): what `gates` counts. Only after a forward pass in
    /// inference mode, before any backward pass.
    public func gateActivations(layer: Int, step t: Int, batch B: Int) -> UnsafeBufferPointer<Float> {
        let P = projectionWidth
        return UnsafeBufferPointer(start: layers[layer].projection.pointer + t * B * P, count: B * P)
    }
}

/// The recurrent language model: Embedding -> L recurrent layers -> Linear.
public final class RecurrentModel {
    public let config: RecurrentConfig
    public let layout: RecurrentLayout
    /// The recurrent layers, bottom first.
    let layers: [RecurrentLayer]
    /// Every parameter, laid out by `layout`.
    public let parameters: FloatBuffer
    /// dLoss/dparameter, same layout; backward accumulates here.
    public let gradients: FloatBuffer

    /// A model initialised as PyTorch initialises `nn.Embedding` (standard normal), `nn.LSTM` and its kin (uniform
    /// in +-1/sqrt(H), biases included) and `nn.Linear` (uniform in +-1/sqrt(H) for weight and bias).
    public convenience init(config: RecurrentConfig, generator: inout SeededGenerator) throws {
        try self.init(config: config, parameters: nil)
        let p = parameters.pointer
        let embedding = layout.embedding
        for index in 0..<embedding.count { p[embedding.offset + index] = generator.nextStandardNormal() }
        let bound = 1 / Float(config.hiddenSize).squareRoot()
        for view in layout.views where view.name != embedding.name {
            for index in 0..<view.count { p[view.offset + index] = generator.nextFloat(in: -bound, bound) }
        }
    }

    /// A model with the given flat parameters (zeros when nil).
    public init(config: RecurrentConfig, parameters values: [Float]?) throws {
        try config.validate()
        try MemoryBudget.checkModel(config)
        self.config = config
        layout = RecurrentLayout(config: config)
        parameters = try layout.table.makeBuffer(values)
        gradients = FloatBuffer(count: layout.totalCount)
        layers = layout.layers.map(makeRecurrentLayer)
    }

    /// A workspace for passes of up to T steps over B sequences, run on `context`'s threads.
    public func makeWorkspace(length T: Int, batch B: Int, context: ComputeContext = .machine) -> ModelWorkspace {
        ModelWorkspace(model: self, length: T, batch: B, context: context)
    }

    /// Forward pass over `workspace.inputs` (T, B): fills every layer's activations and `workspace.logits` (T, B, V).
    /// Starts from a zero state unless `carryState`, in which case slot 0 holds the state to continue from.
    /// `reuseDerivedWeights` skips rebuilding the input table and packed weights from the parameters: only for a
    /// pass that follows one with the same workspace and unchanged parameters (generation, one character at a time).
    public func forward(
        length T: Int, batch B: Int, workspace: ModelWorkspace, mode: ForwardMode,
        generator: inout SeededGenerator, carryState: Bool = false, reuseDerivedWeights: Bool = false
    ) {
        precondition(workspace.fits(length: T, batch: B), "workspace too small for T=\(T), B=\(B)")
        let (H, V) = (config.hiddenSize, config.vocabularySize)
        let P = config.layerKind.gateCount * H
        let rows = T * B
        let context = workspace.context
        if !carryState { workspace.resetState(batch: B) }
        // Embedding and layer 0's input projection: projection_0 row r = table[token r], where
        // table(V, P) = embedding.weight(V, E) * W_ih0^T + layer 0's projection bias.
        let table = workspace.inputTable.pointer
        if !reuseDerivedWeights { fillInputTable(table, context: context) }
        let projection0 = workspace.layers[0].projection.pointer
        let inputs = workspace.inputs
        context.team.runParts(work: rows * P) { member in
            for r in member.share(of: rows) { (projection0 + r * P).update(from: table + Int(inputs[r]) * P, count: P) }
        }
        // The layers, each above layer 0 projecting the (possibly dropped-out) output of the one below.
        var layerInput: UnsafePointer<Float>? = nil
        for (l, layer) in layers.enumerated() {
            let activations = workspace.layers[l]
            if let layerInput {
                // projection(T*B, P) = input(T*B, in) * W_ih^T + projection bias
                let projection = activations.projection.pointer
                layer.projectionBias(parameters, into: projection)
                context.team.runParts(work: rows * P) { member in
                    for r in member.share(of: rows) where r > 0 { (projection + r * P).update(from: projection, count: P) }
                }
                let inputSize = layer.views.inputSize
                Products.gemm(.none, .transposed, m: rows, n: P, k: inputSize,
                          a: layerInput, lda: inputSize, b: parameters.pointer + layer.views.weightIH.offset,
                          ldb: inputSize, beta: 1, c: projection, ldc: P, context: context)
            }
            layer.forward(parameters: parameters, activations: activations, length: T, batch: B,
                          refreshWeights: !reuseDerivedWeights, context: context)
            let output = activations.outputs(batch: B)
            if l < workspace.dropoutMasks.count {
                let mask = workspace.dropoutMasks[l].pointer
                let dropped = workspace.droppedOutputs[l].pointer
                let count = rows * H
                if mode == .training {
                    drawDropoutMask(mask, count: count, dropout: config.dropout, generator: &generator)
                } else {
                    mask.update(repeating: 1, count: count)
                }
                for index in 0..<count { dropped[index] = output[index] * mask[index] }
                layerInput = UnsafePointer(dropped)
            } else {
                layerInput = UnsafePointer(output)
            }
        }
        // Linear: logits(T*B, V) = h_top(T*B, H) * fc.weight^T + fc.bias.
        let top = workspace.layers[config.layerCount - 1].outputs(batch: B)
        let logits = workspace.logits.pointer
        let bias = parameters.pointer + layout.fcBias.offset
        for r in 0..<rows { (logits + r * V).update(from: bias, count: V) }
        Products.gemm(.none, .transposed, m: rows, n: V, k: H,
                  a: top, lda: H, b: parameters.pointer + layout.fcWeight.offset, ldb: H, beta: 1, c: logits, ldc: V,
                  context: context)
    }

    /// (V, P) layer 0's input projection of every character: table = embedding.weight(V, E) * W_ih0^T + layer 0's
    /// projection bias. The forward pass looks its rows up; generation's stepper (Stepper.swift) reorders them.
    func fillInputTable(_ table: UnsafeMutablePointer<Float>, context: ComputeContext) {
        let (V, E) = (config.vocabularySize, config.embeddingSize)
        let P = config.layerKind.gateCount * config.hiddenSize
        layers[0].projectionBias(parameters, into: table)
        for v in 1..<max(1, V) { (table + v * P).update(from: table, count: P) }
        Products.gemm(.none, .transposed, m: V, n: P, k: E,
                      a: parameters.pointer + layout.embedding.offset, lda: E,
                      b: parameters.pointer + layers[0].views.weightIH.offset, ldb: E, beta: 1, c: table, ldc: P,
                      context: context)
    }

    /// Backward pass for the forward pass just run, given dLoss/dlogits in `workspace.logits`. Accumulates into
    /// `gradients`; the caller zeroes them once per step.
    public func backward(length T: Int, batch B: Int, workspace: ModelWorkspace) {
        let (E, H, V) = (config.embeddingSize, config.hiddenSize, config.vocabularySize)
        let P = config.layerKind.gateCount * H
        let rows = T * B
        let context = workspace.context
        let dLogits = UnsafePointer(workspace.logits.pointer)
        let top = workspace.layers[config.layerCount - 1].outputs(batch: B)
        let dOutput = workspace.outputGradient.pointer
        let grad = gradients.pointer
        // through the Linear layer:
        // dfc.weight(V, H) += dlogits^T(V, T*B) * h_top(T*B, H)
        Products.gemm(.transposed, .none, m: V, n: H, k: rows,
                  a: dLogits, lda: V, b: top, ldb: H, beta: 1, c: grad + layout.fcWeight.offset, ldc: H,
                  context: context)
        // dfc.bias(V) += column sums of dlogits
        let dBias = grad + layout.fcBias.offset
        for r in 0..<rows {
            let row = dLogits + r * V
            for v in 0..<V { dBias[v] += row[v] }
        }
        // dh_top(T*B, H) = dlogits(T*B, V) * fc.weight(V, H)
        Products.gemm(.none, .none, m: rows, n: H, k: V,
                  a: dLogits, lda: V, b: parameters.pointer + layout.fcWeight.offset, ldb: H, beta: 0, c: dOutput,
                  ldc: H, context: context)
        // through the recurrent layers, top to bottom.
        for l in stride(from: config.layerCount - 1, through: 0, by: -1) {
            let layer = layers[l]
            let activations = workspace.layers[l]
            // through the recurrence: leaves dprojection (T, B, P) in activations.projection
            layer.backward(parameters: parameters, gradients: gradients, activations: activations, length: T,
                           batch: B, outputGradient: dOutput, context: context)
            let dProjection = UnsafePointer(activations.projection.pointer)
            let dWeightIH = grad + layer.views.weightIH.offset
            let weightIH = parameters.pointer + layer.views.weightIH.offset
            if l > 0 {
                // through the input projection, to the output of layer l-1 ...
                let inputSize = layer.views.inputSize
                let input = l - 1 < workspace.droppedOutputs.count
                    ? UnsafePointer(workspace.droppedOutputs[l - 1].pointer)
                    : UnsafePointer(workspace.layers[l - 1].outputs(batch: B))
                // dW_ih(P, in) += dprojection^T(P, T*B) * input(T*B, in)
                Products.gemm(.transposed, .none, m: P, n: inputSize, k: rows,
                          a: dProjection, lda: P, b: input, ldb: inputSize, beta: 1, c: dWeightIH, ldc: inputSize,
                          context: context)
                // dinput(T*B, in) = dprojection(T*B, P) * W_ih(P, in): layer l's dOutput is spent, so without
                // dropout this is layer l-1's dOutput as it stands; with dropout, it goes through the mask between
                // layer l-1 and l: doutput_{l-1} = dinput_l * mask
                let masked = l - 1 < workspace.dropoutMasks.count
                let dInput = masked ? workspace.inputGradient.pointer : dOutput
                Products.gemm(.none, .none, m: rows, n: inputSize, k: P,
                          a: dProjection, lda: P, b: weightIH, ldb: inputSize, beta: 0, c: dInput, ldc: inputSize,
                          context: context)
                if masked {
                    let mask = workspace.dropoutMasks[l - 1].pointer
                    for index in 0..<(rows * H) { dOutput[index] = dInput[index] * mask[index] }
                }
            } else {
                // through the row lookup: dtable[v](P) = sum of the dprojection rows whose input token is v
                let dTable = workspace.inputTableGradient.pointer
                workspace.inputTableGradient.zero()
                let inputs = workspace.inputs
                context.team.runParts(work: rows * P) { member in
                    // each thread sums its own columns of every row, so no two threads add to the same place
                    let columns = member.share(of: P)
                    for r in 0..<rows {
                        let destination = dTable + Int(inputs[r]) * P
                        let source = dProjection + r * P
                        for j in columns { destination[j] += source[j] }
                    }
                }
                // through table = embedding W_ih0^T + bias (the biases' gradients were summed by the layer):
                // dW_ih0(P, E) += dtable^T(P, V) * embedding(V, E)
                Products.gemm(.transposed, .none, m: P, n: E, k: V,
                          a: dTable, lda: P, b: parameters.pointer + layout.embedding.offset, ldb: E,
                          beta: 1, c: dWeightIH, ldc: E, context: context)
                // dembedding(V, E) += dtable(V, P) * W_ih0(P, E)
                Products.gemm(.none, .none, m: V, n: E, k: P,
                          a: dTable, lda: P, b: weightIH, ldb: E, beta: 1, c: grad + layout.embedding.offset, ldc: E,
                          context: context)
            }
        }
    }

    /// Mean cross-entropy of the last forward pass against `workspace.targets`; with `gradient`, leaves
    /// dLoss/dlogits in `workspace.logits` ready for `backward`.
    public func loss(length T: Int, batch B: Int, workspace: ModelWorkspace, gradient: Bool) -> Double {
        softmaxCrossEntropy(
            logits: workspace.logits.pointer, targets: workspace.targets, rows: T * B,
            classes: config.vocabularySize, gradient: gradient)
    }
}
