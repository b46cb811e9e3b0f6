// The transformer's layers, each forward beside its backward, same argument order, as llm.c's train_gpt2.c writes
// them: a linear layer, LayerNorm, GELU, causal multi-head self-attention, and the residual connection with its
// dropout. Backward accumulates into parameter gradients and
// into the residual stream's gradient where the forward added to it. Rows are time-major (row t * B + b) everywhere:
// the buffers of one pass are (T, B, width), as in the rest of charlm. The model that strings them together is
// TransformerModel.swift; shapes are named at the top of TransformerParameters.swift.

import Foundation

/// A linear layer: output(N, out) = input(N, in) weight(out, in)^T + bias(out), PyTorch's nn.Linear.
///
/// Its products go to BLAS whatever the context's product kernel: at the transformer's shapes (N = T B of a few
/// hundred to a few thousand rows, widths of E to 4E) the packed kernel, tuned for the recurrent family's 6400-row
/// products, ran at 30-34 GFLOP/s where OpenBLAS ran at 60-100 (2 threads, AMD EPYC with AVX-512, N 768, E 128), and
/// nanoGPT's CPU recipe (L 4, NH 4, E 128, T 64, B 12) trained at 4,300 tokens/s against 15,000-17,000 (forward,
/// loss and backward, on a machine shared with other work; PyTorch 11,000-17,000 with its optimizer step).
enum Linear {
    /// output(N, out) = input(N, in) weight^T + bias (nil: no bias).
    static func forward(input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        output: UnsafeMutablePointer<Float>, rows N: Int, inputs: Int, outputs: Int,
                        context: ComputeContext) {
        if let bias { for r in 0..<N { (output + r * outputs).update(from: bias, count: outputs) } }
        BLAS.gemm(.none, .transposed, m: N, n: outputs, k: inputs, a: input, lda: inputs, b: weight, ldb: inputs,
                  beta: bias == nil ? 0 : 1, c: output, ldc: outputs, context: context)
    }

    /// Backward: dweight(out, in) += doutput^T input; dbias(out) += column sums of doutput; dinput(N, in) =
    /// doutput weight (overwritten, or added to when `accumulateInput`).
    static func backward(outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         weightGradient: UnsafeMutablePointer<Float>, biasGradient: UnsafeMutablePointer<Float>?,
                         inputGradient: UnsafeMutablePointer<Float>, accumulateInput: Bool = false,
                         rows N: Int, inputs: Int, outputs: Int, context: ComputeContext) {
        // through the product, to the weight: dW(out, in) += dout^T(out, N) input(N, in)
        BLAS.gemm(.transposed, .none, m: outputs, n: inputs, k: N, a: outputGradient, lda: outputs, b: input,
                  ldb: inputs, beta: 1, c: weightGradient, ldc: inputs, context: context)
        // through the bias, added to every row
        if let biasGradient { addColumnSums(of: outputGradient, rows: N, columns: outputs, into: biasGradient, context: context) }
        // through the product, to the input: din(N, in) = dout(N, out) W(out, in)
        BLAS.gemm(.none, .none, m: N, n: inputs, k: outputs, a: outputGradient, lda: outputs, b: weight, ldb: inputs,
                  beta: accumulateInput ? 1 : 0, c: inputGradient, ldc: inputs, context: context)
    }
}

/// sums(columns) += the column sums of matrix(rows, columns); each thread sums its own columns.
func addColumnSums(of matrix: UnsafePointer<Float>, rows: Int, columns: Int, into sums: UnsafeMutablePointer<Float>,
                   context: ComputeContext) {
    context.team.runParts(work: rows * columns) { member in
        let share = member.share(of: columns)
        if share.isEmpty { return }
        for r in 0..<rows {
            let row = matrix + r * columns
            for j in share { sums[j] += row[j] }
        }
    }
}

/// LayerNorm over the last dimension, PyTorch's F.layer_norm: biased variance, eps 1e-5.
///
/// Each row's sums run on 16 lanes (VectorMath.swift) and are added up at the end: an order of additions other than
/// one by one, within float32 rounding of it.
enum LayerNorm {
    static let epsilon: Float = 1e-5

