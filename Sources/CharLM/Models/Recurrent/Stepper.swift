// The model one time step at a time, for generation: B sequences (1 for `gen`, K for `samples K`) each advance by
// one character per call. Training's pass (RecurrentModel.swift, Recurrence.swift) is built for T*B rows at once;
// here a step is a few matrix-vector products, so what costs is reading the weights (3.2 MB per character at H 256
// for the LSTM) and meeting between threads. This path reads each weight once per step and meets once per layer, for
// every kind of layer (the LSTM, the GRU, the RNN):
//
// - Gate columns are interleaved by groups of U units: the columns of group u hold, for every input k, the weights
//   of gate 0 for units uU ..< uU+U, then gate 1's, and so on (the input weights W_ih and the recurrent W_hh each as
//   (in, G*Hp) matrices in 64-column panels, PackedProduct.swift's layout). U is the fewest units whose G gates fill
//   whole panels: 16 for the LSTM (i, f, g, o: one panel), 64 for the GRU (r, z, n: three panels) and the RNN (one).
//   A thread that owns a group's panels computes every gate of its units and then their cell update
//   (GateKernels.swift, on U units) without waiting for anyone: the product and the cell are fused, and each thread
//   keeps the same panels, so at H 256 its half of the weights stays in its core's cache from one character to the
//   next.
// - Layer 0's input projection is a row of the (V, G*H) table (embedding W_ih0^T + the projection bias), in the same
//   interleaved order; layers above add their input products to their bias row. The GRU's recurrent product goes
//   to a buffer of its own, as in training (its reset gate multiplies the n block, plus b_hn).
// - The whole step (every layer, then the output layer) is one job on the context's team, with one barrier per
//   layer (layer l+1 reads all of layer l's new h). Hidden states alternate between two slots, so no thread
//   overwrites the h another is still reading.
//
// Arithmetic: each gate pre-activation is bias (or table row) + x W_ih^T + h W_hh^T, each product summed in the order
// k = 0, 1, ... in float32. Training's forward adds the same terms (its table and projection hold the bias, then
// the recurrent product is added), so the two agree to float32 rounding; they are not the same bits, as BLAS's
// products sum in their own order.
//
// With bfloat16 weights (batch 1, `bf16 on`), the same panels hold bfloat16 copies (PackedProduct.swift's
// BFloat16Panels) instead of the float32 values: half the bytes to read per character, sums still in float32; each
// next-character distribution stays within total variation 0.02 of float32's (GenerationPrecisionTests).
//
// Shapes: G gates (4 LSTM, 3 GRU, 1 RNN), H hidden, U units per group, Hp = H rounded up to U (state buffers' row
// length; units past H are computed on zero weights and never read), V vocabulary, B sequences.

/// The precision of the weights generation reads.
public enum GenerationWeights: Sendable {
    /// The model's own float32 values: the same arithmetic as training's forward pass.
    case float32
    /// Copies rounded to bfloat16 (PackedProduct.swift), read at half the bytes, at batch 1; the sums stay float32.
    /// Each next-character distribution stays within a tested bound of float32's (GenerationPrecisionTests).
    case bfloat16
}

