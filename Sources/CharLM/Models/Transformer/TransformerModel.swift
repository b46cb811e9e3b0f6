// The whole transformer, forward and backward side by side: nanoGPT's GPT (karpathy/nanoGPT model.py),
//
//   x = drop(wte[token] + wpe[position])
//   for each block:  x = x + drop(c_proj(attention(ln_1(x))))      attention: causal, NH heads, softmax weights dropped
//                    x = x + drop(c_proj(gelu(c_fc(ln_2(x)))))
//   logits = ln_f(x) wte^T                                          lm_head tied to wte
//
// Parameters and gradients live in two flat buffers laid out by `TransformerLayout`; activations live in a
// `TransformerPass` allocated once per (T, B) and reused. The layers are TransformerKernels.swift; the loss is
// Loss.swift; generation's cached decoder is TransformerDecoder.swift.

import Foundation

/// The activations one block keeps for backward, for N = T * B time-major rows.
final class TransformerBlockActivations {
    /// (N, E) the residual stream entering the block: ln_1's input.
    let input: FloatBuffer
    /// (N, E) ln_1(input), and (N) each row's mean and 1/std.
    let normalized1: FloatBuffer, mean1: FloatBuffer, rstd1: FloatBuffer
    /// (N, 3E) queries, keys and values.
    let qkv: FloatBuffer
    /// (B, NH, T, T) attention weights after the softmax, before dropout.
    let weights: FloatBuffer
    /// (B, NH, T, T) the weights' dropout mask; empty without dropout.
    let weightsMask: FloatBuffer
    /// (N, E) the heads' outputs side by side: c_proj's input.
    let attended: FloatBuffer
    /// (N, E) dropout mask on the attention branch's output; empty without dropout.
    let attentionMask: FloatBuffer
    /// (N, E) the residual stream after the attention branch: ln_2's input.
    let middle: FloatBuffer
    /// (N, E) ln_2(middle), and (N) each row's mean and 1/std.
    let normalized2: FloatBuffer, mean2: FloatBuffer, rstd2: FloatBuffer
    /// (N, 4E) c_fc's output, and GELU of it (the MLP's c_proj input).
    let expanded: FloatBuffer, activated: FloatBuffer
    /// (N, E) dropout mask on the MLP branch's output; empty without dropout.
    let mlpMask: FloatBuffer

    /// The buffers of one block; `attentionWeights` (B, NH, T, T), when given, is shared with other blocks (a pass
    /// for inference only: no backward reads a block's weights again); `masks` for dropout in training.
    init(config: TransformerConfig, length T: Int, batch B: Int, attentionWeights: FloatBuffer? = nil,
         masks wantsMasks: Bool = true) {
        let (E, N, NH) = (config.embeddingSize, T * B, config.headCount)
        let masks = wantsMasks && config.dropout > 0
        input = FloatBuffer(count: N * E)
        normalized1 = FloatBuffer(count: N * E)
        mean1 = FloatBuffer(count: N)
        rstd1 = FloatBuffer(count: N)
        qkv = FloatBuffer(count: N * 3 * E)
        weights = attentionWeights ?? FloatBuffer(count: B * NH * T * T)
        weightsMask = FloatBuffer(count: masks ? B * NH * T * T : 0)
        attended = FloatBuffer(count: N * E)
        attentionMask = FloatBuffer(count: masks ? N * E : 0)
        middle = FloatBuffer(count: N * E)
        normalized2 = FloatBuffer(count: N * E)
        mean2 = FloatBuffer(count: N)
        rstd2 = FloatBuffer(count: N)
        expanded = FloatBuffer(count: N * 4 * E)
        activated = FloatBuffer(count: N * 4 * E)
        mlpMask = FloatBuffer(count: masks ? N * E : 0)
    }

    /// Every buffer, for counting what a pass holds.
    var buffers: [FloatBuffer] {
        [input, normalized1, mean1, rstd1, qkv, weights, weightsMask, attended, attentionMask, middle, normalized2, mean2,
         rstd2, expanded, activated, mlpMask]
    }
}

