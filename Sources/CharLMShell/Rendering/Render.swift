// All drawing, as pure functions from numbers to text: the training progress line and its sparkline, the loss
// charts (braille for `plot`, SVG), the probability bars of `next`, the colours of
// `cells` and `novelty`, and the memory-cell page as HTML. Every chart averages steps into columns with the one helper
// `columnAverages`. The files made here are well-formed XML (the tests parse them), self-contained and readable
// without a network.

import CharLM
import Foundation

// MARK: Shared pieces

/// The mean of `values` over each of `columns` equal stretches of the steps 0..<span (span >= values.count, so a chart
/// can run past the last training step, to a later validation): column x covers the steps from x*span/columns up to
/// (x+1)*span/columns, at least one step, cut at values.count; nil for a column with no steps left.
func columnAverages(_ values: [Double], columns: Int, span: Int) -> [(first: Int, end: Int, mean: Double)?] {
    (0..<max(0, columns)).map { x in
        let first = x * span / columns
        let end = min(values.count, max(first + 1, (x + 1) * span / columns))
        guard first < end else { return nil }
        return (first, end, values[first..<end].reduce(0, +) / Double(end - first))
    }
}

/// Where `value` lies between `low` (0) and `high` (1), clamped to [0, 1]; 0.5 when the range is empty. Halved
/// before subtracting, so no finite values overflow (a loss of 1e308 beside -1e308 still lands on the chart).
func position(_ value: Double, low: Double, high: Double) -> Double {
    let span = high * 0.5 - low * 0.5
    guard span > 0, span.isFinite, value.isFinite else { return 0.5 }
    return min(1, max(0, (value * 0.5 - low * 0.5) / span))
}

/// The value a fraction `f` of the way from `low` to `high`, weighted so no finite inputs overflow.
func between(_ low: Double, _ high: Double, _ f: Double) -> Double { low * (1 - f) + high * f }

/// Values as a row of block characters, lowest ▁ to highest █ (the recent losses on the live progress line).
func sparkline<C: Collection>(_ values: C) -> String where C.Element == Double {
    guard let low = values.min(), let high = values.max() else { return "" }
    let blocks = Array("▁▂▃▄▅▆▇█")
    return String(values.map { value in
        high - low < 1e-12 || !value.isFinite ? blocks[0] : blocks[min(7, Int(position(value, low: low, high: high) * 8))]
    })
}

/// A probability as a bar of `width` columns in eighths of a block, padded to the full width.
func probabilityBar(_ p: Double, width: Int) -> String {
    let eighths = Int((min(1, max(0, p)) * Double(width * 8)).rounded())
    let full = eighths / 8, rest = eighths % 8
    let partial = rest > 0 ? String(Array("▏▎▍▌▋▊▉")[rest - 1]) : ""
    return (String(repeating: "█", count: full) + partial).rightPadded(to: width)
}

/// At most `count` elements of `items`, evenly spaced, the first and last included.
func evenlySpaced<T>(_ items: [T], atMost count: Int) -> [T] {
    guard items.count > count, count > 1 else { return items }
    return (0..<count).map { items[$0 * (items.count - 1) / (count - 1)] }
}

// MARK: Training progress

/// What the live progress line of `train` shows.
struct TrainingProgress {
    var step: Int
    /// The step training stops at, when it stops at a step.
    var lastStep: Int?
    var epoch: Double
    var recentLosses: ArraySlice<Double>
    var validation: Double?
    var tokensPerSecond: Double
    /// Seconds left, when known.
    var remaining: Double?
    /// The share of a validation under way (0 to 1), while one runs.
    var validating: Double? = nil

