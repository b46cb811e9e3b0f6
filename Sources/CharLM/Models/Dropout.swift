// Dropout masks, drawn the same way by every family: each element kept with probability 1 - p and then scaled by
// 1 / (1 - p) (inverted dropout, as PyTorch's nn.Dropout), one draw from the generator per element, in order.

/// Fills `mask` (count) with 1 / (1 - p) where an element is kept and 0 where it is dropped, drawing from
/// `generator`; p is the dropout probability, below 1.
func drawDropoutMask(_ mask: UnsafeMutablePointer<Float>, count: Int, dropout p: Float,
                     generator: inout SeededGenerator) {
    let keep = 1 - p
    let scale = 1 / keep
    for index in 0..<count { mask[index] = generator.nextFloat(in: 0, 1) < keep ? scale : 0 }
}
