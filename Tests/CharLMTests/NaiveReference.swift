// Independent references for the fast paths, written for clarity rather than speed: a triple-loop matrix product
// and the whole model (Embedding -> per-gate scalar LSTM, GRU or RNN -> Linear -> cross-entropy) in Double precision,
// straight from the equations in PyTorch's nn.LSTM, nn.GRU and nn.RNN documentation. Tests compare the engine against
// these.

import CharLM
import Foundation

/// C = alpha * op(A) op(B) + beta * C on row-major arrays, in Double, one element at a time.
func naiveGemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double, a: [Float], lda: Int, b: [Float], ldb: Int,
    beta: Double, c: [Float], ldc: Int
) -> [Double] {
    var result = c.map(Double.init)
    for i in 0..<m {
        for j in 0..<n {
            var sum = 0.0
            for p in 0..<k {
                let aValue = transA ? a[p * lda + i] : a[i * lda + p]
                let bValue = transB ? b[j * ldb + p] : b[p * ldb + j]
                sum += Double(aValue) * Double(bValue)
            }
            result[i * ldc + j] = alpha * sum + beta * Double(c[i * ldc + j])
        }
    }
    return result
}

/// A Double-precision reference model whose loss a gradient check differentiates.
protocol DoubleReference {
    var parameters: [Double] { get set }
}

extension DoubleReference {
    /// (loss(p + h) - loss(p - h)) / 2h in the parameter at `index`, which is left as it was.
    mutating func centredDifference(at index: Int, step h: Double, loss: (Self) -> Double) -> Double {
        let saved = parameters[index]
        parameters[index] = saved + h
        let plus = loss(self)
        parameters[index] = saved - h
        let minus = loss(self)
        parameters[index] = saved
        return (plus - minus) / (2 * h)
    }
}

/// The model in Double precision, unit by unit.
struct NaiveModel: DoubleReference {
    let config: RecurrentConfig
    let layout: RecurrentLayout
    var parameters: [Double]

    init(model: RecurrentModel) {
        config = model.config
        layout = model.layout
        parameters = model.parameters.array.map(Double.init)
    }

    /// Element (row, column) of a 2-D parameter tensor, or element `row` of a 1-D one.
    func value(_ view: ParameterView, _ row: Int, _ column: Int = 0) -> Double {
        let columns = view.shape.count == 2 ? view.shape[1] : 1
        return parameters[view.offset + row * columns + column]
    }

    struct Output {
        /// [b][t][v] logits.
        var logits: [[[Double]]]
        /// [layer][b] final memory: the cell state (LSTM) or the hidden state (GRU, RNN).
        var finalCell: [[[Double]]]
        /// Mean cross-entropy, when targets were given.
        var loss: Double?
    }

    /// Runs B sequences from a zero state. `inputs[b][t]`; `masks[l]` (optional) is the time-major (T, B, H) dropout
    /// mask applied to layer l's output before layer l+1.
    func run(inputs: [[Int]], targets: [[Int]]? = nil, masks: [[Float]] = []) -> Output {
        let (E, H, V, L) = (config.embeddingSize, config.hiddenSize, config.vocabularySize, config.layerCount)
        let B = inputs.count
        let T = inputs[0].count
        var logits = [[[Double]]](repeating: [], count: B)
        var finalCell = [[[Double]]](repeating: [[Double]](repeating: [], count: B), count: L)
        var totalLoss = 0.0
        for b in 0..<B {
            var h = [[Double]](repeating: [Double](repeating: 0, count: H), count: L)
            var c = h
            for t in 0..<T {
                var x = (0..<E).map { value(layout.embedding, inputs[b][t], $0) }
                for l in 0..<L {
                    let views = layout.layers[l]
                    func inputPart(_ row: Int) -> Double {
                        (0..<views.inputSize).reduce(value(views.biasIH, row)) { $0 + value(views.weightIH, row, $1) * x[$1] }
                    }
                    func recurrentPart(_ row: Int) -> Double {
                        (0..<H).reduce(value(views.biasHH, row)) { $0 + value(views.weightHH, row, $1) * h[l][$1] }
                    }
                    func preactivation(_ row: Int) -> Double { inputPart(row) + recurrentPart(row) }
                    func sigmoid(_ a: Double) -> Double { 1 / (1 + exp(-a)) }
                    var newH = [Double](repeating: 0, count: H)
                    var newC = [Double](repeating: 0, count: H)
                    for j in 0..<H {
                        switch config.layerKind {
                        case .lstm:  // nn.LSTM: gates i, f, g, o
                            let i = sigmoid(preactivation(j))
                            let f = sigmoid(preactivation(H + j))
                            let g = tanh(preactivation(2 * H + j))
                            let o = sigmoid(preactivation(3 * H + j))
                            newC[j] = f * c[l][j] + i * g
                            newH[j] = o * tanh(newC[j])
                        case .gru:  // nn.GRU: gates r, z, n; b_hn inside the reset product
                            let r = sigmoid(preactivation(j))
                            let z = sigmoid(preactivation(H + j))
                            let n = tanh(inputPart(2 * H + j) + r * recurrentPart(2 * H + j))
                            newH[j] = (1 - z) * n + z * h[l][j]
                            newC[j] = newH[j]
                        case .rnn:  // nn.RNN, tanh
                            newH[j] = tanh(preactivation(j))
                            newC[j] = newH[j]
                        }
                    }
                    h[l] = newH
                    c[l] = newC
                    x = newH
                    if l < masks.count {
                        for j in 0..<H { x[j] *= Double(masks[l][(t * B + b) * H + j]) }
                    }
                }
                let scores = (0..<V).map { v in
                    (0..<H).reduce(value(layout.fcBias, v)) { $0 + value(layout.fcWeight, v, $1) * x[$1] }
                }
                logits[b].append(scores)
                if let targets {
                    let maximum = scores.max()!
                    let logSum = log(scores.reduce(0) { $0 + exp($1 - maximum) }) + maximum
                    totalLoss += logSum - scores[targets[b][t]]
                }
            }
            for l in 0..<L { finalCell[l][b] = c[l] }
        }
        return Output(logits: logits, finalCell: finalCell, loss: targets == nil ? nil : totalLoss / Double(B * T))
    }
}

/// A small model with PyTorch-style initialisation from a fixed seed.
func makeModel(V: Int, E: Int, H: Int, L: Int, dropout: Float = 0, seed: UInt64 = 1, cell: LayerKind = .lstm) throws -> RecurrentModel {
    var generator = SeededGenerator(seed: seed)
    return try RecurrentModel(
        config: RecurrentConfig(vocabularySize: V, embeddingSize: E, hiddenSize: H, layerCount: L, dropout: dropout,
                            layerKind: cell),
        generator: &generator)
}

/// B random sequences of T tokens below V: [b][t].
func randomSequences(B: Int, T: Int, V: Int, seed: UInt64) -> [[Int]] {
    var generator = SeededGenerator(seed: seed)
    return (0..<B).map { _ in (0..<T).map { _ in generator.nextIndex(below: V) } }
}

/// Writes [b][t] sequences into a workspace's time-major (T, B) buffer.
func load(_ sequences: [[Int]], into buffer: UnsafeMutablePointer<Int32>) {
    let B = sequences.count
    for b in 0..<B {
        for t in 0..<sequences[b].count { buffer[t * B + b] = Int32(sequences[b][t]) }
    }
}
