// Dissecting a trained network the way Karpathy, Johnson and Fei-Fei's "Visualizing and Understanding Recurrent
// Networks" (2015) did: how often each gate saturates (`gates`), and which units follow something nameable in the
// text (`cells find`). Both feed a text through the model (Inspector.feed, Inspect.swift) and only count and
// correlate what the engine computed; the charts are drawn in Render.swift.

import CharLM
import Foundation

/// One gate's saturation over a text: for each unit, the share of characters after which the gate was below 0.1
/// (left-saturated: closed) and above 0.9 (right-saturated: open).
public struct GateSaturation: Equatable, Sendable {
    /// The gate's name in its cell's equations: i, f, o (LSTM), r, z (GRU).
    public let gate: String
    /// (H) share of characters with the gate below `low`.
    public let left: [Double]
    /// (H) share of characters with the gate above `high`.
    public let right: [Double]

    /// The paper's thresholds.
    public static let low = 0.1, high = 0.9
}

/// A property of each position of a text that a unit may track (`cells find`). Each is a number per character,
/// worked out from the characters read so far, after reading that character.
public enum TextFeature: String, CaseIterable, Sendable {
    /// Characters since the last newline (0 on the newline itself).
    case linePosition = "line-position"
    /// Inside double quotes: an odd number of `"` read so far.
    case inQuotes = "quotes"
    /// Inside brackets or parentheses: more of `( [ {` read than of `) ] }`.
    case inBrackets = "brackets"
    /// The character is a letter, or an apostrophe between letters: inside a word.
    case inWord = "word"
    /// The character is a newline: what the next character starts a line after.
    case newline = "newline"
    /// The character is a capital letter.
    case capital = "capital"

    /// What it means, for the report.
    public var meaning: String {
        switch self {
        case .linePosition: return "position in the line"
        case .inQuotes: return "inside \"quotes\""
        case .inBrackets: return "inside (brackets)"
        case .inWord: return "inside a word"
        case .newline: return "just read a newline"
        case .capital: return "a capital letter"
        }
    }

    /// The feature's value at every position of `characters`.
    public func values(_ characters: [Character]) -> [Double] {
        var result: [Double] = []
        result.reserveCapacity(characters.count)
        var column = 0, quotes = 0, depth = 0
        for (t, character) in characters.enumerated() {
            column = character == "\n" ? 0 : column + 1
            if character == "\"" { quotes += 1 }
            if "([{".contains(character) { depth += 1 }
            if ")]}".contains(character) { depth = max(0, depth - 1) }
            switch self {
            case .linePosition: result.append(Double(column))
            case .inQuotes: result.append(quotes % 2 == 1 ? 1 : 0)
            case .inBrackets: result.append(depth > 0 ? 1 : 0)
            case .inWord:
                let apostropheInWord = character == "'" && t > 0 && t + 1 < characters.count
                    && characters[t - 1].isLetter && characters[t + 1].isLetter
                result.append(character.isLetter || apostropheInWord ? 1 : 0)
            case .newline: result.append(character == "\n" ? 1 : 0)
            case .capital: result.append(character.isUppercase ? 1 : 0)
            }
        }
        return result
    }
}

/// Pearson's correlation of two series of the same length; nil when either does not vary.
func correlation(_ x: [Double], _ y: [Double]) -> Double? {
    let n = Double(x.count)
    guard x.count == y.count, x.count > 1 else { return nil }
    let (meanX, meanY) = (x.reduce(0, +) / n, y.reduce(0, +) / n)
    var (sxy, sxx, syy) = (0.0, 0.0, 0.0)
    for index in x.indices {
        let (dx, dy) = (x[index] - meanX, y[index] - meanY)
        sxy += dx * dy
        sxx += dx * dx
        syy += dy * dy
    }
    guard sxx > 1e-12 * n, syy > 1e-12 * n else { return nil }
    return sxy / (sxx * syy).squareRoot()
}

/// The unit that follows a feature best.
public struct FoundUnit: Equatable, Sendable {
    public let feature: TextFeature
    public let unit: Int
    /// Pearson's r between the unit's activation and the feature (its sign says which way the unit moves).
    public let correlation: Double
    /// The next best unit and its r, for comparison.
    public let runnerUp: (unit: Int, correlation: Double)?

    public static func == (a: FoundUnit, b: FoundUnit) -> Bool {
        a.feature == b.feature && a.unit == b.unit && a.correlation == b.correlation
            && a.runnerUp?.unit == b.runnerUp?.unit && a.runnerUp?.correlation == b.runnerUp?.correlation
    }
}

extension Inspector {
    // MARK: Gates

    /// Every gate's saturation over `text` in `layer`, from a zero state (`GateSaturation`).
    public func gateSaturation(text: String, layer: Int) throws -> [GateSaturation] {
        let model = try recurrentModel(for: "gates")
        let kind = model.config.layerKind
        guard !kind.sigmoidGates.isEmpty else {
            throw ShellError.badArgument("the vanilla RNN has no gates (h_t = tanh(x W_ih^T + h_{t-1} W_hh^T + b)): "
                                         + "`set cell lstm` or `set cell gru`, then `reset` and train, to see gates")
        }
        let H = model.config.hiddenSize
        let gates = kind.sigmoidGates
        var left = [[Int]](repeating: [Int](repeating: 0, count: H), count: gates.count)
        var right = left
        let tokens = try feed(text: text, layer: layer, command: "gates", perCharacterBytes: 0) { workspace, _, count in
            for t in 0..<count {
                let activations = workspace.gateActivations(layer: layer, step: t, batch: 1)
                for (g, gate) in gates.enumerated() {
                    for unit in 0..<H {
                        let value = Double(activations[gate.block * H + unit])
                        if value < GateSaturation.low { left[g][unit] += 1 }
                        if value > GateSaturation.high { right[g][unit] += 1 }
                    }
                }
            }
        }
        let n = Double(tokens.count)
        return gates.indices.map { g in
            GateSaturation(gate: gates[g].name, left: left[g].map { Double($0) / n }, right: right[g].map { Double($0) / n })
        }
    }

