// What the inspection commands run: they read their arguments, ask the session's inspector (Inspect.swift,
// Dissect.swift), its n-gram baselines and comparison table (Compare.swift) or its histories for a report, and print
// it. The command table (Commands.swift) names each of these in its row.

import CharLM
import Foundation

/// `model`: the architecture, corpus, progress, best validation, memory and what computes.
func runModel(_ context: CommandContext, _ words: [Word]) throws {
    try expectArguments(words, 0, 0, "model")
    let session = context.session
    guard let model = session.model else {
        session.console.info("no model yet: `load` a text or a checkpoint\n")
        return
    }
    var lines = ["model: \(model.summary)"]
    lines.append("corpus: " + (session.corpusName.map { "\($0) (\(grouped(session.corpus!.tokens.count)) characters)" } ?? "none loaded"))
    var progress = "step \(grouped(session.step))" + (session.trainedElsewhere && session.step == 0 ? " here (the file holds no training history)" : "")
    if let perEpoch = session.stepsPerEpoch { progress += String(format: ", epoch %.2f", Double(session.step) / Double(perEpoch)) }
    lines.append(progress)
    if let loss = session.lossHistory.last { lines.append("last training loss " + lossText(loss)) }
    if let validation = session.validationHistory.last { lines.append("last validation loss \(lossText(validation.loss)) (step \(grouped(validation.step)))") }
    if let best = session.watch.best {
        lines.append("best validation loss " + lossText(best.loss) + " at step \(grouped(best.step)) "
                     + (session.restoredFrom == best.step ? "(restored: these are the parameters in use)" : "(`restore best`)"))
    }
    let settings = session.settings
    let training = MemoryModel.trainingBytes(model.architecture, length: settings.seq, batch: settings.batch)
    lines.append("memory: the model \(formatBytes(Int(MemoryModel.modelBytes(model.architecture)))); training at seq \(settings.seq) "
                 + "x batch \(settings.batch) about \(formatBytes(Int(min(training, 9e18)))) (\(formatBytes(availableMemoryBytes())) available)")
    // The transformer's products all go to BLAS (Models/Transformer/TransformerKernels.swift).
    let threads = session.context.threadCount
    lines.append("compute: " + (session.model?.architecture.kindName == "transformer"
        ? "\(threads) thread\(threads == 1 ? "" : "s"); products on BLAS: \(session.context.blasSummary)"
        : session.context.summary))
    session.console.infoWrapped(lines.joined(separator: "\n"))
}

/// `eval`: validation loss in nats/char, bits/char and perplexity.
func runEval(_ context: CommandContext, _ words: [Word]) throws {
    try expectArguments(words, 0, 0, "eval")
    let session = context.session
    let evaluation = try session.evaluate()
    // The split's characters are predicted in whole windows of seq (ValidationWindows): say so when a few are left
    // over, as `load` reported the whole split.
    let split = session.dataset?.validationRange.count ?? evaluation.characters
    let predicted = evaluation.characters >= split - 1 ? grouped(evaluation.characters) + " characters"
        : "\(grouped(evaluation.characters)) of the \(grouped(split)) validation characters, in whole windows of seq \(session.settings.seq)"
    session.console.infoWrapped(String(format: "validation loss %.4f nats/char, %.4f bits/char, perplexity %@ (%@)",
                                       evaluation.nats, evaluation.bits, formatPerplexity(evaluation.perplexity), predicted))
}

/// `windows [N]`: training examples, input over target.
func runWindows(_ context: CommandContext, _ words: [Word]) throws {
    try expectArguments(words, 0, 1, "windows [N]")
    let count = try words.first.map { try positiveInteger($0.text, "windows: N", maximum: 100) } ?? 3
    context.session.console.info(try context.session.inspector().windowsReport(count: count))
}

/// `next "PROMPT" [K]`: the K most likely next characters.
func runNext(_ context: CommandContext, _ words: [Word]) throws {
    try expectArguments(words, 1, 2, "next \"PROMPT\" [K]")
    let count = try words.count > 1 ? positiveInteger(words[1].text, "next: K", maximum: 65_535) : 10
    context.session.console.info(try context.session.inspector().nextReport(prompt: words[0].text, count: count))
}

