// Drawing attention weights (`attn`, Inspection/Attention.swift): one head as a heatmap in the terminal (query
// characters down, key characters across, one column per character, shades for the weights), and every layer and
// head as a self-contained HTML page (weights on hover), written as `cells --html` writes its page.

import CharLM
import Foundation

/// A character as one terminal column, for the heatmap's labels: ↵ a newline, ␣ a space, a control character as its
/// Control Pictures symbol (␉, ␛, ␡), anything else that acts on a terminal or is not one column wide as `?`.
func attentionLabel(_ scalar: Unicode.Scalar) -> String {
    switch scalar {
    case "\n": return "↵"
    case " ": return "␣"
    case "\u{7F}": return "␡"
    default:
        if scalar.value < 0x20 { return String(Character(Unicode.Scalar(0x2400 + scalar.value)!)) }
        if actsOnATerminal(scalar) || columns(scalar) != 1 { return "?" }
        return String(Character(scalar))
    }
}

/// The shade of a weight: `·` below 0.1, `░` from 0.1, `▒` from 0.3, `▓` from 0.5, `█` from 0.8.
func attentionShade(_ weight: Float) -> Character {
    weight >= 0.8 ? "█" : weight >= 0.5 ? "▓" : weight >= 0.3 ? "▒" : weight >= 0.1 ? "░" : "·"
}

/// Head `head` of block `layer` as rows of text fitted to `width` columns: a row per query character (its position and
/// label), a column per key character, blank past the query (the causal mask). When the text is wider than the
/// columns, the first characters are drawn: a causal square from the start is whole (every row's keys are in it).
func attentionHeatmap(scalars: [Unicode.Scalar], weights: AttentionWeights, layer: Int, head: Int, width: Int) -> String {
    let T = weights.length
    let digits = String(T - 1).count
    let labelWidth = digits + 3
    let shown = max(1, min(T, width - 1 - labelWidth))
    let labels = scalars.map(attentionLabel)
    var lines = [String(repeating: " ", count: labelWidth) + labels.prefix(shown).joined()]
    for t in 0..<shown {
        var line = String(t).leftPadded(to: digits) + " " + labels[t] + " "
        for s in 0...t { line.append(attentionShade(weights.weight(layer: layer, head: head, query: t, key: s))) }
        lines.append(line)
    }
    var legend = "query down, key across; · <0.1 ░ 0.1+ ▒ 0.3+ ▓ 0.5+ █ 0.8+"
    if labels.contains("↵") || labels.contains("␣") { legend += "; ↵ newline ␣ space" }
    lines.append(wrap(legend, width: width - 1, indent: 2))
    if shown < T {
        lines.append(wrap("(the first \(shown) of \(T) characters drawn, as many as the width holds; the lines below cover all "
                          + "\(T))", width: width - 1, indent: 2))
    }
    return lines.joined(separator: "\n") + "\n"
}

/// A self-contained page: for every layer and head, a table of the weights (query rows, key columns, white 0 to red 1),
/// each weight on hover with its query and key; the head's summary above it, the most distinctive head marked.
func attentionPage(scalars: [Unicode.Scalar], weights: AttentionWeights, summaries: [HeadSummary], title: String) -> String {
    let T = weights.length
    // 11 colour classes, w0 (0) ... w10 (1), keep the page small.
    var style = "body{font-family:sans-serif;margin:16px}table{border-collapse:collapse;font-family:monospace;font-size:12px;"
        + "margin-bottom:20px}td{width:14px;height:14px;padding:0;text-align:center}th{font-weight:normal;color:#555;padding:0 3px}"
        + "td[title]{cursor:default}"
    for bucket in 0...10 {
        let (r, g, b) = divergingColor(Float(bucket) / 10)
        style += ".w\(bucket){background:rgb(\(r),\(g),\(b))}"
    }
    let characters = scalars.map { xmlEscaped(attentionLabel($0)) }
    let spelled = scalars.map { xmlEscaped(visible($0)) }
    let chosen = summaries.mostDistinctive
    var html = htmlPageHead(title: title, style: style) + """
    <p>Each table is one head: a row per character as it reads (the query), a column per character it may look at (the key: \
    only those so far), coloured by the weight from white (0) to red (1). Hover a square for its weight. \(T) characters; \
    ↵ is a newline, ␣ a space. Spread: the mean entropy of a row as a share of attending evenly (0 one character, 1 all \
    alike); the most distinctive head has the lowest.</p>

    """
    for summary in summaries {
        let (layer, head) = (summary.layer, summary.head)
        let mark = summary == chosen ? " (the most distinctive)" : ""
        html += "<h2 style=\"font-size:15px\" id=\"layer-\(layer)-head-\(head)\">layer \(layer) head \(head)\(mark): looks at "
            + xmlEscaped(summary.pattern) + "</h2>\n"
        html += "<p>" + String(format: "mean distance %.1f; previous character %.0f%%, first %.0f%%, itself %.0f%%",
                                summary.distance, summary.previous * 100, summary.first * 100, summary.itself * 100)
            + (summary.spaceOrNewline.map { String(format: ", spaces and newlines %.0f%%", $0 * 100) } ?? "")
            + String(format: "; spread %.2f", summary.spread) + "</p>\n"
        html += "<table><tr><th></th>" + characters.map { "<th>\($0)</th>" }.joined() + "</tr>\n"
        for t in 0..<T {
            html += "<tr><th>\(characters[t])</th>"
            for s in 0...t {
                let w = weights.weight(layer: layer, head: head, query: t, key: s)
                let bucket = Int((max(0, min(1, w)) * 10).rounded())
                html += "<td class=\"w\(bucket)\" title=\"query \(t) \(spelled[t]), key \(s) \(spelled[s]): "
                    + String(format: "%.3f", w) + "\"></td>"
            }
            html += "</tr>\n"
        }
        html += "</table>\n"
    }
    html += "</body>\n</html>\n"
    return html
}