    /// `gates "TEXT" [LAYER]`: the paper's scatter per gate (x: share of characters left-saturated, y: right), and
    /// a line per gate with the units that are mostly closed, mostly open, or neither.
    public func gatesReport(text: String, layer: Int) throws -> String {
        let model = try recurrentModel(for: "gates")
        let saturation = try gateSaturation(text: text, layer: layer)
        let characters = vocabulary.encode(text).tokens.count
        let kind = model.config.layerKind
        var output = wrap("layer \(layer) of the \(kind.rawValue.uppercased()) over \(grouped(characters)) character\(characters == 1 ? "" : "s"): "
                          + "each dot is a unit; x = share of characters with the gate below 0.1 (closed), "
                          + "y = share above 0.9 (open). Units near the diagonal x + y = 1 are always saturated; "
                          + "near the corner (0, 0), rarely.", width: console.width - 1, indent: 2) + "\n"
        output += saturationPanels(saturation, width: console.width - 1)
        for gate in saturation {
            let H = gate.left.count
            let closed = gate.left.filter { $0 > 0.5 }.count, open = gate.right.filter { $0 > 0.5 }.count
            let mean = { (values: [Double]) in values.reduce(0, +) / Double(max(1, values.count)) }
            output += wrap("\(gate.gate): mostly closed \(closed) of \(H) units, mostly open \(open), "
                           + String(format: "mean %.0f%% closed, %.0f%% open", 100 * mean(gate.left), 100 * mean(gate.right)),
                           width: console.width - 1, indent: 2) + "\n"
        }
        return output
    }

    /// `gates ... --svg FILE`: the scatter as a picture, one panel per gate.
    public func writeGatesSVG(text: String, layer: Int, path: String) throws {
        let model = try recurrentModel(for: "gates")
        let saturation = try gateSaturation(text: text, layer: layer)
        let title = "charlm: gate saturation, layer \(layer) of the \(model.config.layerKind.rawValue.uppercased())"
        try writeFileAtomically(Array(saturationSVG(saturation, title: title).utf8), to: path)
    }

    // MARK: Cells that track something

    /// For each feature, the unit of `layer` whose activation (`activationName`) correlates most with it over `text`
    /// (by |r|); nil for a feature that does not vary in the text.
    public func findUnits(text: String, layer: Int) throws -> [(feature: TextFeature, found: FoundUnit?)] {
        let (tokens, values) = try cellActivations(text: text, layer: layer, command: "cells find")
        let characters = tokens.map { Character(vocabulary.scalars[$0]) }
        let H = values.first?.count ?? 0
        let targets = TextFeature.allCases.map { $0.values(characters) }
        // r of every unit with every feature, one unit's series at a time (T values, not H x T).
        var correlations = [[Double?]](repeating: [Double?](repeating: nil, count: H), count: targets.count)
        for unit in 0..<H {
            if unit % 64 == 0 { try cancellation.check() }
            let series = values.map { Double($0[unit]) }
            for (f, target) in targets.enumerated() { correlations[f][unit] = correlation(series, target) }
        }
        return TextFeature.allCases.enumerated().map { f, feature in
            let ranked = (0..<H).compactMap { unit in correlations[f][unit].map { (unit: unit, correlation: $0) } }
                .sorted { (abs($0.correlation), $1.unit) > (abs($1.correlation), $0.unit) }
            guard let best = ranked.first else { return (feature, nil) }
            return (feature, FoundUnit(feature: feature, unit: best.unit, correlation: best.correlation,
                                       runnerUp: ranked.count > 1 ? ranked[1] : nil))
        }
    }

    /// `cells find "TEXT" [LAYER]`: the best unit per feature, its r and the next best's.
    public func findUnitsReport(text: String, layer: Int) throws -> (report: String, found: [FoundUnit]) {
        let results = try findUnits(text: text, layer: layer)
        let characters = vocabulary.encode(text).tokens.count
        var lines = [wrap("layer \(layer): the unit whose \(activationName) follows each feature most closely over "
                          + "\(grouped(characters)) character\(characters == 1 ? "" : "s") (Pearson's r; 1 or -1 is exact, 0 nothing)",
                          width: console.width - 1, indent: 2),
                     "feature         meaning                unit      r  next best"]
        for (feature, found) in results {
            var line = feature.rawValue.rightPadded(to: 16) + feature.meaning.rightPadded(to: 21)
            if let found {
                line += String(found.unit).leftPadded(to: 6) + String(format: "  %+.2f", found.correlation)
                if let next = found.runnerUp { line += String(next.unit).leftPadded(to: 7) + String(format: " %+.2f", next.correlation) }
            } else {
                line += "   -   does not vary in this text"
            }
            lines.append(line)
        }
        let example = results.first { $0.found != nil }?.feature.rawValue ?? "line-position"
        lines.append(wrap("`cells \"TEXT\" \(layer) FEATURE` (e.g. `cells \"TEXT\" \(layer) \(example)`) shows the unit found "
                          + "for FEATURE; a weak r (below 0.3 or so) means no unit tracks it yet.",
                          width: console.width - 1, indent: 2))
        return (lines.joined(separator: "\n") + "\n", results.compactMap(\.found))
    }
}
