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
    for r in 0..<rows {
        let row = logits + r * V
        var maximum = -Float.infinity
        for v in 0..<V { maximum = max(maximum, row[v]) }
        var sum = 0.0
        for v in 0..<V { sum += Double(expf(row[v] - maximum)) }
        let target = Int(targets[r])
        // -log softmax(x)_target = log(sum_v exp(x_v - max)) + max - x_target
        total += log(sum) + Double(maximum) - Double(row[target])
        if gradient {
            let inverseSum = Float(1 / sum)
            for v in 0..<V { row[v] = expf(row[v] - maximum) * inverseSum * scale }
            row[target] -= scale
        }
    }
    return total / Double(rows)
}
