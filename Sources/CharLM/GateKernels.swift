// The LSTM's element-wise work, fused and vectorised: one pass per time step applies the gate nonlinearities and the
// cell update (forward), or their derivatives (backward), 16 hidden units at a time. Matrix products are not here
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