    /// output(N, E) = (input - mean) * rstd * weight + bias, row by row; keeps each row's mean(N) and
    /// rstd(N) = 1 / sqrt(variance + eps) for backward.
    static func forward(input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        output: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                        rstd: UnsafeMutablePointer<Float>, rows N: Int, width E: Int, context: ComputeContext) {
        context.team.runParts(work: N * E * 4) { member in
            forward(rows: member.share(of: N), input: input, weight: weight, bias: bias, output: output, mean: mean,
                    rstd: rstd, width: E)
        }
    }

    /// `forward` of the rows `rows` on the calling thread.
    static func forward(rows: Range<Int>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                        mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>, width E: Int) {
        for r in rows {
            let x = input + r * E, y = output + r * E
            var sum = Lanes()
            @inline(always) func addUp(_ i: Int, _ n: Int) { sum += load(x + i, lanes: n) }
            forEachGroup(E, addUp)
            let m = sum.sum() / Float(E)
            var squares = Lanes()
            @inline(always) func addSquares(_ i: Int, _ n: Int) {
                let centred = masked(load(x + i, lanes: n) - m, lanes: n)
                squares += centred * centred
            }
            forEachGroup(E, addSquares)
            let s = 1 / (squares.sum() / Float(E) + epsilon).squareRoot()
            @inline(always) func normalise(_ i: Int, _ n: Int) {
                var value = (load(x + i, lanes: n) - m) * s * load(weight + i, lanes: n)
                if let bias { value += load(bias + i, lanes: n) }
                store(value, y + i, lanes: n)
            }
            forEachGroup(E, normalise)
            mean[r] = m
            rstd[r] = s
        }
    }

    /// Backward, with x^ = (input - mean) * rstd and dx^ = doutput * weight:
    /// dinput += rstd * (dx^ - mean(dx^) - x^ * mean(dx^ * x^)) (added: the input is the residual stream, whose
    /// gradient already holds what flowed past the block); dweight += sum over rows of doutput * x^; dbias += sum of
    /// doutput.
    static func backward(outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                         inputGradient: UnsafeMutablePointer<Float>, weightGradient: UnsafeMutablePointer<Float>,
                         biasGradient: UnsafeMutablePointer<Float>?, rows N: Int, width E: Int, context: ComputeContext) {
        // through the normalisation, to the input: rows split among the threads
        context.team.runParts(work: N * E * 4) { member in
            for r in member.share(of: N) {
                let x = input + r * E, dy = outputGradient + r * E, dx = inputGradient + r * E
                let (m, s) = (mean[r], rstd[r])
                var sumDxHat = Lanes(), sumDxHatXHat = Lanes()
                @inline(always) func addUp(_ i: Int, _ n: Int) {
                    let dxHat = load(dy + i, lanes: n) * load(weight + i, lanes: n)
                    sumDxHat += dxHat
                    sumDxHatXHat += dxHat * (load(x + i, lanes: n) - m) * s  // dxHat is 0 past a partial group's lanes
                }
                forEachGroup(E, addUp)
                let (meanDxHat, meanDxHatXHat) = (sumDxHat.sum() / Float(E), sumDxHatXHat.sum() / Float(E))
                @inline(always) func propagate(_ i: Int, _ n: Int) {
                    let xHat = (load(x + i, lanes: n) - m) * s
                    let dxHat = load(dy + i, lanes: n) * load(weight + i, lanes: n)
                    store(load(dx + i, lanes: n) + s * (dxHat - meanDxHat - xHat * meanDxHatXHat), dx + i, lanes: n)
                }
                forEachGroup(E, propagate)
            }
        }
        // through the scale and shift, to weight and bias: columns split among the threads
        context.team.runParts(work: N * E * 2) { member in
            let columns = member.share(of: E)
            if columns.isEmpty { return }
            for r in 0..<N {
                let x = input + r * E, dy = outputGradient + r * E
                let (m, s) = (mean[r], rstd[r])
                @inline(always) func accumulate(_ offset: Int, _ n: Int) {
                    let i = columns.lowerBound + offset
                    let dyLanes = load(dy + i, lanes: n)
                    store(load(weightGradient + i, lanes: n) + dyLanes * (load(x + i, lanes: n) - m) * s,
                          weightGradient + i, lanes: n)
                    if let biasGradient { store(load(biasGradient + i, lanes: n) + dyLanes, biasGradient + i, lanes: n) }
                }
                forEachGroup(columns.count, accumulate)
            }
        }
    }
}

