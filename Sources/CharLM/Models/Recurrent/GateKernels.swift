// The cells' element-wise work (the LSTM's, then the GRU's and the vanilla RNN's), fused and vectorised: one pass per
// time step applies the gate nonlinearities and the cell update (forward), or their derivatives (backward), 16 hidden
// units at a time. Matrix products are not here
// (they go to the packed kernel, PackedProduct.swift, and to BLAS, BLAS.swift); the naive per-gate scalar twin of
// these kernels lives in the tests.
//
// The nonlinearities come from VectorMath.swift: the C library's scalar `expf`, called five times per unit per step,
// was most of the forward pass's time before (423 of 612 ms per step on the default model; 113 after).

/// The forward cell on 16 units: pre-activations and c_{t-1} in; activations, c_t and h_t out.
@inline(__always) private func cellForward(
    _ aI: Lanes, _ aF: Lanes, _ aG: Lanes, _ aO: Lanes, _ cellPrevious: Lanes
) -> (i: Lanes, f: Lanes, g: Lanes, o: Lanes, c: Lanes, h: Lanes) {
    let i = sigmoid(aI), f = sigmoid(aF), g = tanh(aG), o = sigmoid(aO)
    let c = f * cellPrevious + i * g
    return (i, f, g, o, c, o * tanh(c))
}

/// One time step's cell, forward, for B sequences:
///   i, f, o = sigmoid(a), g = tanh(a);  c_t = f c_{t-1} + i g;  h_t = o tanh(c_t)
///
/// - Parameters:
///   - gates: (B, 4H) pre-activations a (biases included) on entry; the activations i, f, g, o on return.
///   - cellPrevious: (B, H) c_{t-1}.
///   - cell: (B, H) receives c_t.
///   - hidden: (B, H) receives h_t.
func lstmCellForward(
    gates: UnsafeMutablePointer<Float>, cellPrevious: UnsafePointer<Float>,
    cell: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>, batch B: Int, hiddenSize H: Int
) {
    let (full, tailStart, tail) = groups(H)
    for b in 0..<B {
        let a = gates + b * 4 * H
        let row = b * H
        for j in full {
            let out = cellForward(
                load(a + j), load(a + H + j), load(a + 2 * H + j), load(a + 3 * H + j), load(cellPrevious + row + j))
            store(out.i, a + j); store(out.f, a + H + j); store(out.g, a + 2 * H + j); store(out.o, a + 3 * H + j)
            store(out.c, cell + row + j); store(out.h, hidden + row + j)
        }
        if tail > 0 {
            let j = tailStart
            let out = cellForward(
                loadPartial(a + j, tail), loadPartial(a + H + j, tail), loadPartial(a + 2 * H + j, tail),
                loadPartial(a + 3 * H + j, tail), loadPartial(cellPrevious + row + j, tail))
            storePartial(out.i, a + j, tail); storePartial(out.f, a + H + j, tail)
            storePartial(out.g, a + 2 * H + j, tail); storePartial(out.o, a + 3 * H + j, tail)
            storePartial(out.c, cell + row + j, tail); storePartial(out.h, hidden + row + j, tail)
        }
    }
}

/// The backward cell on 16 units: activations, tanh(c_t), c_{t-1}, dLoss/dh_t (both paths summed) and dLoss/dc_t
/// from step t+1 in; dLoss/d(pre-activations) and dLoss/dc_{t-1} out.
@inline(__always) private func cellBackward(
    i: Lanes, f: Lanes, g: Lanes, o: Lanes, tanhC: Lanes, cellPrevious: Lanes, dHidden dh: Lanes, dCellNext: Lanes
) -> (dI: Lanes, dF: Lanes, dG: Lanes, dO: Lanes, dCellPrevious: Lanes) {
    // through h_t = o * tanh(c_t)
    let dO = dh * tanhC
    let dc = dCellNext + dh * o * (1 - tanhC * tanhC)
    // through c_t = f * c_{t-1} + i * g, then the gate nonlinearities: sigmoid' = s(1 - s), tanh' = 1 - tanh^2
    return (dc * g * i * (1 - i), dc * cellPrevious * f * (1 - f), dc * i * (1 - g * g), dO * o * (1 - o), dc * f)
}

