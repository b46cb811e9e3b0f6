// The transformer's decoder (Models/LanguageModel.swift), with a KV cache: the prompt (its last C characters, as
// nanoGPT's `generate` crops it) is fed once through the training pass's code, which leaves every block's keys and
// values; each step then computes one new row per sequence, attending over the cached keys and values, at a cost
// linear in the positions so far.
//
// Past the context. The position embeddings are learned and absolute: a sequence longer than C cannot slide its cache
// (every cached key was computed at a position that has moved). So once a sequence holds C characters, each further
// step does what nanoGPT's `generate` does every step: a full forward pass over the last C characters, at positions 0
// to C-1, one sequence at a time. The scores, and so the characters drawn from the same random numbers, are those of
// nanoGPT's `generate` throughout; past the context every character costs a whole window's forward pass.

import Foundation

/// Feeds a prompt, then one character per sequence per step, keeping each block's keys and values.
final class TransformerDecoder: Decoder {
    let model: TransformerModel
    let batch: Int
    /// C.
    private let contextLength: Int
    /// Feeds the prompt, and recomputes a full window past the context: (C, 1).
    private let pass: TransformerPass
    /// Per block, (B, C, E) the keys and the values of every position so far: sequence b's position s at row
    /// b * C + s, head h at columns h*HS ..< (h+1)*HS.
    private let keys: [FloatBuffer], values: [FloatBuffer]
    /// (B, C) each sequence's last characters (at most C), oldest first: the window recomputed past the context.
    private let history: UnsafeMutablePointer<Int32>
    /// Characters in each sequence's `history` (the same for all), and positions in the cache: they differ only past
    /// the context, where the cache is no longer used.
    private var historyCount = 0
    private var cached = 0
    /// One step's rows, (B, width): the residual stream (E), a LayerNorm's output (E) and statistics (1 each), qkv
    /// (3E), the heads' outputs (E), a branch's output (E), c_fc's output and its GELU (4E each).
    private let stream: FloatBuffer, normalized: FloatBuffer, mean: FloatBuffer, rstd: FloatBuffer, qkv: FloatBuffer
    private let attended: FloatBuffer, branch: FloatBuffer, expanded: FloatBuffer, activated: FloatBuffer
    /// (B, NH, C) attention weights of the step's queries over the cached positions.
    private let scores: FloatBuffer
    /// (B, V) the latest scores.
    private let stepLogits: FloatBuffer
    var logits: UnsafePointer<Float> { UnsafePointer(stepLogits.pointer) }
    private let context: ComputeContext

    /// Multiply-adds of a step's largest product (c_fc's, B x 4E x E) below which the step runs on one thread.
    static let smallestSharedStep = 1 << 20

    /// Floats a decoder of B sequences holds besides its pass (see the buffers above).
    static func floatCount(config: TransformerConfig, batch B: Int) -> Double {
        let (E, L, C, NH, V) = (Double(config.embeddingSize), Double(config.layerCount), Double(config.context),
                                Double(config.headCount), Double(config.vocabularySize))
        let b = Double(B)
        return 2 * L * b * C * E + b * (E + E + 2 + 3 * E + E + E + 8 * E) + b * NH * C + b * V + b * C
    }