/// GELU as PyTorch's nn.GELU() computes it by default: x Phi(x) = x (1 + erf(x / sqrt 2)) / 2 (not the tanh
/// approximation), with erf on 16 lanes (`errorFunction`, VectorMath.swift: absolute error below 3e-7).
enum GELU {
    /// output(count) = gelu(input).
    static func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int,
                        context: ComputeContext) {
        context.team.runParts(work: count * 16) { member in
            let share = member.share(of: count)
            forward(input: input + share.lowerBound, output: output + share.lowerBound, count: share.count)
        }
    }

    /// output(count) = gelu(input), on the calling thread.
    static func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int) {
        let rootHalf = Float(0.5).squareRoot()
        @inline(always) func group(_ i: Int, _ n: Int) {
            let value = load(input + i, lanes: n)
            store(0.5 * value * (1 + errorFunction(value * rootHalf)), output + i, lanes: n)
        }
        forEachGroup(count, group)
    }

    /// Backward, in place: gradient(count) *= gelu'(input) = Phi(x) + x phi(x), phi the standard normal density.
    static func backward(input: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>, count: Int,
                         context: ComputeContext) {
        let (rootHalf, inverseRootTwoPi) = (Float(0.5).squareRoot(), 1 / Float(2 * Double.pi).squareRoot())
        context.team.runParts(work: count * 16) { member in
            let share = member.share(of: count)
            let (x, dx) = (input + share.lowerBound, gradient + share.lowerBound)
            @inline(always) func group(_ i: Int, _ n: Int) {
                let value = load(x + i, lanes: n)
                let cdf = 0.5 * (1 + errorFunction(value * rootHalf))
                let density = inverseRootTwoPi * exponential(-0.5 * value * value)
                store(load(dx + i, lanes: n) * (cdf + value * density), dx + i, lanes: n)
            }
            forEachGroup(share.count, group)
        }
    }
}

/// Causal multi-head self-attention over B sequences of T steps: for each sequence b and head h, with Q, K, V the
/// (T, HS) slices of qkv, P = softmax(Q K^T / sqrt(HS)) over keys s <= t (the causal mask), dropped out, and
/// Y = P V. nanoGPT's CausalSelfAttention between c_attn and c_proj.
///
/// Layouts: qkv (T, B, 3E), q then k then v, head h at columns h*HS ..< (h+1)*HS of each; y (T, B, E), head h at
/// columns h*HS; the weights (B, NH, T, T), row t the query, column s the key, zero above the diagonal. Each (b, h)
/// reads and writes its own slices, so the pairs are shared among the threads.
struct CausalAttention {
    let length: Int, batch: Int, heads: Int, headSize: Int
    var embedding: Int { heads * headSize }
    /// 1 / sqrt(HS).
    var scale: Float { 1 / Float(headSize).squareRoot() }

    /// The (T, T) block of (B, NH, T, T) weights for sequence b and head h.
    func block(_ weights: UnsafeMutablePointer<Float>, _ b: Int, _ h: Int) -> UnsafeMutablePointer<Float> {
        weights + (b * heads + h) * length * length
    }