/// Buffers for one forward and backward pass over up to T steps of B sequences (T at most the context), and the
/// compute context its passes run on. Allocate once and reuse.
public final class TransformerPass: ModelPass {
    let model: TransformerModel
    public let maxLength: Int, maxBatch: Int
    public let context: ComputeContext
    /// (T, B) token indices: inputs and targets, time-major.
    public let inputs: UnsafeMutablePointer<Int32>
    public let targets: UnsafeMutablePointer<Int32>
    /// (N, E) dropout mask on the embeddings' sum; empty without dropout.
    let embeddingMask: FloatBuffer
    /// One per block.
    let blocks: [TransformerBlockActivations]
    /// (N, E) the residual stream after the last block: ln_f's input.
    let final: FloatBuffer
    /// (N, E) ln_f(final), and (N) each row's mean and 1/std.
    let normalizedFinal: FloatBuffer, meanFinal: FloatBuffer, rstdFinal: FloatBuffer
    /// (T, B, V) output scores; the loss overwrites them with their gradient.
    public let logits: FloatBuffer
    /// (N, E) a branch's output before it joins the residual stream (forward), its gradient (backward).
    let branch: FloatBuffer
    /// (B, NH, T, T) the dropped-out attention weights (forward), then dLoss/d(weights) and dLoss/d(scores)
    /// (backward); shared by the blocks.
    let attentionScratch: FloatBuffer
    /// (N, E) dLoss/d(residual stream) at the point backward has reached.
    let streamGradient: FloatBuffer
    /// (N, E) dLoss/d(a LayerNorm's output), and dLoss/d(the heads' outputs).
    let normalizedGradient: FloatBuffer, attendedGradient: FloatBuffer
    /// (N, 4E) dLoss/d(qkv) in its first 3E columns of each row (attention), dLoss/d(expanded) (MLP).
    let wideGradient: FloatBuffer
    /// Whether the last forward pass drew dropout masks (training mode with dropout above zero).
    private(set) var dropping = false
    /// A pass for inference only (generation's prompt and its recomputed windows): its blocks share one (B, NH, T, T)
    /// buffer of attention weights, and it holds no dropout masks and no gradients, so its memory grows with T^2
    /// once, not once per block.
    let forInference: Bool

    init(model: TransformerModel, length T: Int, batch B: Int, context: ComputeContext, forInference: Bool = false) {
        let config = model.config
        precondition(T <= config.context, "a pass of T=\(T) in a context of \(config.context)")
        let (E, V, NH, N) = (config.embeddingSize, config.vocabularySize, config.headCount, T * B)
        self.model = model
        maxLength = T
        maxBatch = B
        self.context = context
        self.forInference = forInference
        let (training, gradientRows) = (!forInference, forInference ? 0 : N)
        inputs = .allocate(capacity: N)
        inputs.initialize(repeating: 0, count: N)
        targets = .allocate(capacity: N)
        targets.initialize(repeating: 0, count: N)
        embeddingMask = FloatBuffer(count: training && config.dropout > 0 ? N * E : 0)
        let sharedWeights = forInference ? FloatBuffer(count: B * NH * T * T) : nil
        blocks = (0..<config.layerCount).map { _ in
            TransformerBlockActivations(config: config, length: T, batch: B, attentionWeights: sharedWeights,
                                        masks: training)
        }
        final = FloatBuffer(count: N * E)
        normalizedFinal = FloatBuffer(count: N * E)
        meanFinal = FloatBuffer(count: N)
        rstdFinal = FloatBuffer(count: N)
        logits = FloatBuffer(count: N * V)
        branch = FloatBuffer(count: N * E)
        attentionScratch = FloatBuffer(count: training ? B * NH * T * T : 0)
        streamGradient = FloatBuffer(count: gradientRows * E)
        normalizedGradient = FloatBuffer(count: gradientRows * E)
        attendedGradient = FloatBuffer(count: gradientRows * E)
        wideGradient = FloatBuffer(count: gradientRows * 4 * E)
    }

    deinit {
        inputs.deallocate()
        targets.deallocate()
    }