    init(model: TransformerModel, batch B: Int, context: ComputeContext) throws {
        let config = model.config
        let (E, L, C, NH, V) = (config.embeddingSize, config.layerCount, config.context, config.headCount,
                                config.vocabularySize)
        let bytes = 4 * Self.floatCount(config: config, batch: B) + config.passBytes(length: C, batch: 1)
        try MemoryBudget.check(bytes, for: "generating \(B) sample\(B == 1 ? "" : "s") with context \(C)",
                               hint: B > 1 ? "lower `samples`" : "lower context, embed or layers")
        self.model = model
        batch = B
        contextLength = C
        // A step of few rows runs on one thread: its two dozen products and row loops are each too small to share
        // (waking the other threads costs more than they save). The prompt's pass may be long: it keeps the threads.
        self.context = B * 4 * E * E < Self.smallestSharedStep
            ? ComputeContext(threads: 1, products: context.productKernel, cpu: context.cpu, timeLoop: context.timeLoop)
            : context
        pass = model.makeTransformerPass(length: C, batch: 1, context: context)
        keys = (0..<L).map { _ in FloatBuffer(count: B * C * E) }
        values = (0..<L).map { _ in FloatBuffer(count: B * C * E) }
        history = .allocate(capacity: B * C)
        history.initialize(repeating: 0, count: B * C)
        stream = FloatBuffer(count: B * E)
        normalized = FloatBuffer(count: B * E)
        mean = FloatBuffer(count: B)
        rstd = FloatBuffer(count: B)
        qkv = FloatBuffer(count: B * 3 * E)
        attended = FloatBuffer(count: B * E)
        branch = FloatBuffer(count: B * E)
        expanded = FloatBuffer(count: B * 4 * E)
        activated = FloatBuffer(count: B * 4 * E)
        scores = FloatBuffer(count: B * NH * C)
        stepLogits = FloatBuffer(count: B * V)
    }

    deinit { history.deallocate() }

    func start(prompt: [Int], cancellation: Cancellation) throws {
        try cancellation.check()
        let (E, C, V) = (model.config.embeddingSize, contextLength, model.config.vocabularySize)
        let window = prompt.suffix(C).map(Int32.init)  // nanoGPT's crop
        let P = window.count
        for (t, token) in window.enumerated() { pass.inputs[t] = token }
        var unused = SeededGenerator(seed: 0)  // inference mode draws nothing
        pass.forward(length: P, batch: 1, mode: .inference, generator: &unused)
        // every block's keys and values of the prompt, for every sequence
        for (l, block) in pass.blocks.enumerated() {
            for t in 0..<P {
                let row = block.qkv.pointer + t * 3 * E
                for b in 0..<batch {
                    (keys[l].pointer + (b * C + t) * E).update(from: row + E, count: E)
                    (values[l].pointer + (b * C + t) * E).update(from: row + 2 * E, count: E)
                }
            }
        }
        for b in 0..<batch {
            (stepLogits.pointer + b * V).update(from: pass.logits.pointer + (P - 1) * V, count: V)
            for (t, token) in window.enumerated() { history[b * C + t] = token }
        }
        historyCount = P
        cached = P
    }

    func advance(_ tokens: UnsafePointer<Int32>) {
        let C = contextLength
        // the history keeps the last C characters
        if historyCount == C {
            for b in 0..<batch { (history + b * C).update(from: history + b * C + 1, count: C - 1) }
        } else {
            historyCount += 1
        }
        for b in 0..<batch { history[b * C + historyCount - 1] = tokens[b] }
        if cached < C {
            step(tokens: tokens, position: cached)
            cached += 1
        } else {
            recomputeWindow()
        }
    }

    /// Past the context: each sequence's last C characters through the whole model, the last row's scores kept.
    private func recomputeWindow() {
        let (C, V) = (contextLength, model.config.vocabularySize)
        var unused = SeededGenerator(seed: 0)
        for b in 0..<batch {
            pass.inputs.update(from: history + b * C, count: C)
            pass.forward(length: C, batch: 1, mode: .inference, generator: &unused)
            (stepLogits.pointer + b * V).update(from: pass.logits.pointer + (C - 1) * V, count: V)
        }
    }

