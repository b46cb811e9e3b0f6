// The cells' element-wise work (the LSTM's, then the GRU's and the vanilla RNN's), fused and vectorised: one pass per
// time step applies the gate nonlinearities and the cell update (forward), or their derivatives (backward), 16 hidden
// units at a time. Matrix products are not here (they go to the packed kernel, PackedProduct.swift, and to BLAS,
// BLAS.swift); the naive per-gate scalar twin of these kernels lives in the tests (NaiveReference.swift).
//
// Each kernel is a loop over the rows of the batch and, in a row, `forEachGroup` (VectorMath.swift) over a range of its
// units: all H of them, or the units one thread owns in the fused time loop (Recurrence.swift), whose range starts at
// a multiple of 16, so the groups are the same either way.
// The loop's body is a local `@inline(always)` function that runs the cell on one group of `n` units (the private
// `...Group...` functions): `n` is 16 for the full groups, so the compiler folds their loads and stores to whole
// vectors, and the width of the last partial group once.
//
// The nonlinearities come from VectorMath.swift: the C library's scalar `expf`, called five times per unit per step,
// was most of the forward pass's time before (423 of 612 ms per step on the default model; 113 after).

// MARK: - The LSTM

/// The LSTM's forward cell on `n` units of one row: `a` points at the row's (4H) block, offset to the group.
@inline(always) private func lstmGroupForward(
    a: UnsafeMutablePointer<Float>, cellPrevious: UnsafePointer<Float>, cell: UnsafeMutablePointer<Float>,
    hidden: UnsafeMutablePointer<Float>, H: Int, n: Int
) {
    let i = sigmoid(load(a, lanes: n)), f = sigmoid(load(a + H, lanes: n))
    let g = tanh(load(a + 2 * H, lanes: n)), o = sigmoid(load(a + 3 * H, lanes: n))
    let c = f * load(cellPrevious, lanes: n) + i * g
    store(i, a, lanes: n); store(f, a + H, lanes: n); store(g, a + 2 * H, lanes: n); store(o, a + 3 * H, lanes: n)
    store(c, cell, lanes: n); store(o * tanh(c), hidden, lanes: n)
}

/// One time step's LSTM cell, forward, for B sequences:
///   i, f, o = sigmoid(a), g = tanh(a);  c_t = f c_{t-1} + i g;  h_t = o tanh(c_t)
///
/// - Parameters:
///   - gates: (B, 4H) pre-activations a (biases included) on entry; the activations i, f, g, o on return.
///   - cellPrevious: (B, H) c_{t-1} (may be `cell` itself: each unit is read before it is written).
///   - cell: (B, H) receives c_t.
///   - hidden: (B, H) receives h_t.
///   - units: the units to compute (of 0..<H); the others are neither read nor written.
func lstmCellForward(
    gates: UnsafeMutablePointer<Float>, cellPrevious: UnsafePointer<Float>,
    cell: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>, batch B: Int, hiddenSize H: Int,
    units: Range<Int>
) {
    for b in 0..<B {
        let (a, row) = (gates + b * 4 * H + units.lowerBound, b * H + units.lowerBound)
        @inline(always) func group(_ j: Int, _ n: Int) {
            lstmGroupForward(a: a + j, cellPrevious: cellPrevious + row + j, cell: cell + row + j,
                             hidden: hidden + row + j, H: H, n: n)
        }
        forEachGroup(units.count, group)
    }
}

/// The LSTM's forward cell on one row in generation's interleaved layout (Stepper.swift): for each group u of U units
/// in `groups` (U a multiple of 16), its pre-activations a at columns 4Uu ..< 4U(u + 1) of `gates` (i, f, g, o, U
/// each; the activations on return), its units at Uu ..< U(u + 1) of `cell` (c_{t-1} in, c_t out) and `hidden` (h_t
/// out). The same arithmetic as `lstmCellForward` on a block of H = U per group, in one call for all of a thread's
/// groups (a call per group of 16 units cost more than the cell's own work at 16 samples).
func lstmCellForwardInterleaved(
    gates: UnsafeMutablePointer<Float>, cell: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>,
    groups: Range<Int>, unitsPerGroup U: Int
) {
    let width = Lanes.scalarCount
    for u in groups {
        for j in stride(from: u * U, to: (u + 1) * U, by: width) {
            lstmGroupForward(a: gates + u * 3 * U + j, cellPrevious: cell + j, cell: cell + j, hidden: hidden + j,
                             H: U, n: width)
        }
    }
}