/// `trace "PROMPT" [N]`: N characters sampled slowly, each with its probability, rank and alternatives.
func runTrace(_ context: CommandContext, _ words: [Word]) throws {
    try expectArguments(words, 1, 2, "trace \"PROMPT\" [N]")
    let count = try words.count > 1 ? positiveInteger(words[1].text, "trace: N", maximum: 10_000) : 20
    let session = context.session
    session.console.info(try session.inspector().traceReport(prompt: words[0].text, count: count, generator: &session.sampleGenerator))
}

/// `cells`: parses `[top | find] "TEXT" [LAYER] [CELL | FEATURE] [--html FILE]` and runs the right report.
func runCells(_ context: CommandContext, _ words: [Word]) throws {
    let session = context.session
    let usage = "cells [top | find] \"TEXT\" [LAYER] [CELL] [--html FILE]"
    var rest = words[...]
    let mode = rest.first.flatMap { !$0.quoted && ["top", "find"].contains($0.text) ? $0.text : nil }
    if mode != nil { rest = rest.dropFirst() }
    let htmlPath = try takeFileOption("--html", from: &rest, usage: usage)
    guard let textWord = rest.popFirst() else { throw ShellError.usage(usage) }
    let text = try textArgument(textWord)
    let inspector = try session.inspector()
    let model = try inspector.recurrentModel(for: "cells")
    // The cell may be named by a feature `cells find` looked for on this layer.
    var featureCell: Int?
    if let last = rest.last, rest.count <= 2, let feature = TextFeature(rawValue: last.text.lowercased()), mode == nil, htmlPath == nil {
        let layer = rest.count == 2 ? Int(rest.first!.text) : model.config.layerCount - 1
        guard let layer, let found = session.foundUnits[layer]?[feature] else {
            if let layer, session.foundUnits[layer] != nil {
                throw ShellError.badArgument("`cells find` found no cell for \(feature.rawValue) on layer \(layer): in the text it "
                                             + "read, \(feature.meaning) never changes; `cells find` again with a text where it does")
            }
            throw ShellError.badArgument("no cell found for \(feature.rawValue) on layer \(layer.map(String.init) ?? "?") yet: "
                                         + "`cells find \"TEXT\" LAYER` looks for one first")
        }
        featureCell = found
        rest = rest.dropLast()
        if rest.isEmpty { rest = [Word(String(layer))] }
    }
    let numbers = try rest.map { word -> Int in
        guard let value = Int(word.text), value >= 0 else {
            throw ShellError.badArgument("LAYER and CELL are whole numbers >= 0 (or CELL a feature `cells find` named); got '\(word.text)'; usage: \(usage)")
        }
        return value
    }
    guard numbers.count <= (mode != nil || htmlPath != nil ? 1 : 2) else { throw ShellError.usage(usage) }
    let layer = numbers.first ?? model.config.layerCount - 1
    if let htmlPath {
        try inspector.writeCellsPage(text: text, layer: layer, path: htmlPath)
        session.console.report("wrote \(htmlPath): layer \(layer), \(model.config.hiddenSize) cells")
    } else if mode == "top" {
        session.console.info(try inspector.cellsTopReport(text: text, layer: layer))
    } else if mode == "find" {
        let (report, found) = try inspector.findUnitsReport(text: text, layer: layer)
        session.foundUnits[layer] = Dictionary(uniqueKeysWithValues: found.map { ($0.feature, $0.unit) })
        session.console.info(report)
    } else {
        session.console.styledInfo(try inspector.cellsReport(text: text, layer: layer, cell: featureCell ?? (numbers.count > 1 ? numbers[1] : nil),
                                                       color: session.console.colorMode))
    }
}