    /// "step 40/100  epoch 0.50  loss 2.1234 ▇▆▅  val 2.2000  12,345 tok/s  ETA 0:10", the sparkline only when
    /// `sparkline` (a terminal), fitted to `width` columns: the least important fields go first (the sparkline,
    /// the epoch, tokens/s, the validation loss, the ETA), so the line never wraps; step and loss stay.
    func line(sparkline drawSparkline: Bool, width: Int = .max) -> String {
        // (text, importance): lower numbers stay longer.
        var fields: [(text: String, importance: Int)] = [("step \(step)" + (lastStep.map { "/\($0)" } ?? ""), 0)]
        fields.append((String(format: "epoch %.2f", epoch), 5))
        if let loss = recentLosses.last {
            fields.append((String(format: "loss %.4f", loss), 1))
            if drawSparkline { fields.append((sparkline(recentLosses), 6)) }
        }
        if let validation { fields.append((String(format: "val %.4f", validation), 3)) }
        fields.append(("\(grouped(Int(min(tokensPerSecond, 1e15)))) tok/s", 4))
        if let remaining { fields.append(("ETA " + duration(remaining), 2)) }
        if let validating { fields.append((String(format: "validating %ld%%", Int(validating * 100)), 0)) }
        func joined() -> String {
            // The sparkline follows its loss after one space; other fields are two apart.
            var text = ""
            for (index, field) in fields.enumerated() {
                if index > 0 { text += field.importance == 6 ? " " : "  " }
                text += field.text
            }
            return text
        }
        var text = joined()
        while text.count > width, let least = fields.indices.max(by: { fields[$0].importance < fields[$1].importance }),
              fields[least].importance > 0 {
            fields.remove(at: least)
            text = joined()
        }
        return text.count > width ? String(text.prefix(max(1, width))) : text
    }
}

// MARK: Loss chart, terminal

/// The latest validation losses as one line (a long run's whole list would be a wall of numbers; the chart above it
/// draws them all).
func validationList(_ validation: [ValidationPoint]) -> String {
    guard !validation.isEmpty else { return "validation loss: none yet" }
    let shown = validation.suffix(8)
    return "validation loss: " + (validation.count > shown.count ? "(\(validation.count - shown.count) earlier) " : "")
        + shown.map { lossText($0.loss) + " @\($0.step)" }.joined(separator: ", ")
}


/// The start of a self-contained XHTML page (`cells --html`, `attn --html`): its head with `title` and `style`, and
/// the title as a heading.
func htmlPageHead(title: String, style: String) -> String {
    """
    <!DOCTYPE html>
    <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
    <head>
    <meta charset="utf-8"/>
    <title>\(xmlEscaped(title))</title>
    <style>\(style)</style>
    </head>
    <body>
    <h1 style="font-size:18px">\(xmlEscaped(title))</h1>

    """
}

/// A loss as a 7-column axis label: 2.345, 1234.57, 123456, 1.2e+07, 1e+300 (as many digits as fit).
func axisLabel(_ value: Double) -> String {
    let formats = ["%.3f", "%.2f", "%.1f", "%.0f", "%.1e", "%.0e"]
    let text = formats.lazy.map { String(format: $0, value) }.first { $0.count <= 7 } ?? String(format: "%.0e", value)
    return String(repeating: " ", count: max(0, 7 - text.count)) + text
}