/// Runs a recurrent model one character at a time for B sequences, with weights packed for it.
final class Stepper {
    let config: RecurrentConfig
    /// B: sequences stepped together.
    let batch: Int
    /// The layers' kind.
    private let kind: LayerKind
    /// G: gate blocks per layer.
    private let gateCount: Int
    /// U: units per interleaved group, the fewest multiple of 16 whose G gates fill whole 64-column panels.
    private let groupUnits: Int
    /// bfloat16 copies of the weights, in the same interleaved columns (at batch 1 only): per layer above 0 W_ih,
    /// per layer W_hh, and fc.weight^T. Nil for float32.
    private let halfWeights: (input: [BFloat16Panels], recurrent: [BFloat16Panels], output: BFloat16Panels)?
    /// Hp: H rounded up to U.
    private let paddedHidden: Int
    /// Hp / U: groups of units, G*U/64 panels each.
    private let groupCount: Int
    /// Per layer above 0: W_ih packed (H, G*Hp) interleaved.
    private let inputWeights: [PackedMatrix]
    /// Per layer: W_hh packed (H, G*Hp) interleaved.
    private let recurrentWeights: [PackedMatrix]
    /// (V, G*Hp) layer 0's projection of each character (embedding W_ih0^T + the projection bias), interleaved.
    private let table: FloatBuffer
    /// (L, G*Hp) each layer's projection bias, interleaved (layer 0's row unused: its bias is in the table).
    private let biases: FloatBuffer
    /// (L, Hp) the GRU's b_hn per layer (inside its reset gate's product, so not in the projection); empty otherwise.
    private let resetBiases: FloatBuffer
    /// fc.weight^T (H, V) packed in 64-column panels.
    private let outputWeights: PackedMatrix
    /// (V) fc.bias.
    private let outputBias: FloatBuffer
    /// (L, 2, B, Hp) hidden states, two slots per layer: a step reads slot `current` and writes the other.
    private let hidden: FloatBuffer
    /// (L, B, Hp) the LSTM's cell states, updated in place (each thread only its own units); empty otherwise.
    private let cell: FloatBuffer
    /// (B, G*Hp) one layer's gate pre-activations, then activations.
    private let gates: FloatBuffer
    /// (B, G*Hp) the GRU's recurrent product h_{t-1} W_hh^T, kept apart from the input projection; empty otherwise.
    private let recurrentGates: FloatBuffer
    /// (B, V) the scores after the last step.
    let logits: FloatBuffer
    /// Which of the two hidden slots holds the current state.
    private var current = 0

    /// U for G gates: the fewest multiple of 16 units (the cell kernels' vector) whose G gate blocks fill whole
    /// 64-column panels.
    private static func groupUnits(gates G: Int) -> Int {
        var units = 16
        while G * units % 64 != 0 { units += 16 }
        return units
    }

    init(config: RecurrentConfig, batch B: Int, weights: GenerationWeights = .float32) {
        let (V, H, L) = (config.vocabularySize, config.hiddenSize, config.layerCount)
        self.config = config
        batch = B
        kind = config.layerKind
        gateCount = kind.gateCount
        groupUnits = Self.groupUnits(gates: gateCount)
        paddedHidden = (H + groupUnits - 1) / groupUnits * groupUnits
        groupCount = paddedHidden / groupUnits
        let columns = gateCount * paddedHidden
        // float32 panels unless the bfloat16 copies replace them (batch 1)
        let half = weights == .bfloat16 && B == 1
        inputWeights = half ? [] : (1..<max(1, L)).map { _ in PackedMatrix(rows: H, columns: columns, kernel: .wide) }
        recurrentWeights = half ? [] : (0..<L).map { _ in PackedMatrix(rows: H, columns: columns, kernel: .wide) }
        table = FloatBuffer(count: V * columns)
        biases = FloatBuffer(count: L * columns)
        resetBiases = FloatBuffer(count: kind == .gru ? L * paddedHidden : 0)
        outputWeights = PackedMatrix(rows: H, columns: V, kernel: .wide)
        outputBias = FloatBuffer(count: V)
        hidden = FloatBuffer(count: L * 2 * B * paddedHidden)
        cell = FloatBuffer(count: kind == .lstm ? L * B * paddedHidden : 0)
        gates = FloatBuffer(count: B * columns)
        recurrentGates = FloatBuffer(count: kind == .gru ? B * columns : 0)
        logits = FloatBuffer(count: B * V)
        halfWeights = half
            ? ((1..<max(1, L)).map { _ in BFloat16Panels(rows: H, columns: columns) },
               (0..<L).map { _ in BFloat16Panels(rows: H, columns: columns) }, BFloat16Panels(rows: H, columns: V))
            : nil
    }

