// The whole network: Embedding (V x E) -> L LSTM layers (H) -> Linear (H -> V), forward and backward side by side.
// Parameters and gradients live in two flat buffers laid out by `ParameterLayout`; activations live in a
// `ModelWorkspace` allocated once per (T, B) and reused. Loss is in Loss.swift, the LSTM layer in LSTM.swift.
//
// Embedding then layer 0's input projection is, for each character v, the same (4H) row:
// embedding[v] W_ih0^T + b_ih0 + b_hh0. The forward pass computes those V rows once (a (V, 4H) table) and looks
// them up, instead of multiplying T*B embedding rows; backward sums the gate gradients per character and
// multiplies only the V sums.

import Foundation

/// Buffers for one forward and backward pass over up to T steps of B sequences. Allocate once and reuse.
public final class ModelWorkspace {
    /// Largest T and B this workspace holds.
    public let maxSteps: Int, maxBatch: Int
    /// (T, B) token indices: inputs and targets, time-major.
    public let inputs: UnsafeMutablePointer<Int32>
    public let targets: UnsafeMutablePointer<Int32>
    /// (V, 4H) layer 0's input projection of every character: embedding W_ih0^T + b_ih0 + b_hh0.
    let inputTable: FloatBuffer
    /// (V, 4H) dLoss/d(inputTable): layer 0's gate gradients summed per character.
    let inputTableGradient: FloatBuffer
    /// One per layer.
    let layers: [LSTMActivations]
    /// (T, B, H) per layer boundary (L-1 of them, only when dropout > 0): 0 or 1/(1-p) for each output.
    public let dropoutMasks: [FloatBuffer]
    /// (T, B, H) per layer boundary: the masked outputs that feed the next layer.
    let droppedOutputs: [FloatBuffer]
    /// (T, B, V) output scores; the loss overwrites them with their gradient.
    public let logits: FloatBuffer
    /// (T, B, H) dLoss/d(output of the layer being back-propagated).
    let outputGradient: FloatBuffer
    /// (T, B, H) dLoss/d(input of the layer above layer 0 being back-propagated); empty when L = 1.
    let inputGradient: FloatBuffer
    let scratch: LSTMGradientScratch
    /// The threads that run this workspace's passes; nil means `ComputeThreads`'s team (tests pick their own).
    var team: ThreadTeam?

    public init(config: ModelConfig, steps T: Int, batch B: Int) {
        let (V, H, L) = (config.vocabularySize, config.hiddenSize, config.layerCount)
        maxSteps = T
        maxBatch = B
        inputs = .allocate(capacity: T * B)
        inputs.initialize(repeating: 0, count: T * B)
        targets = .allocate(capacity: T * B)
        targets.initialize(repeating: 0, count: T * B)
        inputTable = FloatBuffer(count: V * 4 * H)
        inputTableGradient = FloatBuffer(count: V * 4 * H)
        layers = (0..<L).map { _ in LSTMActivations(hiddenSize: H, steps: T, batch: B) }
        let boundaries = config.dropout > 0 ? L - 1 : 0
        dropoutMasks = (0..<boundaries).map { _ in FloatBuffer(count: T * B * H) }
        droppedOutputs = (0..<boundaries).map { _ in FloatBuffer(count: T * B * H) }
        logits = FloatBuffer(count: T * B * V)
        outputGradient = FloatBuffer(count: T * B * H)
        inputGradient = FloatBuffer(count: L > 1 ? T * B * H : 0)
        scratch = LSTMGradientScratch(hiddenSize: H, steps: T, batch: B)
    }

    deinit {
        inputs.deallocate()
        targets.deallocate()
    }

    /// Whether a pass of T steps over B sequences fits.
    public func fits(steps T: Int, batch B: Int) -> Bool { T <= maxSteps && B <= maxBatch }

    /// Sets the initial state (h_0, c_0) of every layer to zero for B sequences.
    public func resetState(batch B: Int) {
        for layer in layers {
            layer.hidden(at: 0, batch: B).update(repeating: 0, count: B * layer.hiddenSize)
            layer.cell(at: 0, batch: B).update(repeating: 0, count: B * layer.hiddenSize)
        }
    }

    /// Makes the final state of the last pass (slot T) the initial state of the next one, so generation can feed
    /// one character at a time.
    public func carryState(steps T: Int, batch B: Int) {
        for layer in layers {
            layer.hidden(at: 0, batch: B).update(from: layer.hidden(at: T, batch: B), count: B * layer.hiddenSize)
            layer.cell(at: 0, batch: B).update(from: layer.cell(at: T, batch: B), count: B * layer.hiddenSize)
        }
    }

    /// (B, H) cell state c_t of `layer` at slot t (t = 0 is the initial state).
    public func cellState(layer: Int, slot t: Int, batch B: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: layers[layer].cell(at: t, batch: B), count: B * layers[layer].hiddenSize)
    }
}

/// Whether a forward pass draws dropout masks.
public enum ForwardMode {
    /// Evaluation and generation: no dropout.
    case inference
    /// Training: dropout masks drawn from the generator (when the model's dropout is above zero).
    case training
}

