// Softmax cross-entropy over the vocabulary, and its gradient: the last arrow of the forward pass and the first of
// the backward pass.

import Foundation

/// Mean cross-entropy of `rows` rows of (V) logits against their target indices, in nats.
///
/// When `gradient` is true the logits are overwritten with dLoss/dlogits = (softmax(logits) - onehot(target)) / rows,
/// the gradient of the mean.
///
/// - Parameters:
///   - logits: (rows, V) scores, row-major.
///   - targets: (rows) indices in 0..<V.
func softmaxCrossEntropy(
    logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int32>, rows: Int, classes V: Int, gradient: Bool
) -> Double {
    var total = 0.0
    let scale = 1 / Float(rows)
    let (full, tailStart, tail) = groups(V)
    for r in 0..<rows {
        let row = logits + r * V
        let target = Int(targets[r])
        let targetLogit = row[target]
        // A NaN or infinite logit makes the row's loss NaN (0 * x is NaN exactly then); `max` alone would skip a NaN
        // and report a finite loss for a broken model.
        var maximum = -Float.infinity, nonFinite: Float = 0
        for v in 0..<V {
            maximum = max(maximum, row[v])
            nonFinite += 0 * row[v]
        }
        if nonFinite.isNaN {
            total = .nan
            continue
        }
        // exp(x_v - max), 16 classes at a time, and their sum; kept in the row when the gradient is wanted.
        let shift = Lanes(repeating: maximum)
        var sums = Lanes()
        for v in full {
            let e = exponential(load(row + v) - shift)
            if gradient { store(e, row + v) }
            sums += e
        }
        if tail > 0 {
            let e = exponential(loadPartial(row + tailStart, tail) - shift)
            if gradient { storePartial(e, row + tailStart, tail) }
            for lane in 0..<tail { sums[lane] += e[lane] }
        }
        let sum = Double(sums.sum())
        // -log softmax(x)_target = log(sum_v exp(x_v - max)) + max - x_target
        total += log(sum) + Double(maximum) - Double(targetLogit)
        if gradient {
            let factor = Float(1 / sum) * scale
            for v in 0..<V { row[v] *= factor }
            row[target] -= scale
        }
    }
    return total / Double(rows)
}