    /// Bytes the buffers of a stepper for `config` and B sequences hold at most: its copy of the weights (float32, or
    /// at batch 1 bfloat16) and its state.
    static func bytes(config: RecurrentConfig, batch B: Int) -> Int {
        let (V, H, L) = (config.vocabularySize, config.hiddenSize, config.layerCount)
        let kind = config.layerKind
        let units = groupUnits(gates: kind.gateCount)
        let padded = (H + units - 1) / units * units
        let columns = kind.gateCount * padded
        let gru = kind == .gru ? 1 : 0
        let states = (2 + (kind == .lstm ? 1 : 0)) * L * B * padded
        let floats = (2 * L - 1) * H * columns + V * columns + L * columns + gru * L * padded
            + H * ((V + 63) / 64 * 64) + V + states + (1 + gru) * B * columns + B * V
        // bfloat16 copies (batch 1): half as many bytes as the float32 matrices, pairs of rows rounded up
        let halves = B == 1 ? (2 * L - 1) * (H + 1) / 2 * columns + (H + 1) / 2 * ((V + 63) / 64 * 64) : 0
        return 4 * floats + 4 * halves
    }

    /// Column of the interleaved (G*Hp) layout for gate `gate` of unit `unit`.
    @inline(__always) private func interleaved(gate: Int, unit: Int) -> Int {
        (unit / groupUnits) * gateCount * groupUnits + gate * groupUnits + unit % groupUnits
    }

    /// Copies the weights from `model`'s parameters into this stepper's layouts: after every change of the
    /// parameters (the generator calls it once per generation).
    func refresh(from model: RecurrentModel, context: ComputeContext) {
        let (V, H, G) = (config.vocabularySize, config.hiddenSize, gateCount)
        let columns = G * paddedHidden
        let p = UnsafePointer(model.parameters.pointer)
        // Interleaves a (G*H, K) row-major gate matrix W into `packed` as the (K, G*Hp) matrix W^T, panel by panel.
        func pack(_ weights: UnsafePointer<Float>, inputs K: Int, into packed: PackedMatrix) {
            let storage = packed.storage.pointer
            storage.update(repeating: 0, count: packed.storage.count)
            for gate in 0..<G {
                for unit in 0..<H {
                    let column = interleaved(gate: gate, unit: unit)
                    let (panel, offset) = (column / 64, column % 64)
                    let source = weights + (gate * H + unit) * K
                    let destination = storage + panel * K * 64 + offset
                    for k in 0..<K { destination[k * 64] = source[k] }
                }
            }
        }
        // The same, rounded to bfloat16.
        func packHalf(_ weights: UnsafePointer<Float>, inputs K: Int, into packed: BFloat16Panels) {
            for gate in 0..<G {
                for unit in 0..<H {
                    let column = interleaved(gate: gate, unit: unit)
                    let source = weights + (gate * H + unit) * K
                    for k in 0..<K { packed.set(row: k, column: column, source[k]) }
                }
            }
        }
        for (l, views) in model.layout.layers.enumerated() {
            if let halfWeights {
                packHalf(p + views.weightHH.offset, inputs: H, into: halfWeights.recurrent[l])
                if l > 0 { packHalf(p + views.weightIH.offset, inputs: H, into: halfWeights.input[l - 1]) }
            } else {
                pack(p + views.weightHH.offset, inputs: H, into: recurrentWeights[l])
                if l > 0 { pack(p + views.weightIH.offset, inputs: H, into: inputWeights[l - 1]) }
            }
            if kind == .gru {
                // b_hn: the n block of b_hh, in unit order, zero past H
                let row = resetBiases.pointer + l * paddedHidden
                row.update(repeating: 0, count: paddedHidden)
                row.update(from: p + views.biasHH.offset + 2 * H, count: H)
            }
        }
        // Rows in the layers' gate order (G*H) into the interleaved columns (G*Hp), zero past H.
        func interleave(_ source: UnsafePointer<Float>, into row: UnsafeMutablePointer<Float>) {
            row.update(repeating: 0, count: columns)
            for gate in 0..<G {
                for unit in 0..<H { row[interleaved(gate: gate, unit: unit)] = source[gate * H + unit] }
            }
        }
        // each layer's projection bias, as the layer defines it; layer 0's is in the table
        let gateRow = FloatBuffer(count: G * H)
        for l in 1..<max(1, config.layerCount) {
            model.layers[l].projectionBias(model.parameters, into: gateRow.pointer)
            interleave(gateRow.pointer, into: biases.pointer + l * columns)
        }
        // table(V, G*Hp): the model's own (V, G*H) table (embedding W_ih0^T + layer 0's projection bias)
        let modelTable = FloatBuffer(count: V * G * H)
        model.fillInputTable(modelTable.pointer, context: context)
        for v in 0..<V { interleave(modelTable.pointer + v * G * H, into: table.pointer + v * columns) }
        // fc.weight (V, H) as its transpose (H, V)
        outputWeights.pack(p + model.layout.fcWeight.offset, transposed: true, panels: 0..<outputWeights.panelCount)
        outputBias.pointer.update(from: p + model.layout.fcBias.offset, count: V)
        if let output = halfWeights?.output {
            let fc = p + model.layout.fcWeight.offset
            for v in 0..<V { for k in 0..<H { output.set(row: k, column: v, fc[v * H + k]) } }
        }
    }