/// The LSTM's backward cell on `n` units of one row, the mirror of `lstmGroupForward`.
@inline(always) private func lstmGroupBackward(
    a: UnsafeMutablePointer<Float>, cellPrevious: UnsafePointer<Float>, cell: UnsafePointer<Float>,
    outputGradient: UnsafePointer<Float>, hiddenGradient: UnsafePointer<Float>,
    cellGradient: UnsafeMutablePointer<Float>, H: Int, n: Int
) {
    let (i, f, g, o) = (load(a, lanes: n), load(a + H, lanes: n), load(a + 2 * H, lanes: n), load(a + 3 * H, lanes: n))
    let tanhC = tanh(load(cell, lanes: n))
    // h_t feeds the layer above and step t+1, so its gradient is the sum of both.
    let dh = load(outputGradient, lanes: n) + load(hiddenGradient, lanes: n)
    // through h_t = o * tanh(c_t)
    let dO = dh * tanhC
    let dc = load(cellGradient, lanes: n) + dh * o * (1 - tanhC * tanhC)
    // through c_t = f * c_{t-1} + i * g, then the gate nonlinearities: sigmoid' = s(1 - s), tanh' = 1 - tanh^2
    store(dc * g * i * (1 - i), a, lanes: n)
    store(dc * load(cellPrevious, lanes: n) * f * (1 - f), a + H, lanes: n)
    store(dc * i * (1 - g * g), a + 2 * H, lanes: n)
    store(dO * o * (1 - o), a + 3 * H, lanes: n)
    store(dc * f, cellGradient, lanes: n)  // to c_{t-1}
}

/// One time step's LSTM cell, backward, the mirror of `lstmCellForward`.
///
/// - Parameters:
///   - gates: (B, 4H) the activations i, f, g, o of this step on entry; dLoss/d(pre-activations) on return.
///   - cellPrevious: (B, H) c_{t-1}.
///   - cell: (B, H) c_t (its tanh is recomputed here rather than stored).
///   - outputGradient: (B, H) dLoss/dh_t from above.
///   - hiddenGradient: (B, H) dLoss/dh_t from step t+1 (through W_hh).
///   - cellGradient: (B, H) dLoss/dc_t from step t+1 on entry; dLoss/dc_{t-1} on return.
///   - units: the units to compute (of 0..<H); the others are neither read nor written.
func lstmCellBackward(
    gates: UnsafeMutablePointer<Float>, cellPrevious: UnsafePointer<Float>, cell: UnsafePointer<Float>,
    outputGradient: UnsafePointer<Float>, hiddenGradient: UnsafePointer<Float>,
    cellGradient: UnsafeMutablePointer<Float>, batch B: Int, hiddenSize H: Int, units: Range<Int>
) {
    for b in 0..<B {
        let (a, row) = (gates + b * 4 * H + units.lowerBound, b * H + units.lowerBound)
        @inline(always) func group(_ j: Int, _ n: Int) {
            lstmGroupBackward(a: a + j, cellPrevious: cellPrevious + row + j, cell: cell + row + j,
                              outputGradient: outputGradient + row + j, hiddenGradient: hiddenGradient + row + j,
                              cellGradient: cellGradient + row + j, H: H, n: n)
        }
        forEachGroup(units.count, group)
    }
}

// MARK: - The GRU

/// The GRU's forward cell on `n` units of one row; `a`, `u` point at the row's (3H) blocks, offset to the group.
@inline(always) private func gruGroupForward(
    a: UnsafeMutablePointer<Float>, u: UnsafeMutablePointer<Float>, biasHN: UnsafePointer<Float>,
    hiddenPrevious: UnsafePointer<Float>, hidden: UnsafeMutablePointer<Float>, H: Int, n: Int
) {
    let r = sigmoid(load(a, lanes: n) + load(u, lanes: n))
    let z = sigmoid(load(a + H, lanes: n) + load(u + H, lanes: n))
    let hn = load(u + 2 * H, lanes: n) + load(biasHN, lanes: n)
    let candidate = tanh(load(a + 2 * H, lanes: n) + r * hn)
    let previous = load(hiddenPrevious, lanes: n)
    store(r, a, lanes: n); store(z, a + H, lanes: n); store(candidate, a + 2 * H, lanes: n)
    store(hn, u + 2 * H, lanes: n)
    store(candidate + z * (previous - candidate), hidden, lanes: n)  // (1 - z) n + z h_{t-1}
}