/// Training loss (a line) and validation loss (◆ marks) against steps, in braille dots: each character is a 2 x 4 grid,
/// so `width` columns hold 2 * width points across. Axes labelled with loss values and step numbers.
func brailleChart(training: [Double], validation: [ValidationPoint], width: Int, height: Int) -> String {
    let labelWidth = 8
    let columns = max(10, min(1000, width) - labelWidth - 1)
    let (dotsAcross, dotsDown) = (columns * 2, height * 4)
    let steps = training.count
    let lastStep = max(steps, validation.map(\.step).max() ?? 0)
    // Average the training loss over the steps each dot column covers.
    let averages = columnAverages(training, columns: dotsAcross, span: lastStep).map { $0?.mean }
    let values = averages.compactMap { $0 } + validation.map(\.loss)
    var (low, high) = (values.min()!, values.max()!)
    if high - low < 1e-6 { (low, high) = (low - 0.5, high + 0.5) }
    func dotRow(_ loss: Double) -> Int { Int(((1 - position(loss, low: low, high: high)) * Double(dotsDown - 1)).rounded()) }
    var dots = [[Bool]](repeating: [Bool](repeating: false, count: dotsAcross), count: dotsDown)
    var previous: Int?
    for (x, average) in averages.enumerated() {
        guard let average else { previous = nil; continue }
        let y = dotRow(average)
        // Join to the previous column so the curve reads as a line.
        let (from, to) = previous.map { (min($0, y), max($0, y)) } ?? (y, y)
        for row in from...to { dots[row][x] = true }
        previous = y
    }
    // Braille: dot k of a cell sets bit k of U+2800; columns 0/1, rows 0-3 map to bits (0,3), (1,4), (2,5), (6,7).
    let bit = [[0, 3], [1, 4], [2, 5], [6, 7]]
    var grid = (0..<height).map { row in
        (0..<columns).map { column -> Character in
            var pattern = 0
            for dy in 0..<4 {
                for dx in 0..<2 where dots[row * 4 + dy][column * 2 + dx] { pattern |= 1 << bit[dy][dx] }
            }
            return Character(Unicode.Scalar(0x2800 + pattern)!)
        }
    }
    for point in validation {
        let column = min(columns - 1, max(0, (point.step - 1) * dotsAcross / max(lastStep, 1) / 2))
        grid[dotRow(point.loss) / 4][column] = "◆"
    }
    var lines = [wrap("loss (⠉ training, averaged per column; ◆ validation)", width: width - 1, indent: 2)]
    for (row, characters) in grid.enumerated() {
        let label: String
        if row == 0 { label = axisLabel(high) }
        else if row == height - 1 { label = axisLabel(low) }
        else if row == height / 2 { label = axisLabel(between(low, high, 1 - Double(row * 4 + 2) / Double(dotsDown - 1))) }
        else { label = String(repeating: " ", count: 7) }
        lines.append(label + " ┤" + String(characters))
    }
    lines.append(String(repeating: " ", count: labelWidth) + "└" + String(repeating: "─", count: columns))
    let left = "step 1", right = "step \(lastStep)"
    let middle = "step \((lastStep + 1) / 2)"
    var axis = [Character](repeating: " ", count: columns + 1)
    func place(_ text: String, at position: Int) {
        guard text.count <= axis.count else { return }  // a step number wider than the whole axis is left out
        let start = max(0, min(axis.count - text.count, position))
        for (offset, character) in text.enumerated() { axis[start + offset] = character }
    }
    place(left, at: 0)
    if columns > left.count + middle.count + right.count + 4 { place(middle, at: columns / 2 - middle.count / 2) }
    place(right, at: columns + 1 - right.count)
    lines.append(String(repeating: " ", count: labelWidth) + String(axis))
    let latestValidation = validation.max { $0.step < $1.step }
    let latest = "latest: training \(lossText(training.last!)) at step \(steps)"
        + (latestValidation.map { ", validation \(lossText($0.loss)) at step \($0.step)" } ?? " (no validation yet)")
    lines.append(wrap(latest, width: width - 1, indent: 2))
    return lines.joined(separator: "\n") + "\n"
}

// MARK: Loss chart, SVG