    /// Fills `weights` with P and, where `mask` is given (the dropout mask, (B, NH, T, T)), `dropped` with P * mask;
    /// y = (P or P * mask) V. The products skip what the causal mask hides (CausalProducts.swift).
    func forward(qkv: UnsafePointer<Float>, weights: UnsafeMutablePointer<Float>, mask: UnsafePointer<Float>?,
                 dropped: UnsafeMutablePointer<Float>, output y: UnsafeMutablePointer<Float>, context: ComputeContext) {
        let (T, B, HS, E) = (length, batch, headSize, embedding)
        let rowStride = B * 3 * E
        let products = CausalProducts(length: T, headSize: HS)
        context.team.runParts(work: B * heads * T * T * HS) { member in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: products.transposedCount + products.sliceCount) {
                let keysT = $0.baseAddress!, values = keysT + products.transposedCount
                for pair in member.share(of: B * heads) {
                    let (b, h) = (pair / heads, pair % heads)
                    let q = qkv + b * 3 * E + h * HS, k = q + E, v = q + 2 * E
                    let p = block(weights, b, h)
                    // scores(T, T) = Q(T, HS) K^T(HS, T) / sqrt(HS); only s <= t is used
                    products.transposeKeys(k, stride: rowStride, into: keysT)
                    products.scores(q, stride: rowStride, keysT: keysT, scale: scale, into: p)
                    // softmax over s <= t of each row t; zero above the diagonal
                    for t in 0..<T {
                        softmax(p + t * T, count: t + 1)
                        (p + t * T + t + 1).update(repeating: 0, count: T - t - 1)
                    }
                    // through the dropout on the weights
                    var used = UnsafePointer(p)
                    if let mask {
                        let (m, d) = (mask + (b * heads + h) * T * T, block(dropped, b, h))
                        for index in 0..<(T * T) { d[index] = p[index] * m[index] }
                        used = UnsafePointer(d)
                    }
                    // y(T, HS) = P(T, T) V(T, HS)
                    products.gather(v, stride: rowStride, into: values)
                    products.pastSum(used, values, stride: HS, scale: 1, into: y + b * E + h * HS, outStride: B * E)
                }
            }
        }
    }

    /// Backward: dqkv (T, B, 3E) = dLoss/dqkv, overwritten, from dy (T, B, E). `scratch` (B, NH, T, T) holds the
    /// dropped-out weights P * mask again (when `mask` is given), then the weights' and the scores' gradients.
    func backward(outputGradient dy: UnsafePointer<Float>, qkv: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                  mask: UnsafePointer<Float>?, scratch: UnsafeMutablePointer<Float>,
                  qkvGradient: UnsafeMutablePointer<Float>, context: ComputeContext) {
        let (T, B, HS, E) = (length, batch, headSize, embedding)
        let rowStride = B * 3 * E
        let products = CausalProducts(length: T, headSize: HS)
        context.team.runParts(work: B * heads * T * T * HS * 2) { member in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: products.transposedCount + 2 * products.sliceCount) {
                let valuesT = $0.baseAddress!
                let (slice, gradientSlice) = (valuesT + products.transposedCount,
                                              valuesT + products.transposedCount + products.sliceCount)
                for pair in member.share(of: B * heads) {
                    let (b, h) = (pair / heads, pair % heads)
                    let offset = b * 3 * E + h * HS
                    let (q, k, v) = (qkv + offset, qkv + offset + E, qkv + offset + 2 * E)
                    let (dq, dk, dv) = (qkvGradient + offset, qkvGradient + offset + E, qkvGradient + offset + 2 * E)
                    let dyBlock = dy + b * E + h * HS
                    let p = weights + (b * heads + h) * T * T
                    let d = block(scratch, b, h)
                    let m = mask.map { $0 + (b * heads + h) * T * T }
                    // P' = P * mask, as the forward used it
                    if let m { for index in 0..<(T * T) { d[index] = p[index] * m[index] } }
                    // through y = P' V, to V: dV(T, HS) = P'^T(T, T) dy(T, HS)
                    products.gather(dyBlock, stride: B * E, into: gradientSlice)
                    products.futureSum(m == nil ? p : UnsafePointer(d), gradientSlice, stride: HS, scale: 1, into: dv,
                                       outStride: rowStride)
                    // ... and to P': dP'(T, T) = dy(T, HS) V^T(HS, T), for s <= t
                    products.transposeKeys(v, stride: rowStride, into: valuesT)
                    products.scores(gradientSlice, stride: HS, keysT: valuesT, scale: 1, into: d)
                    // through the dropout: dP = dP' * mask
                    if let m { for index in 0..<(T * T) { d[index] *= m[index] } }
                    // through the softmax, row by row: dscores_s = P_s (dP_s - sum_s' P_s' dP_s'), zero above the
                    // diagonal
                    for t in 0..<T {
                        softmaxBackward(weights: p + t * T, gradient: d + t * T, count: t + 1)
                        (d + t * T + t + 1).update(repeating: 0, count: T - t - 1)
                    }
                    // through scores = Q K^T / sqrt(HS): dQ(T, HS) = dscores K / sqrt(HS); dK(T, HS) = dscores^T Q / sqrt(HS)
                    products.gather(k, stride: rowStride, into: slice)
                    products.pastSum(d, slice, stride: HS, scale: scale, into: dq, outStride: rowStride)
                    products.gather(q, stride: rowStride, into: slice)
                    products.futureSum(d, slice, stride: HS, scale: scale, into: dk, outStride: rowStride)
                }
            }
        }
    }
}