/// One time step's cell, backward, the mirror of `lstmCellForward`.
///
/// - Parameters:
///   - gates: (B, 4H) the activations i, f, g, o of this step on entry; dLoss/d(pre-activations) on return.
///   - cellPrevious: (B, H) c_{t-1}.
///   - cell: (B, H) c_t (its tanh is recomputed here rather than stored).
///   - outputGradient: (B, H) dLoss/dh_t from above.
///   - hiddenGradient: (B, H) dLoss/dh_t from step t+1 (through W_hh).
///   - cellGradient: (B, H) dLoss/dc_t from step t+1 on entry; dLoss/dc_{t-1} on return.
func lstmCellBackward(
    gates: UnsafeMutablePointer<Float>, cellPrevious: UnsafePointer<Float>, cell: UnsafePointer<Float>,
    outputGradient: UnsafePointer<Float>, hiddenGradient: UnsafePointer<Float>,
    cellGradient: UnsafeMutablePointer<Float>, batch B: Int, hiddenSize H: Int
) {
    let (full, tailStart, tail) = groups(H)
    for b in 0..<B {
        let a = gates + b * 4 * H
        let row = b * H
        // h_t feeds the layer above and step t+1, so its gradient is the sum of both.
        for j in full {
            let out = cellBackward(
                i: load(a + j), f: load(a + H + j), g: load(a + 2 * H + j), o: load(a + 3 * H + j),
                tanhC: tanh(load(cell + row + j)), cellPrevious: load(cellPrevious + row + j),
                dHidden: load(outputGradient + row + j) + load(hiddenGradient + row + j),
                dCellNext: load(cellGradient + row + j))
            store(out.dI, a + j); store(out.dF, a + H + j); store(out.dG, a + 2 * H + j)
            store(out.dO, a + 3 * H + j); store(out.dCellPrevious, cellGradient + row + j)
        }
        if tail > 0 {
            let j = tailStart
            let out = cellBackward(
                i: loadPartial(a + j, tail), f: loadPartial(a + H + j, tail), g: loadPartial(a + 2 * H + j, tail),
                o: loadPartial(a + 3 * H + j, tail), tanhC: tanh(loadPartial(cell + row + j, tail)),
                cellPrevious: loadPartial(cellPrevious + row + j, tail),
                dHidden: loadPartial(outputGradient + row + j, tail) + loadPartial(hiddenGradient + row + j, tail),
                dCellNext: loadPartial(cellGradient + row + j, tail))
            storePartial(out.dI, a + j, tail); storePartial(out.dF, a + H + j, tail)
            storePartial(out.dG, a + 2 * H + j, tail); storePartial(out.dO, a + 3 * H + j, tail)
            storePartial(out.dCellPrevious, cellGradient + row + j, tail)
        }
    }
}

// MARK: - The GRU and the vanilla RNN
//
// Written one group of 16 units at a time by an always-inlined function that takes the group's width: the loops call
// it with 16 for the full groups, so the compiler folds its loads and stores to whole vectors, and once with the
// width of the last partial group (see `groups`).

/// `n` (<= 16) floats: a whole vector when n is 16.
@inline(__always) private func read(_ pointer: UnsafePointer<Float>, _ n: Int) -> Lanes {
    n == Lanes.scalarCount ? load(pointer) : loadPartial(pointer, n)
}

/// Writes the low `n` (<= 16) lanes.
@inline(__always) private func write(_ value: Lanes, _ pointer: UnsafeMutablePointer<Float>, _ n: Int) {
    if n == Lanes.scalarCount { store(value, pointer) } else { storePartial(value, pointer, n) }
}