/// The loss chart as a standalone SVG document: training loss (averaged to at most 600 points) as a blue line,
/// validation loss as red points joined by a line, axes with ticks.
func lossChartSVG(training: [Double], validation allValidation: [ValidationPoint]) -> String {
    // At most 600 validation points, evenly spaced, like the training line's 600 buckets.
    let validation = evenlySpaced(allValidation, atMost: 600)
    let (width, height) = (720.0, 400.0)
    let (left, right, top, bottom) = (70.0, 20.0, 40.0, 50.0)
    let lastStep = max(training.count, validation.map(\.step).max() ?? 0)
    let buckets = min(600, training.count)
    let trainingPoints: [(step: Double, loss: Double)] = columnAverages(training, columns: buckets, span: training.count)
        .compactMap { $0.map { (Double($0.first + $0.end + 1) / 2, $0.mean) } }
    let losses = trainingPoints.map(\.loss) + validation.map(\.loss)
    var (low, high) = (losses.min()!, losses.max()!)
    if high - low < 1e-6 { (low, high) = (low - 0.5, high + 0.5) }
    func x(_ step: Double) -> Double { left + (step - 1) / Double(max(lastStep - 1, 1)) * (width - left - right) }
    func y(_ loss: Double) -> Double { top + (1 - position(loss, low: low, high: high)) * (height - top - bottom) }
    func number(_ value: Double) -> String { String(format: "%.1f", value) }
    var svg = """
    <?xml version="1.0" encoding="UTF-8"?>
    <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
    <rect width="100%" height="100%" fill="white"/>
    <text x="\(number(width / 2))" y="22" text-anchor="middle" font-size="15">charlm: loss against training steps</text>

    """
    // Axes and ticks: five on each.
    svg += "<g id=\"axes\" stroke=\"#444\" fill=\"none\">\n"
    svg += "<line x1=\"\(number(left))\" y1=\"\(number(top))\" x2=\"\(number(left))\" y2=\"\(number(height - bottom))\"/>\n"
    svg += "<line x1=\"\(number(left))\" y1=\"\(number(height - bottom))\" x2=\"\(number(width - right))\" y2=\"\(number(height - bottom))\"/>\n"
    svg += "</g>\n<g id=\"ticks\" fill=\"#222\">\n"
    for tick in 0...4 {
        let loss = between(low, high, Double(tick) / 4)
        svg += "<line x1=\"\(number(left - 5))\" y1=\"\(number(y(loss)))\" x2=\"\(number(left))\" y2=\"\(number(y(loss)))\" stroke=\"#444\"/>"
        svg += "<text x=\"\(number(left - 8))\" y=\"\(number(y(loss) + 4))\" text-anchor=\"end\">\(String(format: "%.3f", loss))</text>\n"
        let step = 1 + Double(lastStep - 1) * Double(tick) / 4
        svg += "<line x1=\"\(number(x(step)))\" y1=\"\(number(height - bottom))\" x2=\"\(number(x(step)))\" y2=\"\(number(height - bottom + 5))\" stroke=\"#444\"/>"
        svg += "<text x=\"\(number(x(step)))\" y=\"\(number(height - bottom + 20))\" text-anchor=\"middle\">\(Int(step.rounded()))</text>\n"
    }
    svg += "<text x=\"\(number(width - right))\" y=\"\(number(height - 10))\" text-anchor=\"end\">step</text>\n"
    svg += "<text x=\"16\" y=\"\(number((top + height - bottom) / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(number((top + height - bottom) / 2)))\">loss (nats/char)</text>\n"
    svg += "</g>\n"
    let trainingPath = trainingPoints.map { "\(number(x($0.step))),\(number(y($0.loss)))" }.joined(separator: " ")
    svg += "<polyline id=\"training\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"\(trainingPath)\"/>\n"
    if !validation.isEmpty {
        let validationPath = validation.map { "\(number(x(Double($0.step)))),\(number(y($0.loss)))" }.joined(separator: " ")
        svg += "<g id=\"validation\" fill=\"#d62728\" stroke=\"#d62728\">\n"
        svg += "<polyline fill=\"none\" stroke-width=\"1.5\" points=\"\(validationPath)\"/>\n"
        for point in validation {
            svg += "<circle cx=\"\(number(x(Double(point.step))))\" cy=\"\(number(y(point.loss)))\" r=\"3.5\"><title>step \(point.step): \(String(format: "%.4f", point.loss))</title></circle>\n"
        }
        svg += "</g>\n"
    }
    // The legend sits in the bottom margin, left of the axis title, clear of the curves.
    let legendY = height - 14
    svg += """
    <g id="legend">
    <line x1="\(number(left))" y1="\(number(legendY - 4))" x2="\(number(left + 24))" y2="\(number(legendY - 4))" stroke="#1f77b4" stroke-width="2"/>
    <text x="\(number(left + 30))" y="\(number(legendY))">training loss</text>
    <circle cx="\(number(left + 132))" cy="\(number(legendY - 4))" r="3.5" fill="#d62728"/>
    <text x="\(number(left + 142))" y="\(number(legendY))">validation loss</text>
    </g>
    </svg>

    """
    return svg
}

// MARK: Memory cells, HTML

/// Escapes text for XML/HTML content and attributes.
func xmlEscaped(_ text: String) -> String {
    var result = ""
    for character in text {
        switch character {
        case "&": result += "&amp;"
        case "<": result += "&lt;"
        case ">": result += "&gt;"
        case "\"": result += "&quot;"
        case "'": result += "&#39;"
        default: result.append(character)
        }
    }
    return result
}