/// The character-level LSTM language model.
public final class CharLSTM {
    public let config: ModelConfig
    public let layout: ParameterLayout
    /// Every parameter, laid out by `layout`.
    public let parameters: FloatBuffer
    /// dLoss/dparameter, same layout; backward accumulates here.
    public let gradients: FloatBuffer

    /// A model initialised as PyTorch initialises `nn.Embedding` (standard normal), `nn.LSTM` (uniform in
    /// +-1/sqrt(H), biases included) and `nn.Linear` (uniform in +-1/sqrt(H) for weight and bias).
    public convenience init(config: ModelConfig, generator: inout SeededGenerator) throws {
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
    public init(config: ModelConfig, parameters values: [Float]?) throws {
        try config.validate()
        self.config = config
        layout = ParameterLayout(config: config)
        if let values {
            guard values.count == layout.totalCount else {
                throw CharLMError.invalidSetting(
                    name: "parameters", message: "need \(layout.totalCount) values for this model; got \(values.count)")
            }
            parameters = FloatBuffer(values)
        } else {
            parameters = FloatBuffer(count: layout.totalCount)
        }
        gradients = FloatBuffer(count: layout.totalCount)
    }

    /// A workspace for passes of up to T steps over B sequences.
    public func makeWorkspace(steps T: Int, batch B: Int) -> ModelWorkspace {
        ModelWorkspace(config: config, steps: T, batch: B)
    }

    /// Forward pass over `workspace.inputs` (T, B): fills every layer's activations and `workspace.logits` (T, B, V).
    /// Starts from a zero state unless `carryState`, in which case slot 0 holds the state to continue from.
    /// `reuseDerivedWeights` skips rebuilding the input table and packed weights from the parameters: only for a
    /// pass that follows one with the same workspace and unchanged parameters (generation, one character at a time).
    public func forward(
        steps T: Int, batch B: Int, workspace: ModelWorkspace, mode: ForwardMode,
        generator: inout SeededGenerator, carryState: Bool = false, reuseDerivedWeights: Bool = false
    ) {
        precondition(workspace.fits(steps: T, batch: B), "workspace too small for T=\(T), B=\(B)")
        let (E, H, V) = (config.embeddingSize, config.hiddenSize, config.vocabularySize)
        let G = 4 * H
        let rows = T * B
        if !carryState { workspace.resetState(batch: B) }
        let team = workspace.team ?? ComputeThreads.team
        // Embedding and layer 0's input projection: gates_0 row r = table[token r], where
        // table(V, 4H) = embedding.weight(V, E) * W_ih0^T + b_ih0 + b_hh0.
        let table = workspace.inputTable.pointer
        if !reuseDerivedWeights {
            let layer0 = LSTMLayerWeights(layout.layers[0], in: parameters)
            for v in 0..<V {
                for j in 0..<G { table[v * G + j] = layer0.biasIH[j] + layer0.biasHH[j] }
            }
            BLAS.gemm(.none, .transposed, m: V, n: G, k: E,
                      a: parameters.pointer + layout.embedding.offset, lda: E, b: layer0.weightIH, ldb: E,
                      beta: 1, c: table, ldc: G)
        }
        let gates0 = workspace.layers[0].gates.pointer
        let inputs = workspace.inputs
        team.runParts(work: rows * G) { member in
            for r in member.share(of: rows) { (gates0 + r * G).update(from: table + Int(inputs[r]) * G, count: G) }
        }
        // LSTM layers, each above layer 0 projecting the (possibly dropped-out) output of the one below.
        var layerInput = UnsafePointer(gates0)
        for (l, views) in layout.layers.enumerated() {
            let activations = workspace.layers[l]
            let weights = LSTMLayerWeights(views, in: parameters)
            if l > 0 {
                lstmInputProjection(input: layerInput, inputSize: views.inputSize, weights: weights,
                                    gates: activations.gates.pointer, rows: rows, hiddenSize: H)
            }
            lstmForward(weights: weights, activations: activations, steps: T, batch: B,
                        refreshWeights: !reuseDerivedWeights, team: team)
            let output = activations.hidden(at: 1, batch: B)
            if l < workspace.dropoutMasks.count {
                let mask = workspace.dropoutMasks[l].pointer
                let dropped = workspace.droppedOutputs[l].pointer
                let count = rows * H
                if mode == .training {
                    let keep = 1 - config.dropout
                    let scale = 1 / keep
                    for index in 0..<count {
                        mask[index] = generator.nextFloat(in: 0, 1) < keep ? scale : 0
                    }
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
        let top = workspace.layers[config.layerCount - 1].hidden(at: 1, batch: B)
        let logits = workspace.logits.pointer
        let bias = parameters.pointer + layout.fcBias.offset
        for r in 0..<rows { (logits + r * V).update(from: bias, count: V) }
        BLAS.gemm(.none, .transposed, m: rows, n: V, k: H,
                  a: top, lda: H, b: parameters.pointer + layout.fcWeight.offset, ldb: H, beta: 1, c: logits, ldc: V)
    }

    /// Backward pass for the forward pass just run, given dLoss/dlogits in `workspace.logits`. Accumulates into
    /// `gradients`; the caller zeroes them once per step.
    public func backward(steps T: Int, batch B: Int, workspace: ModelWorkspace) {
        let (E, H, V) = (config.embeddingSize, config.hiddenSize, config.vocabularySize)
        let rows = T * B
        let dLogits = UnsafePointer(workspace.logits.pointer)
        let top = workspace.layers[config.layerCount - 1].hidden(at: 1, batch: B)
        let dOutput = workspace.outputGradient.pointer
        let grad = gradients.pointer
        let team = workspace.team ?? ComputeThreads.team
        // through the Linear layer:
        // dfc.weight(V, H) += dlogits^T(V, T*B) * h_top(T*B, H)
        BLAS.gemm(.transposed, .none, m: V, n: H, k: rows,
                  a: dLogits, lda: V, b: top, ldb: H, beta: 1, c: grad + layout.fcWeight.offset, ldc: H)
        // dfc.bias(V) += column sums of dlogits
        let dBias = grad + layout.fcBias.offset
        for r in 0..<rows {
            let row = dLogits + r * V
            for v in 0..<V { dBias[v] += row[v] }
        }
        // dh_top(T*B, H) = dlogits(T*B, V) * fc.weight(V, H)
        BLAS.gemm(.none, .none, m: rows, n: H, k: V,
                  a: dLogits, lda: V, b: parameters.pointer + layout.fcWeight.offset, ldb: H, beta: 0, c: dOutput, ldc: H)
        // through the LSTM layers, top to bottom.
        let dInput = workspace.inputGradient.pointer
        for l in stride(from: config.layerCount - 1, through: 0, by: -1) {
            let views = layout.layers[l]
            let activations = workspace.layers[l]
            let weights = LSTMLayerWeights(views, in: parameters)
            let layerGradients = LSTMLayerWeights(views, in: gradients)
            // through the recurrence: leaves dgates in activations.gates
            lstmBackward(weights: weights, gradients: layerGradients, activations: activations, steps: T, batch: B,
                         outputGradient: dOutput, scratch: workspace.scratch, team: team)
            if l > 0 {
                // through the input projection, to the output of layer l-1 ...
                let input = l - 1 < workspace.droppedOutputs.count
                    ? UnsafePointer(workspace.droppedOutputs[l - 1].pointer)
                    : UnsafePointer(workspace.layers[l - 1].hidden(at: 1, batch: B))
                lstmInputProjectionBackward(
                    input: input, inputSize: views.inputSize, weights: weights, gradients: layerGradients,
                    gates: activations.gates.pointer, rows: rows, hiddenSize: H, inputGradient: dInput)
                // ... and through the dropout mask between layer l-1 and l: doutput_{l-1} = dinput_l * mask
                let count = rows * H
                if l - 1 < workspace.dropoutMasks.count {
                    let mask = workspace.dropoutMasks[l - 1].pointer
                    for index in 0..<count { dOutput[index] = dInput[index] * mask[index] }
                } else {
                    dOutput.update(from: dInput, count: count)
                }
            } else {
                // through the row lookup: dtable[v](4H) = sum of the dgates rows whose input token is v
                let G = 4 * H
                let dGates = activations.gates.pointer
                let dTable = workspace.inputTableGradient.pointer
                workspace.inputTableGradient.zero()
                let inputs = workspace.inputs
                team.runParts(work: rows * G) { member in
                    // each thread sums its own columns of every row, so no two threads add to the same place
                    let columns = member.share(of: G)
                    for r in 0..<rows {
                        let destination = dTable + Int(inputs[r]) * G
                        let source = dGates + r * G
                        for j in columns { destination[j] += source[j] }
                    }
                }
                // through table = embedding W_ih0^T + biases (the biases' gradients were summed in lstmBackward):
                // dW_ih0(4H, E) += dtable^T(4H, V) * embedding(V, E)
                BLAS.gemm(.transposed, .none, m: G, n: E, k: V,
                          a: dTable, lda: G, b: parameters.pointer + layout.embedding.offset, ldb: E,
                          beta: 1, c: layerGradients.weightIH, ldc: E)
                // dembedding(V, E) += dtable(V, 4H) * W_ih0(4H, E)
                BLAS.gemm(.none, .none, m: V, n: E, k: G,
                          a: dTable, lda: G, b: weights.weightIH, ldb: E, beta: 1, c: grad + layout.embedding.offset, ldc: E)
            }
        }
    }

    /// Mean cross-entropy of the last forward pass against `workspace.targets`; with `gradient`, leaves
    /// dLoss/dlogits in `workspace.logits` ready for `backward`.
    public func loss(steps T: Int, batch B: Int, workspace: ModelWorkspace, gradient: Bool) -> Double {
        softmaxCrossEntropy(
            logits: workspace.logits.pointer, targets: workspace.targets, rows: T * B,
            classes: config.vocabularySize, gradient: gradient)
    }
}
