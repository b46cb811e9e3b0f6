// The transformer's decoder (Models/LanguageModel.swift), with a KV cache: the prompt (its last C characters, as
// nanoGPT's `generate` crops it) is fed once through the training pass's code, which leaves every block's keys and
// values; each step then computes one new row per sequence, attending over the cached keys and values, at a cost
// linear in the positions so far.
//
// Threads. A step is a few matrix-vector products per block (one row per sequence), so what costs is reading the
// weights (3.2 MB per character at nanoGPT's CPU recipe) and meeting between threads. The whole step is one job on
// the context's team, as the recurrent family's Stepper does: each thread owns the same share of every product's
// columns from one step to the next (so its share of the weights stays in its core's cache), applies GELU and the
// residual additions to its own columns, and computes the LayerNorms of all the rows into a copy of its own; the
// attention's (sequence, head) pairs are shared among the threads. The threads meet five times per block: after
// qkv, after the attention, after each branch's projection into the residual stream, and after c_fc.
// A step too small to share (nanoGPT's CPU recipe, E 128, at batch 1) runs on the calling thread alone: meeting
// 21 times a character then costs more than the second thread saves (`minimumStepWork`).
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
    /// One step's rows, (B, width): the residual stream (E), qkv (3E), the heads' outputs (E), a branch's output (E),
    /// c_fc's output and its GELU (4E each). Per thread of the team, (threads, B, width): a LayerNorm's output (E)
    /// and statistics (1 each).
    private let stream: FloatBuffer, normalized: FloatBuffer, mean: FloatBuffer, rstd: FloatBuffer, qkv: FloatBuffer
    private let attended: FloatBuffer, branch: FloatBuffer, expanded: FloatBuffer, activated: FloatBuffer
    /// (B, NH, C) attention weights of the step's queries over the cached positions.
    private let scores: FloatBuffer
    /// (B, V) the latest scores.
    private let stepLogits: FloatBuffer
    /// The weights of each block's four products and of the head, transposed into the column panels of charlm's
    /// packed kernel (PackedProduct.swift), once per decoder: each thread reads its own panels, contiguous, for every
    /// step. OpenBLAS's matrix-vector products on the weights as stored made 13,700-15,600 characters/s on 1 thread
    /// and 13,000-21,000 on 2 at nanoGPT's CPU recipe; the panels 18,100-18,800 on 1 and 16,200-19,200 on 2
    /// (`charlm-bench generate-speed --length 630`, 2 cores of a Zen 4). Packing costs one pass over the weights per
    /// `gen`, and their size again in memory (counted in `floatCount`).
    private let packedBlocks: [(attention: PackedMatrix, attentionProjection: PackedMatrix, mlp: PackedMatrix,
                                mlpProjection: PackedMatrix)]
    private let packedHead: PackedMatrix
    var logits: UnsafePointer<Float> { UnsafePointer(stepLogits.pointer) }
    private let context: ComputeContext
    /// The team each step runs on: the context's, or the caller alone when a step's products are too small to share
    /// (`minimumStepWork`).
    let team: ThreadTeam
    /// The fewest multiply-adds of weights per thread between two of a step's meetings (a block's 12 E^2 per
    /// sequence over its five phases) for which the step runs on the team: at batch 1 on 2 threads, E 192 (44,000)
    /// runs on the team and E 128 (nanoGPT's CPU recipe, 20,000) alone. Measured (`charlm-bench generate-speed
    /// --arch transformer --layers 4 --heads 4 --context 64 --length 630`, 2 cores of a Zen 4, 3 runs each), 1 thread
    /// against 2: E 128 13,400-16,300 against 10,900-14,300 characters/s, E 192 7,400-9,000 against 10,000-11,800,
    /// E 256 3,400-4,200 against 5,500-6,500.
    static let minimumStepWork = 1 << 15

    /// Floats a decoder of B sequences holds besides its pass (see the buffers above).
    static func floatCount(config: TransformerConfig, batch B: Int, threads: Int) -> Double {
        let (E, L, C, NH, V) = (Double(config.embeddingSize), Double(config.layerCount), Double(config.context),
                                Double(config.headCount), Double(config.vocabularySize))
        let (b, n) = (Double(B), Double(threads))
        // the packed weights: each product's columns rounded up to the widest panels
        let panels = { (columns: Double) in (columns / 64).rounded(.up) * 64 }
        let packed = L * (E * panels(3 * E) + E * panels(E) + E * panels(4 * E) + 4 * E * panels(E)) + E * panels(V)
        return 2 * L * b * C * E + b * (E + 3 * E + E + E + 8 * E) + n * b * (E + 2) + b * NH * C + b * V + b * C
            + packed
    }

    /// W = weight^T (inputs, outputs), weight stored (outputs, inputs) as nn.Linear keeps it, in panels.
    private static func packed(_ weight: UnsafePointer<Float>, inputs: Int, outputs: Int,
                               context: ComputeContext) -> PackedMatrix {
        let matrix = PackedMatrix(rows: inputs, columns: outputs,
                                  kernel: Products.panelKernel(columns: outputs, preferred: context.packedKernel))
        matrix.pack(weight, transposed: true, panels: 0..<matrix.panelCount)
        return matrix
    }

    init(model: TransformerModel, batch B: Int, context: ComputeContext,
         minimumStepWork: Int = TransformerDecoder.minimumStepWork) throws {
        let config = model.config
        let (E, L, C, NH, V) = (config.embeddingSize, config.layerCount, config.context, config.headCount,
                                config.vocabularySize)
        let threads = context.threadCount
        let bytes = 4 * Self.floatCount(config: config, batch: B, threads: threads) + config.inferencePassBytes(length: C, batch: 1)
        try MemoryBudget.check(bytes, for: "generating \(B) sample\(B == 1 ? "" : "s") with context \(C)",
                               hint: B > 1 ? "lower `samples`" : "lower context, embed or layers")
        self.model = model
        batch = B
        contextLength = C
        self.context = context
        let stepWork = 12 * E * E * B / (5 * threads)
        team = stepWork >= minimumStepWork ? context.team : ThreadTeam.solo
        pass = model.makeTransformerPass(length: C, batch: 1, context: context, forInference: true)
        keys = (0..<L).map { _ in FloatBuffer(count: B * C * E) }
        values = (0..<L).map { _ in FloatBuffer(count: B * C * E) }
        history = .allocate(capacity: B * C)
        history.initialize(repeating: 0, count: B * C)
        stream = FloatBuffer(count: B * E)
        normalized = FloatBuffer(count: threads * B * E)
        mean = FloatBuffer(count: threads * B)
        rstd = FloatBuffer(count: threads * B)
        qkv = FloatBuffer(count: B * 3 * E)
        attended = FloatBuffer(count: B * E)
        branch = FloatBuffer(count: B * E)
        expanded = FloatBuffer(count: B * 4 * E)
        activated = FloatBuffer(count: B * 4 * E)
        scores = FloatBuffer(count: B * NH * C)
        stepLogits = FloatBuffer(count: B * V)
        let weight = model.weight
        packedBlocks = model.layout.blocks.map { views in
            (Self.packed(weight(views.attentionWeight)!, inputs: E, outputs: 3 * E, context: context),
             Self.packed(weight(views.attentionProjectionWeight)!, inputs: E, outputs: E, context: context),
             Self.packed(weight(views.mlpWeight)!, inputs: E, outputs: 4 * E, context: context),
             Self.packed(weight(views.mlpProjectionWeight)!, inputs: 4 * E, outputs: E, context: context))
        }
        packedHead = Self.packed(weight(model.layout.tokenEmbedding)!, inputs: E, outputs: V, context: context)
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
    /// values added to the cache and its queries attending over the cache. One job on the team (see the top).
    private func step(tokens: UnsafePointer<Int32>, position p: Int) {
        let config = model.config
        let layout = model.layout
        let (E, V, B, C, NH, HS) = (config.embeddingSize, config.vocabularySize, batch, contextLength, config.headCount,
                                    config.headSize)
        let weight = model.weight
        let (x, qkv, attended, branch) = (stream.pointer, self.qkv.pointer, self.attended.pointer, self.branch.pointer)
        let (expanded, activated) = (self.expanded.pointer, self.activated.pointer)
        let scale = 1 / Float(HS).squareRoot()
        team.run { member in
            // this thread's LayerNorm output and statistics
            let (normalized, mean, rstd) = (self.normalized.pointer + member.index * B * E,
                                            self.mean.pointer + member.index * B, self.rstd.pointer + member.index * B)
            /// The LayerNorm of every row of x, into this thread's copy.
            func layerNorm(weight lnWeight: UnsafePointer<Float>, bias lnBias: UnsafePointer<Float>?) {
                LayerNorm.forward(rows: 0..<B, input: x, weight: lnWeight, bias: lnBias, output: normalized, mean: mean,
                                  rstd: rstd, width: E)
            }
            /// This thread's columns of output(B, outputs) = input(B, inputs) weight^T + bias: those of its panels.
            func linear(_ input: UnsafePointer<Float>, _ matrix: PackedMatrix, _ linearBias: UnsafePointer<Float>?,
                        _ output: UnsafeMutablePointer<Float>, inputs: Int, outputs: Int) -> Range<Int> {
                let panels = member.share(of: matrix.panelCount)
                let columns = min(outputs, panels.lowerBound * matrix.panelWidth)..<min(outputs, panels.upperBound
                                                                                        * matrix.panelWidth)
                if columns.isEmpty { return columns }
                if let linearBias {
                    for b in 0..<B {
                        (output + b * outputs + columns.lowerBound).update(from: linearBias + columns.lowerBound,
                                                                           count: columns.count)
                    }
                }
                matrix.multiply(input, lda: inputs, rows: B, panels: panels, into: output, ldc: outputs,
                                accumulate: linearBias != nil)
                return columns
            }
            /// x += branch on this thread's columns of E.
            func addBranch(_ columns: Range<Int>) {
                for b in 0..<B {
                    let offset = b * E + columns.lowerBound
                    Residual.forward(input: x + offset, branch: branch + offset, mask: nil, output: x + offset,
                                     count: columns.count)
                }
            }
            // x(B, E) = wte[token] + wpe[p], this thread's columns
            let embeddingColumns = member.share(of: E)
            let (wte, wpe) = (weight(layout.tokenEmbedding)!, weight(layout.positionEmbedding)! + p * E)
            for b in 0..<B {
                let token = wte + Int(tokens[b]) * E
                for i in embeddingColumns { x[b * E + i] = token[i] + wpe[i] }
            }
            member.barrier()
            for (l, views) in layout.blocks.enumerated() {
                // attention branch: qkv = ln_1(x) c_attn^T
                layerNorm(weight: weight(views.ln1Weight)!, bias: weight(views.ln1Bias))
                let packed = packedBlocks[l]
                _ = linear(normalized, packed.attention, weight(views.attentionBias), qkv, inputs: E, outputs: 3 * E)
                member.barrier()
                let (keyCache, valueCache) = (keys[l].pointer, values[l].pointer)
                for pair in member.share(of: B * NH) {
                    let (b, h) = (pair / NH, pair % NH)
                    let query = qkv + b * 3 * E + h * HS
                    let (keysBH, valuesBH) = (keyCache + b * C * E + h * HS, valueCache + b * C * E + h * HS)
                    // this head's key and value at position p, into the cache
                    (keysBH + p * E).update(from: query + E, count: HS)
                    (valuesBH + p * E).update(from: query + 2 * E, count: HS)
                    let weights = scores.pointer + pair * C
                    // scores(p+1) = K(p+1, HS) q(HS) / sqrt(HS), then the softmax over them
                    BLAS.gemmOnThisThread(.none, .transposed, m: 1, n: p + 1, k: HS, alpha: scale, a: query, lda: HS,
                                          b: keysBH, ldb: E, beta: 0, c: weights, ldc: p + 1)
                    softmax(weights, count: p + 1)
                    // y(HS) = P(p+1) V(p+1, HS)
                    BLAS.gemmOnThisThread(.none, .none, m: 1, n: HS, k: p + 1, alpha: 1, a: weights, lda: p + 1,
                                          b: valuesBH, ldb: E, beta: 0, c: attended + b * E + h * HS, ldc: HS)
                }
                member.barrier()
                // x += attended c_proj^T
                addBranch(linear(attended, packed.attentionProjection, weight(views.attentionProjectionBias), branch,
                                 inputs: E, outputs: E))
                member.barrier()
                // MLP branch: x += gelu(ln_2(x) c_fc^T) c_proj^T
                layerNorm(weight: weight(views.ln2Weight)!, bias: weight(views.ln2Bias))
                let wide = linear(normalized, packed.mlp, weight(views.mlpBias), expanded, inputs: E, outputs: 4 * E)
                for b in 0..<B {
                    let offset = b * 4 * E + wide.lowerBound
                    GELU.forward(input: expanded + offset, output: activated + offset, count: wide.count)
                }
                member.barrier()
                addBranch(linear(activated, packed.mlpProjection, weight(views.mlpProjectionBias), branch,
                                 inputs: 4 * E, outputs: E))
                member.barrier()
            }
            // logits(B, V) = ln_f(x) wte^T
            layerNorm(weight: weight(layout.lnFinalWeight)!, bias: weight(layout.lnFinalBias))
            _ = linear(normalized, packedHead, nil, stepLogits.pointer, inputs: E, outputs: V)
        }
    }
}