    /// The floats this pass holds (what `TransformerConfig.passBytes` counts, less the tokens).
    var floatCount: Int {
        let own = [embeddingMask, final, normalizedFinal, meanFinal, rstdFinal, logits, branch, attentionScratch,
                   streamGradient, normalizedGradient, attendedGradient, wideGradient]
        var counted = Set<ObjectIdentifier>()  // the blocks of an inference pass share their attention weights
        return (own + blocks.flatMap(\.buffers)).reduce(0) { counted.insert(ObjectIdentifier($1)).inserted ? $0 + $1.count : $0 }
    }

    /// The attention of T steps over B sequences, as laid out in this pass.
    func attention(length T: Int, batch B: Int) -> CausalAttention {
        CausalAttention(length: T, batch: B, heads: model.config.headCount, headSize: model.config.headSize)
    }

    public func forward(length T: Int, batch B: Int, mode: ForwardMode, generator: inout SeededGenerator) {
        precondition(fits(length: T, batch: B), "pass too small for T=\(T), B=\(B)")
        precondition(!forInference || mode == .inference, "a pass for inference only cannot train")
        dropping = mode == .training && model.config.dropout > 0
        model.forward(length: T, batch: B, pass: self, generator: &generator)
    }

    public func backward(length T: Int, batch B: Int) {
        precondition(!forInference, "a pass for inference only holds no gradients")
        model.backward(length: T, batch: B, pass: self)
    }

    public func crossEntropySum(length T: Int, batch B: Int) -> Double {
        var unused = SeededGenerator(seed: 0)  // inference mode draws nothing
        forward(length: T, batch: B, mode: .inference, generator: &unused)
        return loss(length: T, batch: B, vocabularySize: model.config.vocabularySize, gradient: false) * Double(T * B)
    }
}

/// The transformer language model (nanoGPT's GPT).
public final class TransformerModel {
    public let config: TransformerConfig
    public let layout: TransformerLayout
    /// Every parameter, laid out by `layout`.
    public let parameters: FloatBuffer
    /// dLoss/dparameter, same layout; backward accumulates here.
    public let gradients: FloatBuffer

    /// A model initialised as nanoGPT initialises GPT: every weight matrix and both embeddings N(0, 0.02), each
    /// `c_proj.weight` N(0, 0.02 / sqrt(2L)), biases zero, LayerNorm weights one; drawn tensor by tensor in table
    /// order from `generator`.
    public convenience init(config: TransformerConfig, generator: inout SeededGenerator) throws {
        try self.init(config: config, parameters: nil)
        let p = parameters.pointer
        let projectionDeviation = 0.02 / Float(2 * config.layerCount).squareRoot()
        let layerNormWeights = Set((layout.blocks.flatMap { [$0.ln1Weight, $0.ln2Weight] } + [layout.lnFinalWeight]).map(\.name))
        for view in layout.views {
            if view.shape.count >= 2 {
                let deviation = view.name.hasSuffix("c_proj.weight") ? projectionDeviation : 0.02
                for index in view.range { p[index] = deviation * generator.nextStandardNormal() }
            } else if layerNormWeights.contains(view.name) {
                p.advanced(by: view.offset).update(repeating: 1, count: view.count)
            }  // biases stay zero
        }
    }

    /// A model with the given flat parameters (zeros when nil).
    public init(config: TransformerConfig, parameters values: [Float]?) throws {
        try config.validate()
        try MemoryBudget.checkModel(config)
        self.config = config
        layout = TransformerLayout(config: config)
        parameters = try layout.table.makeBuffer(values)
        gradients = FloatBuffer(count: layout.totalCount)
    }

    /// Buffers for passes of up to T (at most the context) steps over B sequences.
    public func makeTransformerPass(length T: Int, batch B: Int, context: ComputeContext = .machine,
                                    forInference: Bool = false) -> TransformerPass {
        TransformerPass(model: self, length: T, batch: B, context: context, forInference: forInference)
    }