/// `gates`: parses `"TEXT" [LAYER] [--svg FILE]`.
func runGates(_ context: CommandContext, _ words: [Word]) throws {
    let session = context.session
    let usage = "gates \"TEXT\" [LAYER] [--svg FILE]"
    var rest = words[...]
    let svgPath = try takeFileOption("--svg", from: &rest, usage: usage)
    guard let textWord = rest.popFirst(), rest.count <= 1 else { throw ShellError.usage(usage) }
    if let path = svgPath, !path.lowercased().hasSuffix(".svg") {
        throw ShellError.badArgument("--svg writes SVG: give a file name ending in .svg; got '\(path)'")
    }
    let text = try textArgument(textWord)
    let inspector = try session.inspector()
    let layer = try rest.first.map { word -> Int in
        guard let value = Int(word.text), value >= 0 else {
            throw ShellError.badArgument("LAYER is a whole number >= 0; got '\(word.text)'; usage: \(usage)")
        }
        return value
    } ?? (try inspector.recurrentModel(for: "gates")).config.layerCount - 1
    if let svgPath {
        try inspector.writeGatesSVG(text: text, layer: layer, path: svgPath)
        session.console.report("wrote \(svgPath): gate saturation of layer \(layer)")
    } else {
        session.console.info(try inspector.gatesReport(text: text, layer: layer))
    }
}

/// `ngram [N | N1 N2 ...]` reports the orders' validation loss; `ngram gen ["PROMPT"] [N]` samples from the highest.
func runNgram(_ context: CommandContext, _ words: [Word]) throws {
    let session = context.session
    if let first = words.first, !first.quoted, first.text == "gen" {
        let (prompt, count) = try promptAndCount(Array(words.dropFirst()), command: "ngram gen", session: session)
        try session.ngramGenerate(prompt: prompt, count: count)
        return
    }
    let numbers = try words.map { try positiveInteger($0.text, "ngram: N", maximum: NGramModel.maximumOrder) }
    let orders = numbers.count == 1 ? Array(1...numbers[0]) : numbers.isEmpty ? Array(1...5) : Array(Set(numbers)).sorted()
    session.console.info(try session.ngramReport(orders: orders))
}

/// `compare [add ["LABEL"] | clear]`: the table of networks and baselines, a row added, or the table emptied.
func runCompare(_ context: CommandContext, _ words: [Word]) throws {
    let session = context.session
    switch words.first.map({ $0.quoted ? "" : $0.text }) {
    case nil: session.console.info(session.compareTable())
    case "add"?:
        try expectArguments(Array(words.dropFirst()), 0, 1, "compare add [\"LABEL\"]")
        try session.compareAdd(label: words.count > 1 ? words[1].text : nil)
    case "clear"?:
        try expectArguments(Array(words.dropFirst()), 0, 0, "compare clear")
        let removed = session.compareClear()
        session.console.report(removed == 0 ? "the comparison table was empty already"
                               : "removed \(removed) row\(removed == 1 ? "" : "s"): the comparison table is empty")
    default: throw ShellError.usage("compare [add [\"LABEL\"] | clear]")
    }
}

/// `plot [FILE.svg]`: the loss curves in the terminal, or as an SVG file.
func runPlot(_ context: CommandContext, _ words: [Word]) throws {
    try expectArguments(words, 0, 1, "plot [FILE.svg]")
    let session = context.session
    if let path = words.first.map({ expandingTilde($0.text) }) {
        guard path.lowercased().hasSuffix(".svg") else {
            throw ShellError.badArgument("plot writes SVG: give a file name ending in .svg; got '\(path)'")
        }
        guard !session.lossHistory.isEmpty else { throw ShellError.needs(.training) }
        try writeFileAtomically(Array(lossChartSVG(training: session.lossHistory, validation: session.validationHistory).utf8), to: path)
        session.console.report("wrote \(path)")
    } else {
        guard !session.lossHistory.isEmpty else { throw ShellError.needs(.training) }
        session.console.info(brailleChart(training: session.lossHistory, validation: session.validationHistory,
                                          width: session.console.width, height: 12))
        session.console.infoWrapped(validationList(session.validationHistory))
    }
}

/// `novelty [N]`: how much of N generated characters is copied from the training text.
func runNovelty(_ context: CommandContext, _ words: [Word]) throws {
    try expectArguments(words, 0, 1, "novelty [N]")
    let count = try words.first.map { try positiveInteger($0.text, "novelty: N", maximum: 1_000_000) } ?? 500
    let session = context.session
    session.console.styledInfo(try session.inspector().noveltyReport(
        count: count, color: session.console.colorMode == .none ? .none : .palette256, generator: &session.sampleGenerator))
}