/// One time step's GRU cell, forward, for B sequences (PyTorch's nn.GRU):
///   r = sigmoid(a_r + u_r)  z = sigmoid(a_z + u_z)  n = tanh(a_n + r * (u_n + b_hn))  h_t = (1 - z) n + z h_{t-1}
///
/// - Parameters:
///   - gates: (B, 3H) input projections a (b_ih, and b_hh for r and z, included) on entry; r, z, n on return.
///   - recurrent: (B, 3H) u = h_{t-1} W_hh^T (no bias) on entry; its n block becomes u_n + b_hn on return, which
///     backward needs (the r and z blocks are left as they were).
///   - biasHN: (H) b_hn, the n block of b_hh: inside the reset gate's product, so not in the projection.
///   - hiddenPrevious: (B, H) h_{t-1}.
///   - hidden: (B, H) receives h_t.
///   - units: the units to compute (of 0..<H); the others are neither read nor written.
func gruCellForward(
    gates: UnsafeMutablePointer<Float>, recurrent: UnsafeMutablePointer<Float>, biasHN: UnsafePointer<Float>,
    hiddenPrevious: UnsafePointer<Float>, hidden: UnsafeMutablePointer<Float>, batch B: Int, hiddenSize H: Int,
    units: Range<Int>
) {
    let first = units.lowerBound
    for b in 0..<B {
        let (a, u, row) = (gates + b * 3 * H + first, recurrent + b * 3 * H + first, b * H + first)
        @inline(always) func group(_ j: Int, _ n: Int) {
            gruGroupForward(a: a + j, u: u + j, biasHN: biasHN + first + j, hiddenPrevious: hiddenPrevious + row + j,
                            hidden: hidden + row + j, H: H, n: n)
        }
        forEachGroup(units.count, group)
    }
}

/// The GRU's forward cell on one row in generation's interleaved layout (Stepper.swift): for each group u of U units
/// in `groups` (U a multiple of 16), its input-side pre-activations at columns 3Uu ..< 3U(u + 1) of `gates` (r, z, n,
/// U each; the activations on return) and its recurrent products at the same columns of `recurrent`; its units at
/// Uu ..< U(u + 1) of `biasHN`, `hiddenPrevious` and `hidden`. The same arithmetic as `gruCellForward` on a block of
/// H = U per group, in one call for all of a thread's groups.
func gruCellForwardInterleaved(
    gates: UnsafeMutablePointer<Float>, recurrent: UnsafeMutablePointer<Float>, biasHN: UnsafePointer<Float>,
    hiddenPrevious: UnsafePointer<Float>, hidden: UnsafeMutablePointer<Float>, groups: Range<Int>,
    unitsPerGroup U: Int
) {
    let width = Lanes.scalarCount
    for u in groups {
        for j in stride(from: u * U, to: (u + 1) * U, by: width) {
            gruGroupForward(a: gates + u * 2 * U + j, u: recurrent + u * 2 * U + j, biasHN: biasHN + j,
                            hiddenPrevious: hiddenPrevious + j, hidden: hidden + j, H: U, n: width)
        }
    }
}

/// The GRU's backward cell on `n` units of one row, the mirror of `gruGroupForward`.
@inline(always) private func gruGroupBackward(
    a: UnsafeMutablePointer<Float>, u: UnsafeMutablePointer<Float>, hiddenPrevious: UnsafePointer<Float>,
    outputGradient: UnsafePointer<Float>, hiddenGradient: UnsafeMutablePointer<Float>, H: Int, n: Int
) {
    let (r, z) = (load(a, lanes: n), load(a + H, lanes: n))
    let (candidate, hn) = (load(a + 2 * H, lanes: n), load(u + 2 * H, lanes: n))
    // h_t feeds the layer above and step t+1, so its gradient is the sum of both.
    let dh = load(outputGradient, lanes: n) + load(hiddenGradient, lanes: n)
    // through h_t = (1 - z) n + z h_{t-1}, then tanh' = 1 - n^2 and sigmoid' = s (1 - s)
    let dCandidate = dh * (1 - z) * (1 - candidate * candidate)
    let dZ = dh * (load(hiddenPrevious, lanes: n) - candidate) * z * (1 - z)
    // through n = tanh(a_n + r (u_n + b_hn)): r multiplies u_n + b_hn
    let dR = dCandidate * hn * r * (1 - r)
    store(dR, a, lanes: n); store(dZ, a + H, lanes: n); store(dCandidate, a + 2 * H, lanes: n)
    store(dR, u, lanes: n); store(dZ, u + H, lanes: n); store(dCandidate * r, u + 2 * H, lanes: n)
    store(dh * z, hiddenGradient, lanes: n)  // the direct path to h_{t-1}; the product with W_hh adds the rest
}

