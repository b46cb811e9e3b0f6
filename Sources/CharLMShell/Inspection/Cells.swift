// `cells`: what the units of a recurrent layer hold after each character of a text, from a zero state: the
// activations (tanh(c) of the LSTM's cell state, h of the GRU's and the RNN's), the units that change most, one
// unit's trace in colour, and the whole layer as an HTML page. A recurrent model's state is a capability of its
// family (`Inspector.recurrentModel(for:)`); a model without one is refused.

import CharLM
import Foundation

extension Inspector {
    // MARK: Memory cells

    /// Feeds `text` to the model from a zero state, batch 1, and calls `visit(workspace, first, count)` after each
    /// chunk: steps 0 ..< count of the workspace hold characters first ..< first + count. `perCharacterBytes` is what
    /// the caller keeps per character, counted in the memory check. Returns the tokens fed.
    func feed(text: String, layer: Int, command: String, perCharacterBytes: Double,
              visit: (ModelWorkspace, _ first: Int, _ count: Int) throws -> Void) throws -> [Int] {
        let model = try recurrentModel(for: command)
        guard layer >= 0 && layer < model.config.layerCount else {
            throw ShellError.badArgument("layer must be from 0 to \(model.config.layerCount - 1); got \(layer)")
        }
        let tokens = try encodeForModel(text, vocabulary: vocabulary)
        guard tokens.count <= 10_000 else {
            throw ShellError.badArgument("\(command) reads at most 10,000 characters; the text has \(grouped(tokens.count)): "
                                         + "give a passage of it (`head -c 10000 FILE > part.txt`, then @part.txt)")
        }
        let T = tokens.count
        // Fed in chunks of 256 characters, carrying the state (as generation feeds a prompt), so Ctrl-C is heard
        // between chunks and the workspace stays small; what the caller keeps per character is what grows.
        let chunk = min(T, 256)
        try MemoryBudget.check(MemoryModel.workspaceBytes(model.config, length: chunk, batch: 1) + perCharacterBytes * Double(T),
                               for: "the activations of \(T) characters", hint: "give a shorter text")
        let workspace = model.makeWorkspace(length: chunk, batch: 1, context: context)
        var unused = SeededGenerator(seed: 0)
        var start = 0
        while start < T {
            try cancellation.check()
            let count = min(chunk, T - start)
            for t in 0..<count { workspace.inputs[t] = Int32(tokens[start + t]) }
            model.forward(length: count, batch: 1, workspace: workspace, mode: .inference, generator: &unused,
                          carryState: start > 0, reuseDerivedWeights: start > 0)
            try visit(workspace, start, count)
            workspace.carryState(length: count, batch: 1)
            start += count
        }
        return tokens
    }

    /// What `cells` shows of a unit: tanh(c) for the LSTM's cell state, h itself for the GRU and the RNN (already
    /// in -1 ... 1).
    var activationName: String { network.architecture.kindName == LayerKind.lstm.rawValue ? "tanh(c)" : "h" }

    /// The activation of every unit of `layer` after each character of `text` (`activationName`): [t][unit], from a
    /// zero state.
    public func cellActivations(text: String, layer: Int, command: String = "cells") throws -> (tokens: [Int], values: [[Float]]) {
        let model = try recurrentModel(for: command)
        var values: [[Float]] = []
        let squash = model.config.layerKind == .lstm
        let tokens = try feed(text: text, layer: layer, command: command,
                              perCharacterBytes: 4 * Double(model.config.hiddenSize)) { workspace, _, count in
            for t in 1...count {
                let memory = workspace.cellState(layer: layer, slot: t, batch: 1)
                values.append(squash ? memory.map { Foundation.tanh($0) } : Array(memory))
            }
        }
        return (tokens, values)
    }

