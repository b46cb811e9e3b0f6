// Comparing models in one session: count-based n-gram baselines of the loaded text (`ngram`, the engine's NGram.swift:
// interpolated Kneser-Ney), text sampled from them (`ngram gen`), and a table of trained networks beside them
// (`compare`), measured in the same protocol and units as `eval`. What a recurrent network learns beyond counting
// is the gap between its row and the best n-gram's.

import CharLM
import Foundation

/// The session's n-gram model and comparison table.
struct Baselines {
    /// The n-gram model last counted, and the text and split it was counted on.
    var ngram: NGramModel?
    var ngramSource: NGramSource?
    /// The rows `compare` prints, in the order they were added.
    var rows: [ComparisonRow] = []
}

/// Which training split an n-gram model counted: the text's fingerprint and the split's bounds.
struct NGramSource: Equatable {
    let corpus: CorpusFingerprint
    let trainRange: Range<Int>
}

/// One row of `compare`.
public struct ComparisonRow: Equatable, Sendable {
    /// What the row is: "LSTM H 256, L 2" or "5-gram (Kneser-Ney)".
    public var label: String
    /// Parameters of a network; distinct n-grams counted for an n-gram model.
    public var parameters: Int
    /// Training steps (nil for an n-gram model).
    public var steps: Int?
    /// Training tokens per second of the last `train` (nil for an n-gram model or an untrained network).
    public var tokensPerSecond: Double?
    /// Validation loss, nats per character, in windows of `seq`.
    public var validation: Double
    public var seq: Int
    /// Whether the row is an n-gram model (replaced when `ngram` counts again).
    public var isNGram: Bool
}

extension Session {
    /// The n-gram model of the loaded text's training split, counted up to `order` (or reused when it already is).
    private func ngramModel(order: Int) throws -> NGramModel {
        guard let corpus, let dataset else { throw ShellError.needs(.text(command: "ngram")) }
        let source = NGramSource(corpus: corpus.fingerprint, trainRange: dataset.trainRange)
        if let model = baselines.ngram, baselines.ngramSource == source, model.order >= order { return model }
        baselines.ngram = nil
        let start = Date()
        let model = try NGramModel(dataset: dataset, vocabularySize: corpus.vocabulary.count, order: order,
                                   maximumBytes: MemoryBudget.usableBytes, cancellation: cancellation)
        baselines.ngram = model
        baselines.ngramSource = source
        console.note(String(format: "counted 1- to %d-grams of %@ training characters in %.1f s (%@ MB)\n", order,
                            grouped(dataset.trainRange.count), Date().timeIntervalSince(start),
                            grouped(Int((Double(model.bytes) / 1_048_576).rounded(.up)))))
        return model
    }

    /// `ngram [N | N1 N2 ...]`: the validation loss of n-gram models of these orders (1 ... N for one number),
    /// beside the current network's when it has the text's vocabulary. Adds the rows to `compare`'s table.
    public func ngramReport(orders: [Int]) throws -> String {
        guard let dataset else { throw ShellError.needs(.text(command: "ngram")) }
        let T = settings.seq
        guard dataset.validationWindowCount(length: T) > 0 else { throw CharLMError.noValidationSplit }
        let model = try ngramModel(order: orders.max() ?? 5)
        let evaluations = try model.evaluateOrders(dataset: dataset, length: T, cancellation: cancellation)
        let levels = model.levels
        var lines = [wrap("count-based character n-grams of the training split, interpolated Kneser-Ney smoothing; "
                          + "validation as `eval` measures it (windows of seq \(T), each from an empty history)",
                          width: console.width - 1, indent: 2),
                     "model                          n-grams   nats/char  bits/char  perplexity"]
        func line(_ label: String, _ count: String, _ evaluation: Evaluation) -> String {
            label.rightPadded(to: 26) + count.leftPadded(to: 12)
                + String(format: "  %9.4f  %9.4f  %10.3f", evaluation.nats, evaluation.bits, evaluation.perplexity)
        }
        for order in orders.sorted() {
            let evaluation = evaluations[order - 1]
            let grams = levels.prefix(order).reduce(0) { $0 + $1.distinctGrams }
            lines.append(line("\(order)-gram", grouped(grams), evaluation))
            baselines.rows.removeAll { $0.isNGram && $0.label == "\(order)-gram (Kneser-Ney)" && $0.seq == T }
            baselines.rows.append(ComparisonRow(label: "\(order)-gram (Kneser-Ney)", parameters: grams, steps: nil,
                                                tokensPerSecond: nil, validation: evaluation.nats, seq: T, isNGram: true))
        }
        if let network = self.model, vocabulary == corpus?.vocabulary, (try? checkFinite(network)) != nil,
           let evaluation = try? evaluate() {
            lines.append(line(abbreviated("network, \(network.config.layerKind.rawValue.uppercased()), step \(grouped(step))", limit: 25),
                              grouped(network.layout.totalCount), evaluation) + " (parameters)")
        }
        lines.append(wrap("n-grams: distinct n-grams of orders 1 to N counted (the model's size). `ngram gen` samples "
                          + "from the highest order; `compare` shows these rows beside trained networks.",
                          width: console.width - 1, indent: 1))
        return lines.joined(separator: "\n") + "\n"
    }