/// The GRU's forward cell on `n` units of one row; `a`, `u` point at the row's (3H) blocks, offset to the group.
@inline(__always) private func gruGroupForward(
    a: UnsafeMutablePointer<Float>, u: UnsafeMutablePointer<Float>, biasHN: UnsafePointer<Float>,
    hiddenPrevious: UnsafePointer<Float>, hidden: UnsafeMutablePointer<Float>, H: Int, n: Int
) {
    let r = sigmoid(read(a, n) + read(u, n))
    let z = sigmoid(read(a + H, n) + read(u + H, n))
    let hn = read(u + 2 * H, n) + read(biasHN, n)
    let candidate = tanh(read(a + 2 * H, n) + r * hn)
    let previous = read(hiddenPrevious, n)
    write(r, a, n); write(z, a + H, n); write(candidate, a + 2 * H, n); write(hn, u + 2 * H, n)
    write(candidate + z * (previous - candidate), hidden, n)  // (1 - z) n + z h_{t-1}
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
func gruCellForward(
    gates: UnsafeMutablePointer<Float>, recurrent: UnsafeMutablePointer<Float>, biasHN: UnsafePointer<Float>,
    hiddenPrevious: UnsafePointer<Float>, hidden: UnsafeMutablePointer<Float>, batch B: Int, hiddenSize H: Int
) {
    let (full, tailStart, tail) = groups(H)
    for b in 0..<B {
        let (a, u, row) = (gates + b * 3 * H, recurrent + b * 3 * H, b * H)
        for j in full {
            gruGroupForward(a: a + j, u: u + j, biasHN: biasHN + j, hiddenPrevious: hiddenPrevious + row + j,
                            hidden: hidden + row + j, H: H, n: Lanes.scalarCount)
        }
        if tail > 0 {
            let j = tailStart
            gruGroupForward(a: a + j, u: u + j, biasHN: biasHN + j, hiddenPrevious: hiddenPrevious + row + j,
                            hidden: hidden + row + j, H: H, n: tail)
        }
    }
}

/// The GRU's backward cell on `n` units of one row, the mirror of `gruGroupForward`.
@inline(__always) private func gruGroupBackward(
    a: UnsafeMutablePointer<Float>, u: UnsafeMutablePointer<Float>, hiddenPrevious: UnsafePointer<Float>,
    outputGradient: UnsafePointer<Float>, hiddenGradient: UnsafeMutablePointer<Float>, H: Int, n: Int
) {
    let (r, z, candidate, hn) = (read(a, n), read(a + H, n), read(a + 2 * H, n), read(u + 2 * H, n))
    // h_t feeds the layer above and step t+1, so its gradient is the sum of both.
    let dh = read(outputGradient, n) + read(hiddenGradient, n)
    // through h_t = (1 - z) n + z h_{t-1}, then tanh' = 1 - n^2 and sigmoid' = s (1 - s)
    let dCandidate = dh * (1 - z) * (1 - candidate * candidate)
    let dZ = dh * (read(hiddenPrevious, n) - candidate) * z * (1 - z)
    // through n = tanh(a_n + r (u_n + b_hn)): r multiplies u_n + b_hn
    let dR = dCandidate * hn * r * (1 - r)
    write(dR, a, n); write(dZ, a + H, n); write(dCandidate, a + 2 * H, n)
    write(dR, u, n); write(dZ, u + H, n); write(dCandidate * r, u + 2 * H, n)
    write(dh * z, hiddenGradient, n)  // the direct path to h_{t-1}; the product with W_hh adds the rest
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
func gruCellBackward(
    gates: UnsafeMutablePointer<Float>, recurrent: UnsafeMutablePointer<Float>, hiddenPrevious: UnsafePointer<Float>,
    outputGradient: UnsafePointer<Float>, hiddenGradient: UnsafeMutablePointer<Float>, batch B: Int, hiddenSize H: Int
) {
    let (full, tailStart, tail) = groups(H)
    for b in 0..<B {
        let (a, u, row) = (gates + b * 3 * H, recurrent + b * 3 * H, b * H)
        for j in full {
            gruGroupBackward(a: a + j, u: u + j, hiddenPrevious: hiddenPrevious + row + j,
                             outputGradient: outputGradient + row + j, hiddenGradient: hiddenGradient + row + j,
                             H: H, n: Lanes.scalarCount)
        }
        if tail > 0 {
            let j = tailStart
            gruGroupBackward(a: a + j, u: u + j, hiddenPrevious: hiddenPrevious + row + j,
                             outputGradient: outputGradient + row + j, hiddenGradient: hiddenGradient + row + j,
                             H: H, n: tail)
        }
    }
}

/// One time step's vanilla RNN cell, forward (PyTorch's nn.RNN, tanh): h_t = tanh(a), a = x W_ih^T + b_ih +
/// h_{t-1} W_hh^T + b_hh.
///
/// - Parameters:
///   - preactivations: (B, H) a on entry; h_t on return.
///   - hidden: (B, H) receives h_t.
func rnnCellForward(
    preactivations: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>, batch B: Int, hiddenSize H: Int
) {
    let (full, tailStart, tail) = groups(B * H)  // no gate blocks: the rows are contiguous
    for j in full {
        let h = tanh(load(preactivations + j))
        store(h, preactivations + j); store(h, hidden + j)
    }
    if tail > 0 {
        let h = tanh(loadPartial(preactivations + tailStart, tail))
        storePartial(h, preactivations + tailStart, tail); storePartial(h, hidden + tailStart, tail)
    }
}

/// One time step's vanilla RNN cell, backward: da = (dLoss/dh_t from above + from step t+1) (1 - h_t^2).
///
/// - Parameters:
///   - preactivations: (B, H) h_t on entry; dLoss/da on return.
///   - outputGradient: (B, H) dLoss/dh_t from above.
///   - hiddenGradient: (B, H) dLoss/dh_t from step t+1.
func rnnCellBackward(
    preactivations: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>,
    hiddenGradient: UnsafePointer<Float>, batch B: Int, hiddenSize H: Int
) {
    let (full, tailStart, tail) = groups(B * H)
    for j in full {
        let h = load(preactivations + j)
        store((load(outputGradient + j) + load(hiddenGradient + j)) * (1 - h * h), preactivations + j)
    }
    if tail > 0 {
        let j = tailStart
        let h = loadPartial(preactivations + j, tail)
        let dh = loadPartial(outputGradient + j, tail) + loadPartial(hiddenGradient + j, tail)
        storePartial(dh * (1 - h * h), preactivations + j, tail)
    }
}