    /// `cells "TEXT" [LAYER] [CELL]`: each character coloured (or, off a terminal, followed) by one cell's activation.
    /// Without `cell`, the cell whose activation changes most over the text (the first of `cells top`).
    public func cellsReport(text: String, layer: Int, cell requested: Int?, color: ColorMode) throws -> String {
        let (tokens, values) = try cellActivations(text: text, layer: layer)
        let H = values[0].count
        let cell = requested ?? rankCells(values)[0].cell
        guard cell >= 0 && cell < H else { throw ShellError.badArgument("cell must be from 0 to \(H - 1); got \(cell)") }
        let series = values.map { $0[cell] }
        var output = wrap("layer \(layer) cell \(cell): \(activationName) after each character, "
            + (color == .none ? "from -1 to +1" : "-1 blue ... +1 red"), width: console.width - 1, indent: 2) + "\n"
        switch color {
        case .none:
            for (t, token) in tokens.enumerated() {
                output += String(t).leftPadded(to: 5) + "  " + visible(vocabulary.scalars[token]).padding(toLength: 7, withPad: " ", startingAt: 0)
                    + String(format: "%+.3f", series[t]) + "\n"
            }
        case .palette256, .trueColor:
            for (t, token) in tokens.enumerated() {
                let character = vocabulary.character(token)
                output += backgroundEscape(series[t], mode: color) + (character == "\n" ? "↵" : terminalSafe(character)) + resetEscape
                if character == "\n" { output += "\n" }
            }
            output += "\n"
        }
        return output
    }

    /// `cells top "TEXT" [LAYER]`: the cells whose activation changes most over the text (largest max - min).
    public func cellsTopReport(text: String, layer: Int, count: Int = 10) throws -> String {
        _ = try recurrentModel(for: "cells")  // refused here for a model without cells
        let (_, values) = try cellActivations(text: text, layer: layer)
        let H = values[0].count
        let ranked = rankCells(values)
        var lines = [wrap("layer \(layer): the \(min(count, H)) of \(H) cells whose \(activationName) changes most over \(values.count) "
                          + "characters (`cells \"TEXT\" \(layer) CELL` shows one)", width: console.width - 1, indent: 2),
                     "cell   range    min     max     mean"]
        for entry in ranked.prefix(count) {
            lines.append(String(entry.cell).leftPadded(to: 4) + String(format: "  %5.3f  %+.3f  %+.3f  %+.3f", entry.high - entry.low, entry.low, entry.high, entry.mean))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Every cell's lowest, highest and mean activation over `values` ([t][cell]), ordered by range (highest - lowest),
    /// largest first, ties to the lower cell index.
    private func rankCells(_ values: [[Float]]) -> [(cell: Int, low: Float, high: Float, mean: Float)] {
        (0..<(values.first?.count ?? 0)).map { cell -> (cell: Int, low: Float, high: Float, mean: Float) in
            let series = values.map { $0[cell] }
            return (cell, series.min()!, series.max()!, series.reduce(0, +) / Float(series.count))
        }.sorted { ($0.high - $0.low, $1.cell) > ($1.high - $1.low, $0.cell) }
    }

    /// `cells "TEXT" [LAYER] --html FILE`: every cell of the layer, one line per cell, as a self-contained page.
    public func writeCellsPage(text: String, layer: Int, path: String) throws {
        let model = try recurrentModel(for: "cells")
        // About 45 bytes of HTML per character per cell: keep the page to some tens of megabytes.
        let characters = vocabulary.encode(text).tokens.count
        let H = model.config.hiddenSize
        guard characters * H <= Self.maximumPageCells else {
            throw ShellError.badArgument("the page would hold \(grouped(characters)) characters x \(grouped(H)) cells; at most "
                                         + "\(grouped(Self.maximumPageCells)) in all: give a shorter text")
        }
        try ReplaceableKind.htmlPage.checkReplaceable(path, by: "`cells --html`")
        let (tokens, values) = try cellActivations(text: text, layer: layer)
        let page = cellsPage(characters: tokens.map { vocabulary.character($0) }, values: values, layer: layer,
                             title: "charlm: layer \(layer) memory cells",
                             activation: model.config.layerKind == .lstm ? "tanh of the LSTM cell's state c" : "the \(model.config.layerKind.rawValue.uppercased()) unit's hidden state h")
        try writeFileAtomically(Array(page.utf8), to: path)
    }
}
