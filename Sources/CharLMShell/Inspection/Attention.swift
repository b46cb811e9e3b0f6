// `attn "TEXT" [LAYER] [HEAD] [--html FILE]`: where a transformer's heads look while it reads a text. The weights come
// from the engine (`TransformerModel.attentionWeights`, the model's own forward); this file measures each head in a
// few numbers a reader can check (`HeadSummary`), picks the most distinctive head, and asks AttentionRender.swift to
// draw it: a heatmap in the terminal, or every layer and head on one HTML page.
//
// The most distinctive head is the one whose attention is most concentrated: the lowest mean entropy of its rows,
// each as a share of the entropy of attending evenly to every character so far ("spread": 0 when each query looks at
// one character, 1 when it looks at all alike). A head that always looks at the previous character, or at the first,
// has a spread near 0; one that averages over everything, near 1.
//
// A text longer than the model's context is refused: the model never attends over more than its context at once,
// and a shown window would start at another position than the model's.

import CharLM
import Foundation

/// What one head does over a text, as shares of its attention (`attn`'s summary lines). Every mean is over the
/// queries that have a choice (characters 1 ... T-1: character 0 can only look at itself).
public struct HeadSummary: Equatable, Sendable {
    public let layer: Int, head: Int
    /// Mean distance looked back: sum over keys s of weight(t, s) (t - s).
    public let distance: Double
    /// Mean weight on the previous character (t - 1), on the first (0), and on the query itself (t).
    public let previous: Double, first: Double, itself: Double
    /// Mean weight on spaces and newlines; nil when the text has none.
    public let spaceOrNewline: Double?
    /// Mean entropy of a query's weights as a share of ln(t + 1), the entropy of attending evenly (0 ... 1).
    public let spread: Double

    /// What the head looks at, in words that follow "looks at": the one of the previous character, the first, itself
    /// and spaces/newlines that holds the most of its weight, when that is at least 40%; else "everything alike" for
    /// a spread above 0.85; else how far back it looks on average.
    public var pattern: String { namedShare?.name ?? (spread > 0.85 ? "everything alike" : String(format: "a mix, %.1f back on average", distance)) }

    /// The largest of the four named shares, when it is at least 40% of the head's weight.
    var namedShare: (name: String, share: Double)? {
        let shares: [(name: String, share: Double)] = [("the previous character", previous), ("the first character", first),
                                                       ("itself", itself), ("spaces and newlines", spaceOrNewline ?? 0)]
        let best = shares.max { $0.share < $1.share }!
        return best.share >= 0.4 ? best : nil
    }

    /// Measures head `head` of block `layer` over a text whose characters are `scalars`.
    init(weights: AttentionWeights, layer: Int, head: Int, scalars: [Unicode.Scalar]) {
        let T = weights.length
        var (distance, previous, first, itself, spaces, entropy) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        let isSpace = scalars.map { $0 == " " || $0 == "\n" }
        for t in 1..<T {
            let row = weights.row(layer: layer, head: head, query: t)
            var rowEntropy = 0.0
            for (s, w) in zip(0...t, row) {
                let p = Double(w)
                distance += p * Double(t - s)
                if isSpace[s] { spaces += p }
                if p > 0 { rowEntropy -= p * Foundation.log(p) }
            }
            previous += Double(row[row.startIndex + t - 1])
            first += Double(row[row.startIndex])
            itself += Double(row[row.startIndex + t])
            entropy += rowEntropy / Foundation.log(Double(t + 1))
        }
        let queries = Double(T - 1)
        self.layer = layer
        self.head = head
        self.distance = distance / queries
        self.previous = previous / queries
        self.first = first / queries
        self.itself = itself / queries
        spaceOrNewline = isSpace.contains(true) ? spaces / queries : nil
        spread = entropy / queries
    }
}

extension [HeadSummary] {
    /// The most distinctive head: the lowest spread, ties to the lower layer, then head.
    var mostDistinctive: HeadSummary? { self.min { ($0.spread, $0.layer, $0.head) < ($1.spread, $1.layer, $1.head) } }
}

extension Inspector {
    /// The transformer, for `attn`: a model of another family is refused, pointing to what shows its insides.
    func transformerModel(for command: String) throws -> TransformerModel {
        guard let model = network as? TransformerModel else {
            throw ShellError.badArgument("`\(command)` shows a transformer's attention, and this model (\(network.summary)) has "
                                         + "none: `cells` and `gates` look inside a recurrent network; `set arch transformer`, "
                                         + "`reset` and `train` make a transformer")
        }
        return model
    }

    /// The tokens of `text` and the attention weights of every block and head over them, with each head measured.
    /// A text longer than the context, or of one character, is refused.
    func attention(text: String, command: String = "attn") throws
        -> (model: TransformerModel, scalars: [Unicode.Scalar], weights: AttentionWeights, summaries: [HeadSummary]) {
        let model = try transformerModel(for: command)
        let tokens = try encodeForModel(text, vocabulary: vocabulary)
        let C = model.config.context
        guard tokens.count <= C else {
            throw ShellError.badArgument("the text has \(grouped(tokens.count)) characters, more than the model's context \(grouped(C)): "
                                         + "it never attends over more than \(grouped(C)) at once; give at most \(grouped(C)) characters")
        }
        guard tokens.count >= 2 else {
            throw ShellError.badArgument("give at least two characters: with one, every head can only look at it")
        }
        let weights = try model.attentionWeights(tokens: tokens, context: context)
        let scalars = tokens.map { vocabulary.scalars[$0] }
        let summaries = (0..<weights.layerCount).flatMap { layer in
            (0..<weights.headCount).map { HeadSummary(weights: weights, layer: layer, head: $0, scalars: scalars) }
        }
        return (model, scalars, weights, summaries)
    }