/// A self-contained page: one line per cell of the layer, each character's background coloured by that cell's
/// activation after it (blue -1, white 0, red +1); hovering a character shows the cell, the character and the value.
/// `values` is [t][cell]; `activation` says what they are ("tanh of the LSTM cell's state c").
func cellsPage(characters: [String], values: [[Float]], layer: Int, title: String, activation: String) -> String {
    let H = values.first?.count ?? 0
    // 21 colour classes, v0 (-1) ... v20 (+1), keep the page small.
    var style = "body{font-family:sans-serif;margin:16px}.row{font-family:monospace;font-size:13px;white-space:pre;line-height:17px}"
    style += ".label{display:inline-block;width:72px;color:#555}.row span[title]{cursor:default}"
    for bucket in 0...20 {
        let (r, g, b) = divergingColor(Float(bucket - 10) / 10)
        style += ".v\(bucket){background:rgb(\(r),\(g),\(b))}"
    }
    var html = htmlPageHead(title: title, style: style) + """
    <p>Each line is one unit of the layer's memory; each character is coloured by \(xmlEscaped(activation)) after reading it, from blue (-1) through white (0) to red (+1). Hover a character for its value. \(characters.count) characters, \(H) cells.</p>
    <div id="cells">

    """
    for cell in 0..<H {
        html += "<div class=\"row\" id=\"cell-\(cell)\"><span class=\"label\">cell \(cell)</span>"
        for (t, character) in characters.enumerated() {
            let value = values[t][cell]
            let bucket = Int(((max(-1, min(1, value)) + 1) * 10).rounded())
            let shown = character == "\n" ? "↵" : (character == " " ? "&#160;" : xmlEscaped(character))
            html += "<span class=\"v\(bucket)\" title=\"\(String(format: "%+.3f", value))\">\(shown)</span>"
        }
        html += "</div>\n"
    }
    html += "</div>\n</body>\n</html>\n"
    return html
}

// MARK: Colours

/// How `cells` and `novelty` mark things on the terminal.
public enum ColorMode: Sendable {
    /// Plain text (not a terminal, or NO_COLOR).
    case none
    /// xterm's 256-colour palette.
    case palette256
    /// 24-bit colour (COLORTERM=truecolor).
    case trueColor
}

/// Ends any colour or emphasis.
let resetEscape = "\u{1B}[0m"
/// Bold, underlined, yellow: the copied stretch in `novelty`.
let highlightEscape = "\u{1B}[1;4;33m"

/// The background colour escape for a value in [-1, 1]: blue (-1) through white (0) to red (+1).
func backgroundEscape(_ value: Float, mode: ColorMode) -> String {
    let (r, g, b) = divergingColor(value)
    switch mode {
    case .none: return ""
    case .trueColor: return "\u{1B}[48;2;\(r);\(g);\(b)m\u{1B}[38;2;0;0;0m"
    case .palette256:
        // The 6x6x6 cube: component levels 0, 95, 135, 175, 215, 255.
        func level(_ component: Int) -> Int { component < 48 ? 0 : min(5, (component - 35) / 40) }
        return "\u{1B}[48;5;\(16 + 36 * level(r) + 6 * level(g) + level(b))m\u{1B}[38;5;16m"
    }
}

/// Blue (-1), white (0), red (+1), linearly in between; values outside [-1, 1] are clamped.
func divergingColor(_ value: Float) -> (Int, Int, Int) {
    let v = value.isNaN ? 0 : max(-1, min(1, value))
    let fade = Int((1 - abs(v)) * 255)
    return v >= 0 ? (255, fade, fade) : (fade, fade, 255)
}

// MARK: Gate saturation

/// What the gates' letters stand for, in the charts.
private let gateTitles = ["i": "i input gate", "f": "f forget gate", "o": "o output gate", "r": "r reset gate",
                          "z": "z update gate"]