    /// The parameter `view` in the flat buffer (nil for an absent bias).
    func weight(_ view: ParameterView?) -> UnsafeMutablePointer<Float>? { view.map { parameters.pointer + $0.offset } }
    /// The gradient of `view` in the flat buffer (nil for an absent bias).
    func gradient(_ view: ParameterView?) -> UnsafeMutablePointer<Float>? { view.map { gradients.pointer + $0.offset } }

    /// Forward over `pass.inputs` (T, B): fills every block's activations and `pass.logits` (T, B, V); draws dropout
    /// masks when `pass.dropping`.
    func forward(length T: Int, batch B: Int, pass: TransformerPass, generator: inout SeededGenerator) {
        let (E, V, N) = (config.embeddingSize, config.vocabularySize, T * B)
        let context = pass.context
        let dropping = pass.dropping
        /// A fresh dropout mask in `buffer` when dropping, else nil.
        func mask(_ buffer: FloatBuffer, count: Int) -> UnsafePointer<Float>? {
            guard dropping else { return nil }
            drawDropoutMask(buffer.pointer, count: count, dropout: config.dropout, generator: &generator)
            return UnsafePointer(buffer.pointer)
        }
        // x(N, E) = drop(wte[token] + wpe[t]), row t * B + b, into block 0's input (or ln_f's when L = 0)
        let stream0 = pass.blocks.first?.input ?? pass.final
        embed(inputs: pass.inputs, length: T, batch: B, into: stream0.pointer, context: context)
        if let embeddingMask = mask(pass.embeddingMask, count: N * E) {
            for i in 0..<(N * E) { stream0.pointer[i] *= embeddingMask[i] }
        }
        let attention = pass.attention(length: T, batch: B)
        for (l, views) in layout.blocks.enumerated() {
            let block = pass.blocks[l]
            // attention branch: middle = input + drop(c_proj(attention(ln_1(input))))
            LayerNorm.forward(input: block.input.pointer, weight: weight(views.ln1Weight)!, bias: weight(views.ln1Bias),
                              output: block.normalized1.pointer, mean: block.mean1.pointer, rstd: block.rstd1.pointer,
                              rows: N, width: E, context: context)
            Linear.forward(input: block.normalized1.pointer, weight: weight(views.attentionWeight)!,
                           bias: weight(views.attentionBias), output: block.qkv.pointer, rows: N, inputs: E,
                           outputs: 3 * E, context: context)
            let weightsMask = mask(block.weightsMask, count: B * config.headCount * T * T)
            attention.forward(qkv: block.qkv.pointer, weights: block.weights.pointer, mask: weightsMask,
                              dropped: pass.attentionScratch.pointer, output: block.attended.pointer, context: context)
            Linear.forward(input: block.attended.pointer, weight: weight(views.attentionProjectionWeight)!,
                           bias: weight(views.attentionProjectionBias), output: pass.branch.pointer, rows: N, inputs: E,
                           outputs: E, context: context)
            Residual.forward(input: block.input.pointer, branch: pass.branch.pointer,
                             mask: mask(block.attentionMask, count: N * E), output: block.middle.pointer, count: N * E,
                             context: context)
            // MLP branch: output = middle + drop(c_proj(gelu(c_fc(ln_2(middle)))))
            LayerNorm.forward(input: block.middle.pointer, weight: weight(views.ln2Weight)!, bias: weight(views.ln2Bias),
                              output: block.normalized2.pointer, mean: block.mean2.pointer, rstd: block.rstd2.pointer,
                              rows: N, width: E, context: context)
            Linear.forward(input: block.normalized2.pointer, weight: weight(views.mlpWeight)!, bias: weight(views.mlpBias),
                           output: block.expanded.pointer, rows: N, inputs: E, outputs: 4 * E, context: context)
            GELU.forward(input: block.expanded.pointer, output: block.activated.pointer, count: N * 4 * E, context: context)
            Linear.forward(input: block.activated.pointer, weight: weight(views.mlpProjectionWeight)!,
                           bias: weight(views.mlpProjectionBias), output: pass.branch.pointer, rows: N, inputs: 4 * E,
                           outputs: E, context: context)
            let output = l + 1 < pass.blocks.count ? pass.blocks[l + 1].input : pass.final
            Residual.forward(input: block.middle.pointer, branch: pass.branch.pointer,
                             mask: mask(block.mlpMask, count: N * E), output: output.pointer, count: N * E,
                             context: context)
        }
        // logits(N, V) = ln_f(x)(N, E) wte^T(E, V): the head is the token embedding
        LayerNorm.forward(input: pass.final.pointer, weight: weight(layout.lnFinalWeight)!, bias: weight(layout.lnFinalBias),
                          output: pass.normalizedFinal.pointer, mean: pass.meanFinal.pointer,
                          rstd: pass.rstdFinal.pointer, rows: N, width: E, context: context)
        Linear.forward(input: pass.normalizedFinal.pointer, weight: weight(layout.tokenEmbedding)!, bias: nil,
                       output: pass.logits.pointer, rows: N, inputs: E, outputs: V, context: context)
    }