/// scores(count) = softmax(scores), in place: one query's weights over the keys it sees. On 16 lanes, with
/// `exponential` (VectorMath.swift), whose clamp at -87 leaves a weight of at least 1.6e-38 where e^x is smaller; a
/// NaN score stays NaN (the clamp alone would make it e^88).
func softmax(_ scores: UnsafeMutablePointer<Float>, count: Int) {
    var maximum = Lanes(repeating: -.infinity)
    @inline(always) func findMaximum(_ s: Int, _ n: Int) {
        let value = masked(load(scores + s, lanes: n), lanes: n, filler: -.infinity)
        maximum = maximum.replacing(with: value, where: value .> maximum)
    }
    forEachGroup(count, findMaximum)
    let largest = maximum.max()
    var sum = Lanes()
    @inline(always) func exponentiate(_ s: Int, _ n: Int) {
        let score = load(scores + s, lanes: n)
        let value = masked(exponential(score - largest), lanes: n).replacing(with: score, where: score .!= score)
        store(value, scores + s, lanes: n)
        sum += value
    }
    forEachGroup(count, exponentiate)
    let inverse = 1 / sum.sum()
    @inline(always) func normalise(_ s: Int, _ n: Int) { store(load(scores + s, lanes: n) * inverse, scores + s, lanes: n) }
    forEachGroup(count, normalise)
}

/// Backward through one query's softmax, in place: dscores_s = P_s (dP_s - sum_s' P_s' dP_s') over s < count, from
/// the weights P (count) and their gradient dP (count), which becomes dscores.
func softmaxBackward(weights: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>, count: Int) {
    var dot = Lanes()
    @inline(always) func addUp(_ s: Int, _ n: Int) { dot += load(weights + s, lanes: n) * load(gradient + s, lanes: n) }
    forEachGroup(count, addUp)
    let total = dot.sum()
    @inline(always) func propagate(_ s: Int, _ n: Int) {
        store(load(weights + s, lanes: n) * (load(gradient + s, lanes: n) - total), gradient + s, lanes: n)
    }
    forEachGroup(count, propagate)
}

/// A residual connection with dropout on the branch: stream(count) = input + branch * mask (mask nil: no dropout).
/// `stream` may be `input` itself.
enum Residual {
    static func forward(input: UnsafePointer<Float>, branch: UnsafePointer<Float>, mask: UnsafePointer<Float>?,
                        output: UnsafeMutablePointer<Float>, count: Int) {
        if let mask {
            for i in 0..<count { output[i] = input[i] + branch[i] * mask[i] }
        } else {
            for i in 0..<count { output[i] = input[i] + branch[i] }
        }
    }

    /// Backward: the input's gradient is the stream's (it flows on unchanged, in place); the branch's is
    /// dstream * mask, written to `branchGradient`.
    static func backward(streamGradient: UnsafePointer<Float>, mask: UnsafePointer<Float>?,
                         branchGradient: UnsafeMutablePointer<Float>, count: Int) {
        if let mask {
            for i in 0..<count { branchGradient[i] = streamGradient[i] * mask[i] }
        } else {
            branchGradient.update(from: streamGradient, count: count)
        }
    }

    /// `forward` with the context's team sharing the elements.
    static func forward(input: UnsafePointer<Float>, branch: UnsafePointer<Float>, mask: UnsafePointer<Float>?,
                        output: UnsafeMutablePointer<Float>, count: Int, context: ComputeContext) {
        context.team.runParts(work: count) { member in
            let part = member.share(of: count), first = part.lowerBound
            forward(input: input + first, branch: branch + first, mask: mask.map { $0 + first }, output: output + first,
                    count: part.count)
        }
    }

    /// `backward` with the context's team sharing the elements.
    static func backward(streamGradient: UnsafePointer<Float>, mask: UnsafePointer<Float>?,
                         branchGradient: UnsafeMutablePointer<Float>, count: Int, context: ComputeContext) {
        context.team.runParts(work: count) { member in
            let part = member.share(of: count), first = part.lowerBound
            backward(streamGradient: streamGradient + first, mask: mask.map { $0 + first },
                     branchGradient: branchGradient + first, count: part.count)
        }
    }
}