    /// `attn "TEXT" [LAYER] [HEAD]`: one head's weights as a heatmap (without HEAD, the most distinctive head of LAYER,
    /// or of every layer), then a line per head of those layers.
    public func attentionReport(text: String, layer: Int?, head: Int?) throws -> String {
        let (model, scalars, weights, summaries) = try attention(text: text)
        let (L, NH) = (model.config.layerCount, model.config.headCount)
        if let layer, !(0..<L).contains(layer) { throw ShellError.badArgument("layer must be from 0 to \(L - 1); got \(layer)") }
        if let head, !(0..<NH).contains(head) { throw ShellError.badArgument("head must be from 0 to \(NH - 1); got \(head)") }
        let considered = summaries.filter { layer == nil || $0.layer == layer }
        let chosen = head.map { head in considered.first { $0.head == head }! }
            ?? considered.mostDistinctive!
        let width = console.width - 1
        let why = String(format: head == nil ? ", most distinctive (spread %.2f):" : " (spread %.2f):", chosen.spread)
        let share = chosen.namedShare.map { String(format: " (%.0f%%)", $0.share * 100) } ?? ""
        var output = wrap("layer \(chosen.layer) head \(chosen.head)\(why) \(chosen.pattern)\(share)", width: width,
                          indent: 2) + "\n"
        output += attentionHeatmap(scalars: scalars, weights: weights, layer: chosen.layer, head: chosen.head, width: width + 1)
        output += headSummaryTable(considered, chosen: chosen, width: width)
        return output
    }

    /// `attn "TEXT" --html FILE`: every layer and head on one self-contained page, weights on hover.
    public func writeAttentionPage(text: String, path: String) throws -> (layers: Int, heads: Int) {
        let model = try transformerModel(for: "attn")
        // About 60 bytes of HTML per weight: keep the page to some tens of megabytes.
        let T = Double(vocabulary.encode(text).tokens.count)
        let cells = Double(model.config.layerCount * model.config.headCount) * T * (T + 1) / 2
        guard cells <= Double(Self.maximumPageCells) else {
            throw ShellError.badArgument("the page would hold \(grouped(Int(cells))) weights; at most \(grouped(Self.maximumPageCells)) "
                                         + "in all: give a shorter text")
        }
        try ReplaceableKind.htmlPage.checkReplaceable(path, by: "`attn --html`")
        let (_, scalars, weights, summaries) = try attention(text: text)
        let page = attentionPage(scalars: scalars, weights: weights, summaries: summaries,
                                 title: "charlm: attention of \(model.summary)")
        try writeFileAtomically(Array(page.utf8), to: path)
        return (weights.layerCount, weights.headCount)
    }

    /// The summary lines: one per head of `summaries`, `chosen` marked.
    private func headSummaryTable(_ summaries: [HeadSummary], chosen: HeadSummary, width: Int) -> String {
        func percent(_ share: Double?) -> String { share.map { String(format: "%3.0f%%", $0 * 100) } ?? "   -" }
        var lines = ["layer head  back  prev  first  self  sp/nl  spread  looks at"]
        for summary in summaries {
            let line = String(summary.layer).leftPadded(to: 5) + String(summary.head).leftPadded(to: 5)
                + String(format: "  %4.1f", summary.distance) + "  " + percent(summary.previous) + "   " + percent(summary.first)
                + "  " + percent(summary.itself) + "   " + percent(summary.spaceOrNewline)
                + String(format: "    %4.2f", summary.spread) + (summary == chosen ? " *" : "  ") + summary.pattern
            lines.append(line.count > width ? String(line.prefix(width - 1)) + "…" : line)
        }
        lines.append(wrap("back: mean distance; prev, first, self, sp/nl: mean weight on such keys (a key can be two, "
                          + "so they overlap); spread: 0 one character, 1 all alike; * drawn above", width: width, indent: 2))
        return lines.joined(separator: "\n") + "\n"
    }
}

/// `attn "TEXT" [LAYER] [HEAD] [--html FILE]`.
func runAttn(_ context: CommandContext, _ words: [Word]) throws {
    let session = context.session
    let usage = "attn \"TEXT\" [LAYER] [HEAD] [--html FILE]"
    var rest = words[...]
    let htmlPath = try takeFileOption("--html", from: &rest, usage: usage)
    guard let textWord = rest.popFirst(), rest.count <= 2 else { throw ShellError.usage(usage) }
    let numbers = try rest.map { word -> Int in
        guard let value = Int(word.text), value >= 0 else {
            throw ShellError.badArgument("LAYER and HEAD are whole numbers >= 0; got '\(word.text)'; usage: \(usage)")
        }
        return value
    }
    let text = try textArgument(textWord)
    let inspector = try session.inspector()
    if let htmlPath {
        guard numbers.isEmpty else {
            throw ShellError.badArgument("--html writes every layer and head: give no LAYER or HEAD; usage: \(usage)")
        }
        let (layers, heads) = try inspector.writeAttentionPage(text: text, path: htmlPath)
        session.console.report("wrote \(htmlPath): \(layers) layer\(layers == 1 ? "" : "s") x \(heads) head\(heads == 1 ? "" : "s")")
    } else {
        session.console.info(try inspector.attentionReport(text: text, layer: numbers.first, head: numbers.count > 1 ? numbers[1] : nil))
    }
}
