// An independent reference for the transformer: nanoGPT's GPT in Double precision, one sequence, one position, one
// head at a time, written from nanoGPT's model.py (LayerNorm with biased variance and eps 1e-5, causal softmax
// attention scaled by 1/sqrt(HS), exact erf GELU, the head tied to wte), sharing nothing with the engine but the
// parameter table's offsets. Tests compare the engine's forward pass and gradients against it.

@testable import CharLM
import Foundation

/// The dropout masks of one training forward pass, as the engine drew them (time-major, as its buffers).
struct TransformerMasks {
    /// (T, B, E) on the embeddings' sum.
    var embedding: [Float]
    /// Per block: (B, NH, T, T) on the attention weights, (T, B, E) on each branch's output.
    var weights: [[Float]]
    var attention: [[Float]]
    var mlp: [[Float]]

    /// The masks a pass holds after a training forward pass.
    init(pass: TransformerPass) {
        embedding = pass.embeddingMask.array
        weights = pass.blocks.map(\.weightsMask.array)
        attention = pass.blocks.map(\.attentionMask.array)
        mlp = pass.blocks.map(\.mlpMask.array)
    }
}

/// nanoGPT's GPT in Double precision.
struct NaiveTransformer: DoubleReference {
    let config: TransformerConfig
    let layout: TransformerLayout
    var parameters: [Double]

    init(model: TransformerModel) {
        config = model.config
        layout = model.layout
        parameters = model.parameters.array.map(Double.init)
    }

    /// Row `row` of a 2-D tensor, or the whole of a 1-D one (nil: zeros, an absent bias).
    func vector(_ view: ParameterView?, row: Int = 0, width: Int) -> [Double] {
        guard let view else { return [Double](repeating: 0, count: width) }
        let start = view.offset + row * width
        return Array(parameters[start..<(start + width)])
    }

    /// y = W x + b, W (out, in).
    func linear(_ x: [Double], _ weight: ParameterView, _ bias: ParameterView?) -> [Double] {
        let (outputs, inputs) = (weight.shape[0], weight.shape[1])
        var y = vector(bias, width: outputs)
        for o in 0..<outputs {
            for i in 0..<inputs { y[o] += parameters[weight.offset + o * inputs + i] * x[i] }
        }
        return y
    }

    func layerNorm(_ x: [Double], _ weight: ParameterView, _ bias: ParameterView?) -> [Double] {
        let E = x.count
        let mean = x.reduce(0, +) / Double(E)
        let variance = x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(E)
        let (w, b) = (vector(weight, width: E), vector(bias, width: E))
        return (0..<E).map { (x[$0] - mean) / (variance + 1e-5).squareRoot() * w[$0] + b[$0] }
    }

    func gelu(_ x: Double) -> Double { 0.5 * x * (1 + erf(x / 2.0.squareRoot())) }