/// One time step's GRU cell, backward, the mirror of `gruCellForward`.
///
/// - Parameters:
///   - gates: (B, 3H) r, z, n of this step on entry; dLoss/d(input projection) on return.
///   - recurrent: (B, 3H) (its n block: u_n + b_hn) on entry; dLoss/d(h_{t-1} W_hh^T + b_hh) on return.
///   - hiddenPrevious: (B, H) h_{t-1}.
///   - outputGradient: (B, H) dLoss/dh_t from above.
///   - hiddenGradient: (B, H) dLoss/dh_t from step t+1 on entry; on return the part of dLoss/dh_{t-1} that does not
///     flow through W_hh (z times dLoss/dh_t).
///   - units: the units to compute (of 0..<H); the others are neither read nor written.
func gruCellBackward(
    gates: UnsafeMutablePointer<Float>, recurrent: UnsafeMutablePointer<Float>, hiddenPrevious: UnsafePointer<Float>,
    outputGradient: UnsafePointer<Float>, hiddenGradient: UnsafeMutablePointer<Float>, batch B: Int, hiddenSize H: Int,
    units: Range<Int>
) {
    let first = units.lowerBound
    for b in 0..<B {
        let (a, u, row) = (gates + b * 3 * H + first, recurrent + b * 3 * H + first, b * H + first)
        @inline(always) func group(_ j: Int, _ n: Int) {
            gruGroupBackward(a: a + j, u: u + j, hiddenPrevious: hiddenPrevious + row + j,
                             outputGradient: outputGradient + row + j, hiddenGradient: hiddenGradient + row + j,
                             H: H, n: n)
        }
        forEachGroup(units.count, group)
    }
}

// MARK: - The vanilla RNN (no gate blocks: a step's B rows of all H units are one contiguous run of B*H)

/// One time step's vanilla RNN cell, forward (PyTorch's nn.RNN, tanh): h_t = tanh(a), a = x W_ih^T + b_ih +
/// h_{t-1} W_hh^T + b_hh.
///
/// - Parameters:
///   - preactivations: (B, H) a on entry; h_t on return.
///   - hidden: (B, H) receives h_t.
///   - units: the units to compute (of 0..<H); the others are neither read nor written.
func rnnCellForward(
    preactivations: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>, batch B: Int, hiddenSize H: Int,
    units: Range<Int>
) {
    forEachRun(batch: B, hiddenSize: H, units: units) { start, count in
        @inline(always) func group(_ j: Int, _ n: Int) {
            let h = tanh(load(preactivations + start + j, lanes: n))
            store(h, preactivations + start + j, lanes: n); store(h, hidden + start + j, lanes: n)
        }
        forEachGroup(count, group)
    }
}

/// One time step's vanilla RNN cell, backward: da = (dLoss/dh_t from above + from step t+1) (1 - h_t^2).
///
/// - Parameters:
///   - preactivations: (B, H) h_t on entry; dLoss/da on return.
///   - outputGradient: (B, H) dLoss/dh_t from above.
///   - hiddenGradient: (B, H) dLoss/dh_t from step t+1.
///   - units: the units to compute (of 0..<H); the others are neither read nor written.
func rnnCellBackward(
    preactivations: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>,
    hiddenGradient: UnsafePointer<Float>, batch B: Int, hiddenSize H: Int, units: Range<Int>
) {
    forEachRun(batch: B, hiddenSize: H, units: units) { start, count in
        @inline(always) func group(_ j: Int, _ n: Int) {
            let index = start + j
            let h = load(preactivations + index, lanes: n)
            let dh = load(outputGradient + index, lanes: n) + load(hiddenGradient + index, lanes: n)
            store(dh * (1 - h * h), preactivations + index, lanes: n)
        }
        forEachGroup(count, group)
    }
}

/// The RNN's element-wise runs in a (B, H) block: `units` of every row, as one run of B*H when they are all H units
/// (short rows then fill whole vectors), else one run per row. `body(start, count)`.
@inline(always) private func forEachRun(batch B: Int, hiddenSize H: Int, units: Range<Int>,
                                        _ body: (_ start: Int, _ count: Int) -> Void) {
    if units.count == H { return body(0, B * H) }
    for b in 0..<B { body(b * H + units.lowerBound, units.count) }
}
