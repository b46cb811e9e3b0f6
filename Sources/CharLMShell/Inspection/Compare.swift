// Comparing models in one session: count-based n-gram baselines of the loaded text (`ngram`, the engine's Models/NGram/:
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
        // The model counted before stays until the new one is whole (Ctrl-C while counting changes nothing); the
        // memory check counts both.
        let start = Date()
        let kept = Double(baselines.ngram?.bytes ?? 0)
        let model = try NGramModel(dataset: dataset, vocabularySize: corpus.vocabulary.count, order: order,
                                   maximumBytes: max(0, MemoryBudget.usableBytes - kept), cancellation: cancellation)
        baselines.ngram = model
        baselines.ngramSource = source
        console.note(String(format: "counted 1- to %ld-grams of %@ training characters in %.1f s (%@ MB)\n", order,
                            grouped(dataset.trainRange.count), Date().timeIntervalSince(start),
                            grouped(Int((Double(model.bytes) / 1_048_576).rounded(.up)))))
        return model
    }

    /// `ngram [N | N1 N2 ...]`: the validation loss of n-gram models of these orders (1 ... N for one number),
    /// beside the current network's when it has the text's vocabulary. Adds the rows to `compare`'s table.
    public func ngramReport(orders: [Int]) throws -> String {
        guard let dataset else { throw ShellError.needs(.text(command: "ngram")) }
        let T = settings.seq
        guard !dataset.validationRange.isEmpty else { throw CharLMError.noValidationSplit }
        guard dataset.validationWindowCount(length: T) > 0 else {
            throw CharLMError.corpusTooShort(split: "validation", tokens: dataset.validationRange.count, needed: T + 1, seq: T)
        }
        let model = try ngramModel(order: orders.max() ?? 5)
        let evaluations = try model.evaluateOrders(dataset: dataset, length: T, cancellation: cancellation)
        let levels = model.levels
        var lines = [wrap("count-based character n-grams of the training split, interpolated Kneser-Ney smoothing; "
                          + "validation as `eval` measures it (windows of seq \(T), each from an empty history)",
                          width: console.width - 1, indent: 2),
                     "model                            size   nats/char  bits/char  perplexity"]
        func line(_ label: String, _ count: String, _ evaluation: Evaluation) -> String {
            label.rightPadded(to: 26) + " " + count.leftPadded(to: 11)
                + String(format: "  %9.4f  %9.4f  ", evaluation.nats, evaluation.bits) + formatPerplexity(evaluation.perplexity).leftPadded(to: 10)
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
            // After `restore best`, the parameters are those of the restored step.
            lines.append(line("\(network.architecture.kindName.uppercased()), step \(grouped(restoredFrom ?? step))",
                              grouped(network.parameters.count), evaluation))
        }
        lines.append(wrap("size: distinct n-grams of orders 1 to N counted; a network's parameters. `ngram gen` samples "
                          + "from the highest order; `compare` shows these rows beside trained networks.",
                          width: console.width - 1, indent: 2))
        return lines.joined(separator: "\n") + "\n"
    }

    /// `ngram gen ["PROMPT"] [N]`: streams N characters sampled from the highest-order n-gram model counted, with
    /// the current temp, topk and topp, after PROMPT (normalised as `gen` does; an empty one starts after the
    /// primer). Ctrl-C stops it, keeping what was written.
    public func ngramGenerate(prompt: String, count: Int) throws {
        guard let corpus, let counted = baselines.ngram else {
            throw ShellError.badArgument("no n-gram model yet: `ngram` counts one from the loaded text first")
        }
        // Counted again when the text or its split changed since.
        let model = try ngramModel(order: counted.order)
        let vocabulary = corpus.vocabulary
        let (encoding, promptText) = encodePrompt(prompt, vocabulary: vocabulary)
        // The same generation loop as `gen`, on the n-gram model's decoder.
        try stream(TextGenerator(model: NGramLanguageModel(model), context: context), prompt: encoding.tokens,
                   promptText: promptText, count: count, primer: corpus.primer, vocabulary: vocabulary,
                   command: "ngram gen")
    }

    /// `compare add ["LABEL"]`: the current network's row: its validation loss now, its parameters and steps, and
    /// the speed of its last `train`.
    public func compareAdd(label: String?) throws {
        guard let model else { throw ShellError.needs(.model) }
        let evaluation = try evaluate()
        let architecture = model.architecture
        let typed = label?.trimmingCharacters(in: .whitespaces) ?? ""
        let row = ComparisonRow(
            label: !typed.isEmpty ? typed : defaultLabel(architecture),
            parameters: model.parameters.count, steps: restoredFrom ?? step, tokensPerSecond: lastTrainingRate,
            validation: evaluation.nats, seq: settings.seq, isNGram: false)
        baselines.rows.append(row)
        console.report("added " + tableLabel(row.label, width: 40).trimmingCharacters(in: .whitespaces)
                       + String(format: ": validation loss %.4f nats/char", row.validation))
    }

    /// A network's row label: its family and size, "LSTM H 256, L 2", "Transformer E 64, L 2" (not an acronym, so
    /// not in capitals; the heads left out, to fit the column; the parameters column tells the size).
    private func defaultLabel(_ architecture: any ModelArchitecture) -> String {
        if let config = architecture as? TransformerConfig {
            return "Transformer E \(config.embeddingSize), L \(config.layerCount)"
        }
        return "\(architecture.kindName.uppercased()) \(architecture.sizeNames.short)"
    }

    /// `compare`: the table of rows added by `compare add` and `ngram`, networks first, each group by loss.
    public func compareTable() -> String {
        guard !baselines.rows.isEmpty else {
            return wrap("nothing to compare yet: `compare add` adds the current network after `train`; `ngram` adds "
                        + "n-gram baselines", width: console.width - 1, indent: 2) + "\n"
        }
        let rows = baselines.rows.filter { !$0.isNGram }.sorted { $0.validation < $1.validation }
            + baselines.rows.filter(\.isNGram).sorted { $0.validation < $1.validation }
        let windows = Set(rows.map(\.seq))
        var lines = ["model                    parameters     steps  tokens/s  val loss  bits/char"]
        for row in rows {
            // With rows of several `seq`, each label says its own, kept whole when a long label is cut.
            let seq = windows.count > 1 ? " seq \(row.seq)".leftPadded(to: 9) : ""
            lines.append(tableLabel(row.label, width: 22 - seq.count) + seq + " " + grouped(row.parameters).leftPadded(to: 11)
                         + " " + (row.steps.map(grouped) ?? "-").leftPadded(to: 9)
                         + " " + (row.tokensPerSecond.map { grouped(Int($0.rounded())) } ?? "-").leftPadded(to: 9)
                         + String(format: "  %8.4f  %9.4f", row.validation, row.validation / log(2)))
        }
        lines.append(wrap("validation loss in nats/char"
                          + (windows.count == 1 ? ", windows of seq \(windows.first!)" : "; rows were measured with different seq: "
                             + windows.sorted().map(String.init).joined(separator: ", ") + ", so compare like with like")
                          + "; for n-grams, parameters = distinct n-grams counted; tokens/s of the last `train`",
                          width: console.width - 1, indent: 2))
        return lines.joined(separator: "\n") + "\n"
    }

    /// `compare clear`: how many rows it removed.
    public func compareClear() -> Int {
        defer { baselines.rows = [] }
        return baselines.rows.count
    }
}