    /// Logits [b][t][v] of B sequences (`inputs[b][t]`), and the mean cross-entropy when targets are given.
    /// `attended`, when given, is told every softmax row: sequence b, block l, head h, query t, and the weights over
    /// keys 0 ... t.
    func run(inputs: [[Int]], targets: [[Int]]? = nil, masks: TransformerMasks? = nil,
             attended: ((_ b: Int, _ l: Int, _ h: Int, _ t: Int, _ weights: [Double]) -> Void)? = nil) -> (logits: [[[Double]]], loss: Double?) {
        let (E, NH, HS, V) = (config.embeddingSize, config.headCount, config.headSize, config.vocabularySize)
        let (B, T) = (inputs.count, inputs[0].count)
        var logits: [[[Double]]] = []
        var total = 0.0
        for b in 0..<B {
            // x[t] = drop(wte[token] + wpe[t])
            var x = (0..<T).map { t in
                zip(vector(layout.tokenEmbedding, row: inputs[b][t], width: E),
                    vector(layout.positionEmbedding, row: t, width: E)).map { $0 + $1 }
            }
            func dropped(_ rows: [[Double]], _ mask: [Float]?) -> [[Double]] {
                guard let mask else { return rows }
                return (0..<T).map { t in (0..<E).map { rows[t][$0] * Double(mask[(t * B + b) * E + $0]) } }
            }
            x = dropped(x, masks?.embedding)
            for (l, block) in layout.blocks.enumerated() {
                // x = x + drop(c_proj(attention(ln_1(x))))
                let qkv = x.map { linear(layerNorm($0, block.ln1Weight, block.ln1Bias), block.attentionWeight, block.attentionBias) }
                var y = [[Double]](repeating: [Double](repeating: 0, count: E), count: T)
                for h in 0..<NH {
                    for t in 0..<T {
                        let scores = (0...t).map { s in
                            (0..<HS).reduce(0.0) { $0 + qkv[t][h * HS + $1] * qkv[s][E + h * HS + $1] } / Double(HS).squareRoot()
                        }
                        let maximum = scores.max()!
                        let exps = scores.map { exp($0 - maximum) }
                        let sum = exps.reduce(0, +)
                        attended?(b, l, h, t, exps.map { $0 / sum })
                        for s in 0...t {
                            var weight = exps[s] / sum
                            if let mask = masks?.weights[l] { weight *= Double(mask[((b * NH + h) * T + t) * T + s]) }
                            for j in 0..<HS { y[t][h * HS + j] += weight * qkv[s][2 * E + h * HS + j] }
                        }
                    }
                }
                let attention = dropped(y.map { linear($0, block.attentionProjectionWeight, block.attentionProjectionBias) },
                                        masks?.attention[l])
                x = (0..<T).map { t in zip(x[t], attention[t]).map { $0 + $1 } }
                // x = x + drop(c_proj(gelu(c_fc(ln_2(x)))))
                let mlp = dropped(x.map { row in
                    let expanded = linear(layerNorm(row, block.ln2Weight, block.ln2Bias), block.mlpWeight, block.mlpBias)
                    return linear(expanded.map(gelu), block.mlpProjectionWeight, block.mlpProjectionBias)
                }, masks?.mlp[l])
                x = (0..<T).map { t in zip(x[t], mlp[t]).map { $0 + $1 } }
            }
            // logits = ln_f(x) wte^T
            let scores = x.map { row -> [Double] in
                let normalized = layerNorm(row, layout.lnFinalWeight, layout.lnFinalBias)
                return (0..<V).map { v in
                    zip(vector(layout.tokenEmbedding, row: v, width: E), normalized).reduce(0) { $0 + $1.0 * $1.1 }
                }
            }
            if let targets {
                for t in 0..<T {
                    let maximum = scores[t].max()!
                    total += log(scores[t].reduce(0) { $0 + exp($1 - maximum) }) + maximum - scores[t][targets[b][t]]
                }
            }
            logits.append(scores)
        }
        return (logits, targets == nil ? nil : total / Double(B * T))
    }
}

/// A transformer whose parameters are drawn wider than nanoGPT's initialisation (weights N(0, 0.4), biases N(0, 0.2),
/// LayerNorm weights 1 + N(0, 0.3)), so that attention is far from uniform and every path carries gradient.
func makeTransformer(_ config: TransformerConfig, seed: UInt64) throws -> TransformerModel {
    let model = try TransformerModel(config: config, parameters: nil)
    var generator = SeededGenerator(seed: seed)
    let p = model.parameters.pointer
    for view in model.layout.views {
        let isLayerNormWeight = view.name.contains(".ln_") && view.name.hasSuffix(".weight")
        for index in view.range {
            let normal = generator.nextStandardNormal()
            p[index] = isLayerNormWeight ? 1 + 0.3 * normal : (view.shape.count >= 2 ? 0.4 : 0.2) * normal
        }
    }
    return model
}