    /// (B, Hp) the hidden state of `layer` in slot `slot`.
    private func hiddenSlot(_ layer: Int, _ slot: Int) -> UnsafeMutablePointer<Float> {
        hidden.pointer + (layer * 2 + slot) * batch * paddedHidden
    }

    /// Sets every sequence's state to `workspace`'s initial state (slot 0) for sequence 0: the state a prompt fed
    /// through the training path left (RecurrentDecoder.start).
    func loadState(from workspace: ModelWorkspace) {
        let H = config.hiddenSize
        hidden.zero()
        cell.zero()
        current = 0
        for l in 0..<config.layerCount {
            let h = workspace.layers[l].hiddenState(at: 0, batch: 1)
            let c = workspace.layers[l].memory(at: 0, batch: 1)
            for b in 0..<batch {
                (hiddenSlot(l, 0) + b * paddedHidden).update(from: h.baseAddress!, count: H)
                if kind == .lstm {
                    (cell.pointer + (l * batch + b) * paddedHidden).update(from: c.baseAddress!, count: H)
                }
            }
        }
    }

    /// Advances every sequence by one character: `tokens` (B) in, `logits` (B, V) out.
    func step(tokens: UnsafePointer<Int32>, context: ComputeContext) {
        let (V, H, L, B) = (config.vocabularySize, config.hiddenSize, config.layerCount, batch)
        let (Hp, U, G) = (paddedHidden, groupUnits, gateCount)
        let (columns, groupColumns, panelsPerGroup) = (G * Hp, G * U, G * U / 64)
        let (read, write) = (current, 1 - current)
        let gates = self.gates.pointer
        // where h_{t-1} W_hh^T goes: added to the gates, or (the GRU) a buffer of its own
        let recurrent = kind == .gru ? recurrentGates.pointer : gates
        let addsRecurrent = kind != .gru
        context.team.run { member in
            let groups = member.share(of: groupCount)
            let panels = (groups.lowerBound * panelsPerGroup)..<(groups.upperBound * panelsPerGroup)
            for l in 0..<L {
                if !groups.isEmpty {
                    let first = groups.lowerBound * groupColumns, width = groups.count * groupColumns
                    // start: layer 0's table row for each sequence's character, or the layer's bias row
                    for b in 0..<B {
                        let source = l == 0 ? table.pointer + Int(tokens[b]) * columns
                                            : biases.pointer + l * columns
                        (gates + b * columns + first).update(from: source + first, count: width)
                    }
                    if let halfWeights {
                        // batch 1 from the bfloat16 copies: + x W_ih^T, then h_{t-1} W_hh^T
                        if l > 0 {
                            halfWeights.input[l - 1].multiplyRow(hiddenSlot(l - 1, write), panels: panels,
                                                                into: gates, accumulate: true)
                        }
                        halfWeights.recurrent[l].multiplyRow(hiddenSlot(l, read), panels: panels, into: recurrent,
                                                             accumulate: addsRecurrent)
                    } else {
                        // + x W_ih^T (layers above 0: x is the new h of the layer below)
                        if l > 0 {
                            let input = StridedMatrix(hiddenSlot(l - 1, write), rowStep: Hp, depthStep: 1)
                            multiplyPanels(.wide, storage: inputWeights[l - 1].storage.pointer, panelStride: H * 64,
                                           depth: H, columns: columns, panels: panels, a: input, rows: B, into: gates,
                                           ldc: columns, accumulate: true)
                        }
                        // h_{t-1} W_hh^T
                        let previous = StridedMatrix(hiddenSlot(l, read), rowStep: Hp, depthStep: 1)
                        multiplyPanels(.wide, storage: recurrentWeights[l].storage.pointer, panelStride: H * 64,
                                       depth: H, columns: columns, panels: panels, a: previous, rows: B,
                                       into: recurrent, ldc: columns, accumulate: addsRecurrent)
                    }
                    // the cell on this thread's groups, row by row: h into the other slot (the LSTM's c updated
                    // in place)
                    for b in 0..<B {
                        let (gateRow, hiddenRow) = (gates + b * columns, hiddenSlot(l, write) + b * Hp)
                        switch kind {
                        case .lstm:
                            lstmCellForwardInterleaved(gates: gateRow, cell: cell.pointer + (l * B + b) * Hp,
                                                       hidden: hiddenRow, groups: groups, unitsPerGroup: U)
                        case .gru:
                            gruCellForwardInterleaved(gates: gateRow, recurrent: recurrent + b * columns,
                                                      biasHN: resetBiases.pointer + l * Hp,
                                                      hiddenPrevious: hiddenSlot(l, read) + b * Hp, hidden: hiddenRow,
                                                      groups: groups, unitsPerGroup: U)
                        case .rnn:
                            // one gate: the interleaved columns are the units themselves
                            rnnCellForward(preactivations: gateRow, hidden: hiddenRow, batch: 1, hiddenSize: Hp,
                                           units: (groups.lowerBound * U)..<(groups.upperBound * U))
                        }
                    }
                }
                member.barrier()
            }
            // logits(B, V) = fc.bias + h_top(B, H) fc.weight^T, this thread's panels of V
            let outputPanels = member.share(of: outputWeights.panelCount)
            if outputPanels.isEmpty { return }
            let bias = outputBias.pointer
            let firstColumn = outputPanels.lowerBound * 64
            let lastColumn = min(V, outputPanels.upperBound * 64)
            for b in 0..<B {
                (logits.pointer + b * V + firstColumn).update(from: bias + firstColumn, count: lastColumn - firstColumn)
            }
            if let output = halfWeights?.output {
                output.multiplyRow(hiddenSlot(L - 1, write), panels: outputPanels, into: logits.pointer,
                                   accumulate: true)
            } else {
                multiplyPanels(.wide, storage: outputWeights.storage.pointer, panelStride: H * 64, depth: H,
                               columns: V, panels: outputPanels,
                               a: StridedMatrix(hiddenSlot(L - 1, write), rowStep: Hp, depthStep: 1), rows: B,
                               into: logits.pointer, ldc: V, accumulate: true)
            }
        }
        current = write
    }
}