/// The paper's scatter in text, one panel per gate side by side, fitted to `width` columns: x = share of characters
/// with the gate below 0.1, y = share above 0.9, both from 0 to 1; a cell shows how many units fall there
/// (. 1, : 2-3, * 4-9, # 10 or more); · marks the diagonal x + y = 1, where a gate is always saturated.
func saturationPanels(_ gates: [GateSaturation], width: Int) -> String {
    let G = max(1, gates.count)
    let gap = 3
    let plotWidth = max(5, min(31, (width - (G - 1) * gap) / G - 5))
    let plotHeight = max(5, min(11, plotWidth / 2 + 1))
    var rows = [String](repeating: "", count: plotHeight + 3)
    for (index, gate) in gates.enumerated() {
        var counts = [[Int]](repeating: [Int](repeating: 0, count: plotWidth), count: plotHeight)
        for unit in gate.left.indices {
            let column = min(plotWidth - 1, Int((gate.left[unit] * Double(plotWidth - 1)).rounded()))
            let row = min(plotHeight - 1, Int(((1 - gate.right[unit]) * Double(plotHeight - 1)).rounded()))
            counts[row][column] += 1
        }
        let separator = index == 0 ? "" : String(repeating: " ", count: gap)
        rows[0] += separator + (gateTitles[gate.gate] ?? gate.gate).rightPadded(to: plotWidth + 5)
        for row in 0..<plotHeight {
            let label = row == 0 ? "  1 |" : row == plotHeight - 1 ? "y 0 |" : "    |"
            var line = label
            for column in 0..<plotWidth {
                let n = counts[row][column]
                // The diagonal x + y = 1 runs from the top-left corner to the bottom-right one.
                let onDiagonal = Int((Double(row) / Double(plotHeight - 1) * Double(plotWidth - 1)).rounded()) == column
                line += n == 0 ? (onDiagonal ? "·" : " ") : n == 1 ? "." : n < 4 ? ":" : n < 10 ? "*" : "#"
            }
            rows[row + 1] += separator + line
        }
        rows[plotHeight + 1] += separator + "    +" + String(repeating: "-", count: plotWidth)
        rows[plotHeight + 2] += separator + ("  x  0" + String(repeating: " ", count: max(0, plotWidth - 2)) + "1")
    }
    return rows.map { String($0.reversed().drop(while: { $0 == " " }).reversed()) }.joined(separator: "\n") + "\n"
}

/// The scatter as a self-contained SVG: one 260-pixel panel per gate, a dot per unit.
func saturationSVG(_ gates: [GateSaturation], title: String) -> String {
    let (panel, margin, top) = (220.0, 40.0, 50.0)
    let width = Double(gates.count) * (panel + 2 * margin), height = top + panel + 60
    var svg = """
    <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
    <rect width="100%" height="100%" fill="white"/>
    <text x="10" y="20" font-size="14">\(xmlEscaped(title))</text>

    """
    for (index, gate) in gates.enumerated() {
        let x0 = Double(index) * (panel + 2 * margin) + margin, y0 = top
        func point(_ x: Double, _ y: Double) -> (Double, Double) { (x0 + x * panel, y0 + (1 - y) * panel) }
        svg += "<g>\n<text x=\"\(x0)\" y=\"\(y0 - 8)\">\(xmlEscaped(gateTitles[gate.gate] ?? gate.gate))</text>\n"
        svg += "<rect x=\"\(x0)\" y=\"\(y0)\" width=\"\(panel)\" height=\"\(panel)\" fill=\"none\" stroke=\"#888\"/>\n"
        let (dx1, dy1) = point(0, 1), (dx2, dy2) = point(1, 0)
        svg += "<line x1=\"\(dx1)\" y1=\"\(dy1)\" x2=\"\(dx2)\" y2=\"\(dy2)\" stroke=\"#bbb\" stroke-dasharray=\"4 4\"/>\n"
        for unit in gate.left.indices {
            let (x, y) = point(gate.left[unit], gate.right[unit])
            svg += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#c0392b\" fill-opacity=\"0.5\"/>\n", x, y)
        }
        svg += "<text x=\"\(x0)\" y=\"\(y0 + panel + 16)\">0</text><text x=\"\(x0 + panel - 6)\" y=\"\(y0 + panel + 16)\">1</text>\n"
        svg += "<text x=\"\(x0 + 20)\" y=\"\(y0 + panel + 34)\">fraction of characters below 0.1 (closed)</text>\n"
        svg += "<text transform=\"translate(\(x0 - 10) \(y0 + panel - 10)) rotate(-90)\">fraction above 0.9 (open)</text>\n</g>\n"
    }
    return svg + "</svg>\n"
}