    /// One new row per sequence at `position` (below C): the model's forward pass for that row alone, its keys and
    /// values added to the cache and its queries attending over the cache.
    private func step(tokens: UnsafePointer<Int32>, position p: Int) {
        let config = model.config
        let layout = model.layout
        let (E, V, B, C, NH, HS) = (config.embeddingSize, config.vocabularySize, batch, contextLength, config.headCount,
                                    config.headSize)
        let weight = model.weight
        let x = stream.pointer
        // x(B, E) = wte[token] + wpe[p]
        let (wte, wpe) = (weight(layout.tokenEmbedding)!, weight(layout.positionEmbedding)! + p * E)
        for b in 0..<B {
            let token = wte + Int(tokens[b]) * E
            for i in 0..<E { x[b * E + i] = token[i] + wpe[i] }
        }
        let scale = 1 / Float(HS).squareRoot()
        for (l, views) in layout.blocks.enumerated() {
            // attention branch
            LayerNorm.forward(input: x, weight: weight(views.ln1Weight)!, bias: weight(views.ln1Bias),
                              output: normalized.pointer, mean: mean.pointer, rstd: rstd.pointer, rows: B, width: E,
                              context: context)
            Linear.forward(input: normalized.pointer, weight: weight(views.attentionWeight)!,
                           bias: weight(views.attentionBias), output: qkv.pointer, rows: B, inputs: E, outputs: 3 * E,
                           context: context)
            let (keyCache, valueCache) = (keys[l].pointer, values[l].pointer)
            for b in 0..<B {
                (keyCache + (b * C + p) * E).update(from: qkv.pointer + b * 3 * E + E, count: E)
                (valueCache + (b * C + p) * E).update(from: qkv.pointer + b * 3 * E + 2 * E, count: E)
            }
            context.team.runParts(work: B * NH * (p + 1) * HS * 2) { member in
                for pair in member.share(of: B * NH) {
                    let (b, h) = (pair / NH, pair % NH)
                    let query = qkv.pointer + b * 3 * E + h * HS
                    let (keysBH, valuesBH) = (keyCache + b * C * E + h * HS, valueCache + b * C * E + h * HS)
                    let weights = scores.pointer + pair * C
                    // scores(p+1) = K(p+1, HS) q(HS) / sqrt(HS), then the softmax over them
                    BLAS.gemv(.none, rows: p + 1, cols: HS, alpha: scale, a: keysBH, lda: E, x: query, beta: 0,
                              y: weights, context: context)
                    softmax(weights, count: p + 1)
                    // y(HS) = V^T(HS, p+1) P(p+1)
                    BLAS.gemv(.transposed, rows: p + 1, cols: HS, a: valuesBH, lda: E, x: weights, beta: 0,
                              y: attended.pointer + b * E + h * HS, context: context)
                }
            }
            Linear.forward(input: attended.pointer, weight: weight(views.attentionProjectionWeight)!,
                           bias: weight(views.attentionProjectionBias), output: branch.pointer, rows: B, inputs: E,
                           outputs: E, context: context)
            Residual.forward(input: x, branch: branch.pointer, mask: nil, output: x, count: B * E)
            // MLP branch
            LayerNorm.forward(input: x, weight: weight(views.ln2Weight)!, bias: weight(views.ln2Bias),
                              output: normalized.pointer, mean: mean.pointer, rstd: rstd.pointer, rows: B, width: E,
                              context: context)
            Linear.forward(input: normalized.pointer, weight: weight(views.mlpWeight)!, bias: weight(views.mlpBias),
                           output: expanded.pointer, rows: B, inputs: E, outputs: 4 * E, context: context)
            GELU.forward(input: expanded.pointer, output: activated.pointer, count: B * 4 * E, context: context)
            Linear.forward(input: activated.pointer, weight: weight(views.mlpProjectionWeight)!,
                           bias: weight(views.mlpProjectionBias), output: branch.pointer, rows: B, inputs: 4 * E,
                           outputs: E, context: context)
            Residual.forward(input: x, branch: branch.pointer, mask: nil, output: x, count: B * E)
        }
        LayerNorm.forward(input: x, weight: weight(layout.lnFinalWeight)!, bias: weight(layout.lnFinalBias),
                          output: normalized.pointer, mean: mean.pointer, rstd: rstd.pointer, rows: B, width: E,
                          context: context)
        Linear.forward(input: normalized.pointer, weight: weight(layout.tokenEmbedding)!, bias: nil,
                       output: stepLogits.pointer, rows: B, inputs: E, outputs: V, context: context)
    }
}