    /// Backward for the forward pass just run, given dLoss/dlogits in `pass.logits`. Accumulates into `gradients`;
    /// the caller zeroes them once per step.
    func backward(length T: Int, batch B: Int, pass: TransformerPass) {
        let (E, V, N) = (config.embeddingSize, config.vocabularySize, T * B)
        let context = pass.context
        let dropping = pass.dropping
        func mask(_ buffer: FloatBuffer) -> UnsafePointer<Float>? { dropping ? UnsafePointer(buffer.pointer) : nil }
        let dStream = pass.streamGradient.pointer, dBranch = pass.branch.pointer
        let dNormalized = pass.normalizedGradient.pointer, dWide = pass.wideGradient.pointer
        // through the head, logits = ln_f(x) wte^T: dwte += dlogits^T ln_f(x); dln_f(x) = dlogits wte
        Linear.backward(outputGradient: pass.logits.pointer, input: pass.normalizedFinal.pointer,
                        weight: weight(layout.tokenEmbedding)!, weightGradient: gradient(layout.tokenEmbedding)!,
                        biasGradient: nil, inputGradient: dNormalized, rows: N, inputs: E, outputs: V, context: context)
        // through ln_f, to the residual stream (whose gradient starts here)
        pass.streamGradient.zero()
        LayerNorm.backward(outputGradient: dNormalized, input: pass.final.pointer, weight: weight(layout.lnFinalWeight)!,
                           mean: pass.meanFinal.pointer, rstd: pass.rstdFinal.pointer, inputGradient: dStream,
                           weightGradient: gradient(layout.lnFinalWeight)!, biasGradient: gradient(layout.lnFinalBias),
                           rows: N, width: E, context: context)
        let attention = pass.attention(length: T, batch: B)
        for (l, views) in layout.blocks.enumerated().reversed() {
            let block = pass.blocks[l]
            // through the MLP branch's residual: dmiddle = doutput (in place), dbranch = doutput * mask
            Residual.backward(streamGradient: dStream, mask: mask(block.mlpMask), branchGradient: dBranch, count: N * E,
                              context: context)
            // through c_proj, to GELU's output
            Linear.backward(outputGradient: dBranch, input: block.activated.pointer, weight: weight(views.mlpProjectionWeight)!,
                            weightGradient: gradient(views.mlpProjectionWeight)!,
                            biasGradient: gradient(views.mlpProjectionBias), inputGradient: dWide, rows: N, inputs: 4 * E,
                            outputs: E, context: context)
            // through GELU
            GELU.backward(input: block.expanded.pointer, gradient: dWide, count: N * 4 * E, context: context)
            // through c_fc, to ln_2's output
            Linear.backward(outputGradient: dWide, input: block.normalized2.pointer, weight: weight(views.mlpWeight)!,
                            weightGradient: gradient(views.mlpWeight)!, biasGradient: gradient(views.mlpBias),
                            inputGradient: dNormalized, rows: N, inputs: E, outputs: 4 * E, context: context)
            // through ln_2, added to dmiddle
            LayerNorm.backward(outputGradient: dNormalized, input: block.middle.pointer, weight: weight(views.ln2Weight)!,
                               mean: block.mean2.pointer, rstd: block.rstd2.pointer, inputGradient: dStream,
                               weightGradient: gradient(views.ln2Weight)!, biasGradient: gradient(views.ln2Bias),
                               rows: N, width: E, context: context)
            // through the attention branch's residual: dinput = dmiddle (in place), dbranch = dmiddle * mask
            Residual.backward(streamGradient: dStream, mask: mask(block.attentionMask), branchGradient: dBranch,
                              count: N * E, context: context)
            // through c_proj, to the heads' outputs
            Linear.backward(outputGradient: dBranch, input: block.attended.pointer,
                            weight: weight(views.attentionProjectionWeight)!,
                            weightGradient: gradient(views.attentionProjectionWeight)!,
                            biasGradient: gradient(views.attentionProjectionBias), inputGradient: pass.attendedGradient.pointer,
                            rows: N, inputs: E, outputs: E, context: context)
            // through the attention, to q, k and v: dqkv (N, 3E) in the wide gradient's first N * 3E floats
            attention.backward(outputGradient: pass.attendedGradient.pointer, qkv: block.qkv.pointer,
                               weights: block.weights.pointer, mask: mask(block.weightsMask),
                               scratch: pass.attentionScratch.pointer, qkvGradient: dWide, context: context)
            // through c_attn, to ln_1's output
            Linear.backward(outputGradient: dWide, input: block.normalized1.pointer, weight: weight(views.attentionWeight)!,
                            weightGradient: gradient(views.attentionWeight)!, biasGradient: gradient(views.attentionBias),
                            inputGradient: dNormalized, rows: N, inputs: E, outputs: 3 * E, context: context)
            // through ln_1, added to dinput
            LayerNorm.backward(outputGradient: dNormalized, input: block.input.pointer, weight: weight(views.ln1Weight)!,
                               mean: block.mean1.pointer, rstd: block.rstd1.pointer, inputGradient: dStream,
                               weightGradient: gradient(views.ln1Weight)!, biasGradient: gradient(views.ln1Bias),
                               rows: N, width: E, context: context)
        }
        // through the embeddings' dropout, and to wte and wpe: each row's gradient to its token's and its position's row
        if dropping {
            let embeddingMask = pass.embeddingMask.pointer
            for i in 0..<(N * E) { dStream[i] *= embeddingMask[i] }
        }
        embedBackward(inputs: pass.inputs, length: T, batch: B, streamGradient: dStream, context: context)
    }