    /// `ngram gen ["PROMPT"] [N]`: N characters sampled from the highest-order n-gram model counted, with the
    /// current temp, topk and topp, after PROMPT.
    public func ngramGenerate(prompt: String, count: Int) throws -> String {
        guard let corpus, let counted = baselines.ngram else {
            throw ShellError.badArgument("no n-gram model yet: `ngram` counts one from the loaded text first")
        }
        // Counted again when the text or its split changed since.
        let model = try ngramModel(order: counted.order)
        let vocabulary = corpus.vocabulary
        let encoding = vocabulary.encode(prompt)
        var history = prompt.isEmpty ? [corpus.primer] : encoding.tokens
        guard !history.isEmpty else {
            throw ShellError.badArgument("\"\(prompt)\" has no character of the loaded text (after normalisation)")
        }
        let sampler = Sampler(vocabularySize: vocabulary.count)
        var output = prompt
        for index in 0..<count {
            if index % 1024 == 0 { try cancellation.check() }
            let token = try model.sample(after: history.suffix(model.order - 1), settings: settings.sampling,
                                         sampler: sampler, generator: &sampleGenerator)
            history.append(token)
            if history.count > 4 * model.order { history.removeFirst(history.count - model.order) }
            output += vocabulary.character(token)
        }
        return output + "\n"
    }

    /// `compare add ["LABEL"]`: the current network's row: its validation loss now, its parameters and steps, and
    /// the speed of its last `train`.
    public func compareAdd(label: String?) throws {
        guard let model else { throw ShellError.needs(.model) }
        let evaluation = try evaluate()
        let config = model.config
        let row = ComparisonRow(
            label: label ?? "\(config.layerKind.rawValue.uppercased()) H \(config.hiddenSize), L \(config.layerCount)",
            parameters: model.layout.totalCount, steps: step, tokensPerSecond: lastTrainingRate,
            validation: evaluation.nats, seq: settings.seq, isNGram: false)
        baselines.rows.append(row)
        console.report(String(format: "added %@: validation loss %.4f nats/char", abbreviated(row.label, limit: 40), row.validation))
    }

    /// `compare`: the table of rows added by `compare add` and `ngram`, networks first, each group by loss.
    public func compareTable() -> String {
        guard !baselines.rows.isEmpty else {
            return wrap("nothing to compare yet: `compare add` adds the current network after `train`; `ngram` adds "
                        + "n-gram baselines", width: console.width - 1, indent: 2) + "\n"
        }
        let rows = baselines.rows.filter { !$0.isNGram }.sorted { $0.validation < $1.validation }
            + baselines.rows.filter(\.isNGram).sorted { $0.validation < $1.validation }
        var lines = ["model                    parameters     steps  tokens/s  val loss  bits/char"]
        for row in rows {
            lines.append(abbreviated(row.label, limit: 22).rightPadded(to: 23) + grouped(row.parameters).leftPadded(to: 11)
                         + (row.steps.map(grouped) ?? "-").leftPadded(to: 10)
                         + (row.tokensPerSecond.map { grouped(Int($0.rounded())) } ?? "-").leftPadded(to: 10)
                         + String(format: "  %8.4f  %9.4f", row.validation, row.validation / log(2)))
        }
        let windows = Set(rows.map(\.seq))
        lines.append(wrap("validation loss in nats/char"
                          + (windows.count == 1 ? ", windows of seq \(windows.first!)" : "; rows were measured with different seq: "
                             + windows.sorted().map(String.init).joined(separator: ", ") + ", so compare like with like")
                          + "; for n-grams, parameters = distinct n-grams counted; tokens/s of the last `train`",
                          width: console.width - 1, indent: 1))
        return lines.joined(separator: "\n") + "\n"
    }

    /// `compare clear`.
    public func compareClear() { baselines.rows = [] }
}