    /// x(T, B, E): row t * B + b is wte[inputs[t * B + b]] + wpe[t].
    func embed(inputs: UnsafePointer<Int32>, length T: Int, batch B: Int, into x: UnsafeMutablePointer<Float>,
               context: ComputeContext) {
        let E = config.embeddingSize
        let (wte, wpe) = (weight(layout.tokenEmbedding)!, weight(layout.positionEmbedding)!)
        context.team.runParts(work: T * B * E) { member in
            for r in member.share(of: T * B) {
                let (token, position) = (wte + Int(inputs[r]) * E, wpe + (r / B) * E)
                let row = x + r * E
                for i in 0..<E { row[i] = token[i] + position[i] }
            }
        }
    }

    /// Backward of `embed`: dwte[inputs[r]] += dx[r], dwpe[t] += dx[r]; each thread adds its own columns.
    func embedBackward(inputs: UnsafePointer<Int32>, length T: Int, batch B: Int, streamGradient dx: UnsafePointer<Float>,
                       context: ComputeContext) {
        let E = config.embeddingSize
        let (dwte, dwpe) = (gradient(layout.tokenEmbedding)!, gradient(layout.positionEmbedding)!)
        context.team.runParts(work: T * B * E * 2) { member in
            let columns = member.share(of: E)
            if columns.isEmpty { return }
            for r in 0..<(T * B) {
                let (token, position) = (dwte + Int(inputs[r]) * E, dwpe + (r / B) * E)
                let row = dx + r * E
                for i in columns {
                    token[i] += row[i]
                    position[i] += row[i]
                }
            }
        }
    }
}
