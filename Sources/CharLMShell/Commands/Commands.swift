// The command table. Each command is one value: name, usage, summary, details with an example, what it runs and
// how its arguments complete. `help`, "did you mean" and completion are generated from this table. Adding a command
// adds a row here; a command whose work is more than a few lines calls a session operation (Session.swift) or an
// inspection report (Inspect.swift) from its row.

import CharLM
import Foundation

/// What a running command can reach: the session and the runner that called it.
public struct CommandContext {
    public let session: Session
    public let runner: Runner
}

/// One shell command.
public struct Command: Sendable {
    public let name: String
    public let aliases: [String]
    public let usage: String
    public let summary: String
    /// Shown by `help NAME`: what it does, then an example.
    public let details: String
    let run: @Sendable (CommandContext, [Word]) throws -> Void
    /// Candidates for the argument being typed, given the arguments before it.
    let complete: @Sendable (Session?, [String], String) -> [String]

    init(_ name: String, aliases: [String] = [], usage: String, summary: String, details: String,
         complete: @escaping @Sendable (Session?, [String], String) -> [String] = { _, _, _ in [] },
         run: @escaping @Sendable (CommandContext, [Word]) throws -> Void) {
        self.name = name
        self.aliases = aliases
        self.usage = usage
        self.summary = summary
        self.details = details
        self.run = run
        self.complete = complete
    }
}

/// Throws a usage error unless `words` has between `min` and `max` entries.
private func expectArguments(_ words: [Word], _ min: Int, _ max: Int, _ usage: String) throws {
    guard words.count >= min && words.count <= max else { throw ShellError.usage(usage) }
}

/// A setting shorthand such as `temp 0.8`: sets it, or shows it with no value.
private func shorthand(_ name: String, _ key: String, _ example: String) -> Command {
    let summary = Settings.key(named: key)!.summary
    return Command(name, usage: "\(name) [VALUE]", summary: "set \(key): \(summary)",
                   details: "With a value, sets \(key); without, shows it.\nExample: \(example)",
                   complete: { _, previous, prefix in previous.isEmpty ? Settings.key(named: key)!.suggestions.filter { $0.hasPrefix(prefix) } : [] }) { context, words in
        try expectArguments(words, 0, 1, "\(name) [VALUE]")
        if let value = words.first {
            try context.session.set(key, value.text)
        } else {
            context.session.console.info("\(key) \(Settings.key(named: key)!.get(context.session.settings))\n")
        }
    }
}

/// A whole number from 1 to `maximum`, or a usage error naming `what`.
private func positiveInteger(_ text: String, _ what: String, maximum: Int) throws -> Int {
    guard let value = Int(text), value >= 1, value <= maximum else {
        throw ShellError.badArgument("\(what) must be a whole number from 1 to \(maximum); got '\(text)'")
    }
    return value
}

/// `["PROMPT"] [N]`, as `gen` and `ngram gen` read them: an unquoted number alone is N; an unquoted @FILE is the
/// file's text; N defaults to `length`.
private func promptAndCount(_ words: [Word], command: String, session: Session) throws -> (prompt: String, count: Int) {
    let usage = "\(command) [\"PROMPT\"] [N]"
    try expectArguments(words, 0, 2, usage)
    var prompt = ""
    var count = session.settings.length
    var rest = words[...]
    if let first = rest.first, first.quoted || Int(first.text) == nil {
        prompt = first.text
        rest = rest.dropFirst()
        if !first.quoted && prompt.hasPrefix("@") {
            prompt = try readArgumentFile(String(prompt.dropFirst()))
        }
    }
    if let last = rest.first {
        guard let value = Int(last.text), Setting.length.domain.contains(Double(value)) else {
            throw ShellError.badArgument("\(command): N must be \(Setting.length.domain.rule); got '\(last.text)'")
        }
        count = value
        rest = rest.dropFirst()
    }
    guard rest.isEmpty else { throw ShellError.usage(usage) }
    return (prompt, count)
}

/// A `TEXT` argument: its text, or the text of the file it names as @FILE (when not quoted).
private func textArgument(_ word: Word) throws -> String {
    word.text.hasPrefix("@") && !word.quoted ? try readArgumentFile(String(word.text.dropFirst())) : word.text
}

/// Takes `flag FILE` out of `words`, returning FILE (with ~ expanded), or nil when the flag is absent.
private func takeFileOption(_ flag: String, from words: inout ArraySlice<Word>, usage: String) throws -> String? {
    guard let index = words.firstIndex(where: { !$0.quoted && $0.text == flag }) else { return nil }
    guard index + 1 < words.endIndex else { throw ShellError.badArgument("\(flag) needs a file name; usage: \(usage)") }
    let path = expandingTilde(words[index + 1].text)
    words.removeSubrange(index...(index + 1))
    return path
}

/// `cells`: parses `[top | find] "TEXT" [LAYER] [CELL | FEATURE] [--html FILE]` and runs the right report.
private func runCells(_ session: Session, _ words: [Word]) throws {
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
        session.console.info(try inspector.cellsReport(text: text, layer: layer, cell: featureCell ?? (numbers.count > 1 ? numbers[1] : nil),
                                                       color: session.console.colorMode))
    }
}

/// `gates`: parses `"TEXT" [LAYER] [--svg FILE]`.
private func runGates(_ session: Session, _ words: [Word]) throws {
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

/// The largest file `gen @FILE` and `cells @FILE` read: a prompt or text far larger than anyone reads.
let maximumArgumentFileBytes = 10_000_000

/// The text of a file named in an argument (`@FILE`), with the error a user can act on.
func readArgumentFile(_ path: String) throws -> String {
    String(decoding: try readFileBytes(at: expandingTilde(path), maximumBytes: maximumArgumentFileBytes, limit: "a prompt or text file"),
           as: UTF8.self)
}

/// Parses `train` arguments: `N` or `N epochs`, `N steps`, `90s`, `5m`, `2h`. Each mistake gets its own sentence.
func parseTrainingAmount(_ words: [String]) throws -> Session.TrainingAmount {
    let usage = "train [N | N epochs | N steps | 90s | 5m | 2h | until N]"
    /// The number in `text`, above 0; errors quote `shown`, the word as typed.
    func positive(_ text: String, _ what: String, shown: String) throws -> Double {
        guard let value = decimalNumber(text) else {
            throw ShellError.badArgument("train needs a number of epochs, `N steps` or a duration like 90s, 5m or 2h; got '\(abbreviated(shown))'")
        }
        guard value > 0 else { throw ShellError.badArgument("train: \(what) must be above 0; got '\(abbreviated(shown))'") }
        return value
    }
    switch words.count {
    case 0: return .epochs(1)
    case 1 where words[0].lowercased() == "until":
        throw ShellError.badArgument("train until N: N is how many validations in a row may pass without improvement; "
                                     + "for example `train until 3`")
    case 1:
        let word = words[0].lowercased()
        for (suffix, scale) in [("s", 1.0), ("m", 60.0), ("h", 3600.0)] where word.hasSuffix(suffix) {
            if decimalNumber(String(word.dropLast())) != nil {
                return .seconds(try positive(String(word.dropLast()), "a duration", shown: words[0]) * scale)
            }
        }
        return .epochs(try positive(word, "the number of epochs", shown: words[0]))
    case 2 where words[0].lowercased() == "until":
        guard let count = Int(words[1]), (1...1000).contains(count) else {
            throw ShellError.badArgument("train until N: N is how many validations in a row may pass without improvement, "
                                         + "a whole number from 1 to 1000; got '\(abbreviated(words[1]))'")
        }
        return .untilNoImprovement(count)
    case 2:
        switch words[1].lowercased() {
        case "steps", "step":
            // 1e12 is a whole number too; a count beyond what charlm counts to is refused by `train` itself.
            guard let value = Int(words[0]).map(Double.init) ?? decimalNumber(words[0]), value > 0, value == value.rounded() else {
                throw ShellError.badArgument("train N steps: N must be a whole number above 0; got '\(abbreviated(words[0]))'")
            }
            return .steps(value >= 9e18 ? Int.max : Int(value))
        case "epochs", "epoch":
            return .epochs(try positive(words[0], "the number of epochs", shown: words[0]))
        default:
            throw ShellError.badArgument("train N UNIT: the unit is steps or epochs; got '\(abbreviated(words[1]))'")
        }
    default:
        throw ShellError.usage(usage)
    }
}

/// File names in the folder of `prefix` that start with it; folders end in "/".
func completePath(_ prefix: String) -> [String] {
    let expanded = prefix.hasPrefix("~/") ? NSHomeDirectory() + prefix.dropFirst(1) : prefix
    let folder: String, partial: String, shown: String
    if let slash = expanded.lastIndex(of: "/") {
        folder = String(expanded[...slash])
        partial = String(expanded[expanded.index(after: slash)...])
        shown = String(prefix[...prefix.lastIndex(of: "/")!])
    } else {
        (folder, partial, shown) = ("", expanded, "")
    }
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: folder.isEmpty ? "." : folder) else { return [] }
    return entries.filter { $0.hasPrefix(partial) && (partial.hasPrefix(".") || !$0.hasPrefix(".")) }.sorted().map { entry in
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: folder + entry, isDirectory: &isDirectory)
        return shown + entry + (isDirectory.boolValue ? "/" : "")
    }
}

/// The command table.
public enum Commands {
    public static let table: [Command] = [
        Command("load", usage: "load PATH|URL|NAME", summary: "load a text corpus or a checkpoint",
                details: """
                Loads a text file (normalised by the `lowercase` and `ascii` settings, split by `val`) or a checkpoint \
                (recognised by its content, whatever its name), restoring everything the checkpoint holds. NAME is a \
                built-in dataset (\(Downloads.builtIn.keys.sorted().joined(separator: ", "))), downloaded once into \
                $CHARLM_CACHE (default ~/.cache/charlm) and checked against its sha256; a URL downloads any http(s) \
                text the same way.
                Example: load input.txt
                """,
                complete: { _, previous, prefix in
                    previous.isEmpty ? Downloads.builtIn.keys.sorted().filter { $0.hasPrefix(prefix) } + completePath(prefix) : []
                }) { context, words in
            try expectArguments(words, 1, 1, "load PATH|URL|NAME")
            try context.session.load(words[0].text)
        },
        Command("set", usage: "set KEY VALUE", summary: "change a setting",
                details: "Changes one setting; `show` lists them all with their values.\nExample: set hidden 512",
                complete: { _, previous, prefix in
                    if previous.isEmpty { return Settings.keys.map(\.name).filter { $0.hasPrefix(prefix) } }
                    if previous.count == 1, let key = Settings.key(named: previous[0]) {
                        return key.suggestions.filter { $0.hasPrefix(prefix) } + (key.declaration.domain == .file ? completePath(prefix) : [])
                    }
                    return []
                }) { context, words in
            try expectArguments(words, 2, 2, "set KEY VALUE")
            try context.session.set(words[0].text, words[1].text)
        },
        Command("show", usage: "show [KEY]", summary: "show settings",
                details: "Without a key, lists every setting with its value and meaning.\nExample: show lr",
                complete: { _, previous, prefix in previous.isEmpty ? Settings.keys.map(\.name).filter { $0.hasPrefix(prefix) } : [] }) { context, words in
            try expectArguments(words, 0, 1, "show [KEY]")
            let session = context.session
            if let name = words.first?.text {
                guard let key = Settings.key(named: name) else {
                    throw ShellError.unknownSetting(name, suggestion: nearest(to: name, among: Settings.keys.map(\.name)))
                }
                session.console.info("\(key.name) \(key.get(session.settings))\n")
            } else {
                session.console.info(settingsList(session.settings, width: session.console.width))
            }
        },
        shorthand("temp", "temp", "temp 0.8"),
        shorthand("seed", "seed", "seed 42"),
        shorthand("topk", "topk", "topk 40"),
        shorthand("topp", "topp", "topp 0.9"),
        shorthand("len", "length", "len 500"),
        shorthand("samples", "samples", "samples 4"),
        Command("model", aliases: ["info"], usage: "model", summary: "describe the model, the corpus and progress",
                details: "Architecture, parameter count, corpus, step, epoch, last training and validation loss, memory, and what computes (threads, the products' kernel and vector width, the BLAS and its kernel family).\nExample: model") { context, words in
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
            if let loss = session.lossHistory.last { lines.append(String(format: "last training loss %.4f", loss)) }
            if let validation = session.validationHistory.last { lines.append(String(format: "last validation loss %.4f (step %d)", validation.loss, validation.step)) }
            if let best = session.watch.best {
                lines.append("best validation loss " + String(format: "%.4f", best.loss) + " at step \(grouped(best.step)) "
                             + (session.restoredFrom == best.step ? "(restored: these are the parameters in use)" : "(`restore best`)"))
            }
            let settings = session.settings
            let training = MemoryModel.trainingBytes(model.architecture, length: settings.seq, batch: settings.batch)
            lines.append("memory: the model \(formatBytes(Int(MemoryModel.modelBytes(model.architecture)))); training at seq \(settings.seq) "
                         + "x batch \(settings.batch) about \(formatBytes(Int(min(training, 9e18)))) (\(formatBytes(availableMemoryBytes())) available)")
            lines.append("compute: " + session.context.summary)
            session.console.infoWrapped(lines.joined(separator: "\n"))
        },
        Command("reset", usage: "reset", summary: "start a fresh model from the current settings",
                details: "Builds a new, untrained model with the current embed, hidden, layers and dropout on the loaded text's characters; forgets the optimizer and histories. Change those settings first (`set hidden 128`), then reset.\nExample: reset") { context, words in
            try expectArguments(words, 0, 0, "reset")
            try context.session.reset()
        },
        Command("restore", usage: "restore best", summary: "put back the best parameters validation has seen",
                details: "Copies back the parameters of the lowest validation loss of this model's training (`model` shows its step). Adam's moments were not kept, so the optimizer restarts; the step count and histories stay. `train until N` does this by itself.\nExample: restore best",
                complete: { _, previous, prefix in previous.isEmpty ? ["best"].filter { $0.hasPrefix(prefix) } : [] }) { context, words in
            guard words.count == 1, words[0].text == "best" else { throw ShellError.usage("restore best") }
            let session = context.session
            let (best, changed) = try session.restoreBest()
            guard changed else {
                session.console.report("the parameters in use are already the best, from step \(grouped(best.step)) (validation loss "
                                       + String(format: "%.4f", best.loss) + "): nothing changed")
                return
            }
            session.console.report("restored the best parameters, from step \(grouped(best.step)) (validation loss "
                                   + String(format: "%.4f", best.loss) + "); the optimizer restarts (its moments were not "
                                   + "kept), so the next few steps of training are worse while they rebuild; the step count "
                                   + "stays \(grouped(session.step))")
        },
        Command("train", usage: "train [N | N steps | 90s | 5m | until N]", summary: "train for N epochs, N steps, a time, or until validation stops improving",
                details: """
                Trains the model on the loaded text: N epochs (one epoch = one pass over the training split's \
                characters; default 1), N steps, or for a time (90s, 5m, 1h). Validates every `eval` steps and at the \
                end, keeping the best parameters so far (`restore best`, `save best PATH`; `keepbest` also writes them \
                to a file). `train until N` trains until N validations in a row have not improved on the best \
                (early stopping), then restores the best. A note says when validation rises while training loss \
                falls (overfitting). `log` records every step, `autosave` saves on an interval. Ctrl-C stops after \
                the current step.
                Example: train 500 steps
                """,
                complete: { _, previous, prefix in
                    if previous.isEmpty { return ["until"].filter { $0.hasPrefix(prefix) } }
                    return previous.count == 1 && previous[0] != "until" ? ["steps"].filter { $0.hasPrefix(prefix) } : []
                }) { context, words in
            try context.session.train(parseTrainingAmount(words.map(\.text)))
        },
        Command("eval", usage: "eval", summary: "validation loss in nats/char, bits/char and perplexity",
                details: "Mean cross-entropy over the validation split in windows of `seq` characters, each from a zero state.\nExample: eval") { context, words in
            try expectArguments(words, 0, 0, "eval")
            let evaluation = try context.session.evaluate()
            context.session.console.infoWrapped(String(format: "validation loss %.4f nats/char, %.4f bits/char, perplexity %@ (%@ characters)",
                                                evaluation.nats, evaluation.bits, formatPerplexity(evaluation.perplexity), grouped(evaluation.characters)))
        },
        Command("gen", aliases: ["generate"], usage: "gen [\"PROMPT\"] [N]", summary: "generate N characters after a prompt",
                details: """
                Streams N characters (default `len`) after PROMPT, using temp, topk, topp and the seed. The prompt takes \
                escapes (\\n, \\t, \\", \\\\); @FILE reads it from a file. Characters the model does not know are \
                reported and left out. With `samples K` (K > 1), writes K independent samples of N characters, \
                generated together and written one after the other under `--- sample k of K ---` once done (a \
                progress line meanwhile). `bf16 on` reads bfloat16 copies of the weights (faster). Ctrl-C stops.
                Example: gen "ROMEO:" 300
                """,
                complete: { _, previous, prefix in previous.isEmpty && prefix.hasPrefix("@") ? completePath(String(prefix.dropFirst())).map { "@" + $0 } : [] }) { context, words in
            let (prompt, count) = try promptAndCount(words, command: "gen", session: context.session)
            try context.session.generate(prompt: prompt, count: count)
        },
        Command("vocab", usage: "vocab", summary: "the characters the model knows, with index and count",
                details: "Every vocabulary entry: its index (the number the model sees), the character spelled visibly ('\\n', ' '), and how often it occurs in the loaded text.\nExample: vocab") { context, words in
            try expectArguments(words, 0, 0, "vocab")
            context.session.console.info(try context.session.inspector().vocabularyTable())
        },
        Command("encode", usage: "encode \"TEXT\"", summary: "turn text into the indices the model sees",
                details: "Normalises TEXT as the corpus was (lowercase, ascii), maps each character to its index, and says what normalisation changed and which characters were left out.\nExample: encode \"Hello, World!\"") { context, words in
            try expectArguments(words, 1, 1, "encode \"TEXT\"")
            context.session.console.info(try context.session.inspector().encodeReport(words[0].text))
        },
        Command("decode", usage: "decode INDEX...", summary: "turn indices back into text",
                details: "The characters of vocabulary indices (`vocab` lists them), spelled visibly and then as text.\nExample: decode 20 17 24 24 27") { context, words in
            guard !words.isEmpty else { throw ShellError.usage("decode INDEX...") }
            context.session.console.info(try context.session.inspector().decodeReport(words.map(\.text)))
        },
        Command("windows", usage: "windows [N]", summary: "training examples: input characters over the ones to predict",
                details: "Draws N (default 3) windows of `seq` characters at random from the training split, as training does (the same ones each time for the same seed, so looking changes nothing), and shows each input character above the character the model must predict there.\nExample: windows 2") { context, words in
            try expectArguments(words, 0, 1, "windows [N]")
            let count = try words.first.map { try positiveInteger($0.text, "windows: N", maximum: 100) } ?? 3
            context.session.console.info(try context.session.inspector().windowsReport(count: count))
        },
        Command("next", usage: "next \"PROMPT\" [K]", summary: "the K most likely next characters, at temp 1 and now",
                details: "Feeds PROMPT and shows the K (default 10) most likely next characters as bars: the model's own distribution (temperature 1) beside the one sampling draws from now (temp, topk, topp).\nExample: next \"ROMEO:\" 5") { context, words in
            try expectArguments(words, 1, 2, "next \"PROMPT\" [K]")
            let count = try words.count > 1 ? positiveInteger(words[1].text, "next: K", maximum: 65_535) : 10
            context.session.console.info(try context.session.inspector().nextReport(prompt: words[0].text, count: count))
        },
        Command("trace", usage: "trace \"PROMPT\" [N]", summary: "sample N characters slowly: choice, probability, rank, alternatives",
                details: "Generates N (default 20) characters after PROMPT with the current temp, topk, topp and seed, one line each: the character drawn, its probability, its rank, how many characters the cut-offs kept, and the most likely alternatives (| marks the top-k/top-p cut-off).\nExample: trace \"To be\" 10") { context, words in
            try expectArguments(words, 1, 2, "trace \"PROMPT\" [N]")
            let count = try words.count > 1 ? positiveInteger(words[1].text, "trace: N", maximum: 10_000) : 20
            let session = context.session
            session.console.info(try session.inspector().traceReport(prompt: words[0].text, count: count, generator: &session.sampleGenerator))
        },
        Command("cells", usage: "cells [top | find] \"TEXT\" [LAYER] [CELL] [--html FILE]", summary: "what the memory cells do over a text",
                details: """
                cells "TEXT" [LAYER] [CELL]: colours each character by one memory cell after reading it: tanh(c) \
                for the LSTM, h for the GRU and the RNN (blue -1, white 0, red +1; numbers when not on a terminal). \
                LAYER defaults to the top layer, CELL to the cell that changes most over TEXT, or names a feature \
                `cells find` looked for (quotes, line-position, ...). cells top "TEXT" [LAYER]: the cells that \
                change most. cells find "TEXT" [LAYER]: the cell that follows each feature of the text most \
                closely (position in the line, inside quotes, inside brackets, inside a word, a newline, a capital), \
                with its correlation. --html FILE: a page with every cell of the layer, one line each, values on \
                hover. TEXT may be @FILE.
                Example: cells find @input.txt
                """,
                complete: { _, previous, prefix in
                    if previous.isEmpty { return ["top", "find"].filter { $0.hasPrefix(prefix) } }
                    if previous.last == "--html" { return completePath(prefix) }
                    if prefix.hasPrefix("-") { return ["--html"].filter { $0.hasPrefix(prefix) } }
                    return TextFeature.allCases.map(\.rawValue).filter { !prefix.isEmpty && $0.hasPrefix(prefix) }
                }) { context, words in
            try runCells(context.session, words)
        },
        Command("gates", usage: "gates \"TEXT\" [LAYER] [--svg FILE]", summary: "how often each gate is shut or wide open",
                details: """
                Feeds TEXT and counts, for every unit of LAYER (default: the top one), the share of characters after \
                which each gate is below 0.1 (closed, left-saturated) and above 0.9 (open, right-saturated), drawn as \
                the scatter of Karpathy et al. (2015): one dot per unit, x closed, y open. LSTM: gates i, f, o; GRU: \
                r, z; the vanilla RNN has none. --svg FILE writes the scatter as a picture. TEXT may be @FILE.
                Example: gates @input.txt 1 --svg gates.svg
                """,
                complete: { _, previous, prefix in
                    if previous.last == "--svg" { return completePath(prefix) }
                    return prefix.hasPrefix("-") ? ["--svg"].filter { $0.hasPrefix(prefix) } : []
                }) { context, words in
            try runGates(context.session, words)
        },
        Command("ngram", usage: "ngram [N | N1 N2 ...] | ngram gen [\"PROMPT\"] [N]", summary: "count-based n-gram baselines: what counting alone predicts",
                details: """
                Counts the character n-grams of the loaded text's training split and reports each order's validation \
                loss, measured as `eval` measures the network's (windows of `seq`, nats/char), beside the network's. \
                Smoothing: interpolated Kneser-Ney. ngram N reports orders 1 to N (default 5, at most 10); \
                ngram 3 5 7 those orders. ngram gen ["PROMPT"] [N] samples N characters (default `len`) from the \
                highest order counted, with temp, topk and topp: read what counting alone writes. The rows join \
                `compare`'s table.
                Example: ngram 7
                """,
                complete: { _, previous, prefix in previous.isEmpty ? ["gen"].filter { $0.hasPrefix(prefix) } : [] }) { context, words in
            let session = context.session
            if let first = words.first, !first.quoted, first.text == "gen" {
                let (prompt, count) = try promptAndCount(Array(words.dropFirst()), command: "ngram gen", session: session)
                try session.ngramGenerate(prompt: prompt, count: count)
                return
            }
            let numbers = try words.map { try positiveInteger($0.text, "ngram: N", maximum: NGramModel.maximumOrder) }
            let orders = numbers.count == 1 ? Array(1...numbers[0]) : numbers.isEmpty ? Array(1...5) : Array(Set(numbers)).sorted()
            session.console.info(try session.ngramReport(orders: orders))
        },
        Command("compare", usage: "compare [add [\"LABEL\"] | clear]", summary: "a table of trained networks beside n-gram baselines",
                details: """
                compare add ["LABEL"] measures the current network (validation loss, as `eval`) and adds a row with \
                its parameters, steps and the tokens/s of its last `train`; `ngram` adds its orders. compare prints \
                the table; compare clear empties it. scripts/compare.clm uses it to race the three cells.
                Example: compare add "GRU, 10 minutes"
                """,
                complete: { _, previous, prefix in previous.isEmpty ? ["add", "clear"].filter { $0.hasPrefix(prefix) } : [] }) { context, words in
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
        },
        Command("plot", usage: "plot [FILE.svg]", summary: "training and validation loss against steps",
                details: "Draws the loss curves in the terminal (braille dots, fitted to its width), or writes them as an SVG file.\nExample: plot curves.svg",
                complete: { _, previous, prefix in previous.isEmpty ? completePath(prefix) : [] }) { context, words in
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
        },
        Command("novelty", usage: "novelty [N]", summary: "generate N characters: how much is copied from the training text?",
                details: "Generates N (default 500) characters with the current sampling settings and reports the share of their words and of their 8-character sequences found in the training text, marking the longest stretch copied verbatim.\nExample: novelty 1000") { context, words in
            try expectArguments(words, 0, 1, "novelty [N]")
            let count = try words.first.map { try positiveInteger($0.text, "novelty: N", maximum: 1_000_000) } ?? 500
            let session = context.session
            session.console.info(try session.inspector().noveltyReport(
                count: count, color: session.console.colorMode == .none ? .none : .palette256, generator: &session.sampleGenerator))
        },
        Command("pause", usage: "pause [\"MESSAGE\"]", summary: "wait for Enter (in a script run at a terminal)",
                details: "Prints MESSAGE (default: press Enter to go on) and waits for Enter when charlm runs at a terminal, so a script can stop between sections; elsewhere (a pipe, -c, tests) it goes straight on.\nExample: pause \"Next: sampling.\"") { context, words in
            try expectArguments(words, 0, 1, "pause [\"MESSAGE\"]")
            guard let wait = context.session.waitForEnter else { return }
            context.session.console.note((words.first?.text ?? "") + (words.isEmpty ? "" : " ") + "[press Enter to go on]\n")
            wait()
        },
        Command("echo", usage: "echo TEXT", summary: "print TEXT (for explanations in scripts)",
                details: "Prints its words separated by spaces; quotes keep spacing and allow \\n.\nExample: echo \"Next: the model's predictions.\"") { context, words in
            // A line longer than the terminal is wrapped (it is prose); shorter ones keep their spacing.
            let width = context.session.console.width - 1
            let text = words.map(\.text).joined(separator: " ").split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.count <= width ? String($0) : wrap(String($0), width: width, indent: 0) }.joined(separator: "\n")
            context.session.console.info(text + "\n")
        },
        Command("save", usage: "save [PATH] | save best PATH", summary: "save the session (or the best model) to a checkpoint",
                details: "Writes model, optimizer, settings and histories to a safetensors checkpoint, atomically. Without PATH: the file this session last saved to, else charlm.safetensors; a bare `save` never replaces a file this session did not write (name it to replace it). A read-only file is never replaced. `save best PATH` writes the best parameters validation has seen (`model` names their step), with the history up to that step and no optimizer state (it was not kept); a file called best is `save ./best`.\nExample: save shakespeare.safetensors",
                complete: { _, previous, prefix in previous.isEmpty || previous == ["best"] ? completePath(prefix) : [] }) { context, words in
            try expectArguments(words, 0, 2, "save [PATH] | save best PATH")
            if words.count == 2 || (words.first.map { !$0.quoted && $0.text == "best" } ?? false) {
                guard words.count == 2, !words[0].quoted, words[0].text == "best" else {
                    throw ShellError.badArgument("save best PATH: name the file for the best model (a file called best is `save ./best`)")
                }
                let (path, size) = try context.session.saveBest(to: words[1].text)
                let best = context.session.watch.best!
                context.session.console.report("saved the best model, step \(grouped(best.step)) (validation loss "
                                               + String(format: "%.4f", best.loss) + "), to \(path) (\(grouped(size)) bytes)")
                return
            }
            let (path, size) = try context.session.save(to: words.first?.text)
            let target = resolvedSaveTarget(path)
            context.session.console.report("saved \(path)" + (target == path ? "" : " (a link: wrote \(target))") + " (\(grouped(size)) bytes)")
        },
        Command("source", usage: "source FILE.clm", summary: "run the commands in a script",
                details: "Runs a .clm script inside this session. A `source` inside a script names its script relative to that script's folder; every other path (load, save, plot, @FILE) is relative to the current folder, as at the prompt.\nExample: source experiment.clm",
                complete: { _, previous, prefix in previous.isEmpty ? completePath(prefix) : [] }) { context, words in
            try expectArguments(words, 1, 1, "source FILE.clm")
            try context.runner.source(words[0].text)
        },
        Command("history", usage: "history [N]", summary: "the commands typed so far, numbered",
                details: "The last N commands (default 20), oldest first, numbered: at the prompt, this session's and those kept from earlier sessions (in $CHARLM_HISTORY, default ~/.charlm_history, written after every command); in a script, the commands run so far. (For the training losses, see `plot`.)\nExample: history 5") { context, words in
            try expectArguments(words, 0, 1, "history [N]")
            let count = try words.first.map { try positiveInteger($0.text, "history: N", maximum: 100_000) } ?? 20
            let lines = context.runner.historyProvider?() ?? context.runner.executedLines
            let first = max(0, lines.count - count)
            let numberWidth = String(lines.count).count
            for (offset, line) in lines[first...].enumerated() {
                let entry = String(first + offset + 1).leftPadded(to: numberWidth + 2) + "  " + line
                let width = context.session.console.width - 1
                context.session.console.info((entry.count <= width ? entry : wrap(entry, width: width, indent: numberWidth + 4)) + "\n")
            }
        },
        Command("help", aliases: ["?"], usage: "help [COMMAND|SETTING]", summary: "list the commands, or explain one",
                details: "Without a command, lists every command with its usage; with one, explains it and gives an example.\nExample: help train",
                complete: { _, previous, prefix in
                    previous.isEmpty ? (Commands.table.map(\.name) + Settings.keys.map(\.name)).filter { $0.hasPrefix(prefix) } : []
                }) { context, words in
            // `help restore best`, `help keepbest PATH`: the usage's own words after the name are allowed.
            try expectArguments(words, 0, 3, "help [COMMAND|SETTING]")
            context.session.console.info(try helpText(for: words.first?.text, width: context.session.console.width))
        },
        Command("quit", aliases: ["exit"], usage: "quit", summary: "leave charlm (also Ctrl-D)",
                details: "Ends the session (also Ctrl-D). At the prompt, leaving with training that was never saved is refused once, with a note: `save`, or quit again.\nExample: quit") { context, words in
            try expectArguments(words, 0, 0, "quit")
            context.runner.requestQuit()
        },
    ]

    /// The command called `name` (or with that alias).
    public static func command(named name: String) -> Command? {
        table.first { $0.name == name || $0.aliases.contains(name) }
    }
}

/// `help` and `help NAME`.
func helpText(for name: String?, width: Int = 80) throws -> String {
    let width = width - 1
    if let name {
        if let command = Commands.command(named: name) {
            let aliases = command.aliases.isEmpty ? "" : " (also: " + command.aliases.joined(separator: ", ") + ")"
            var text = wrap("usage: \(command.usage)\(aliases)", width: width, indent: 7) + "\n"
                + wrap(command.summary, width: width, indent: 2) + "\n\n" + wrap(command.details, width: width, indent: 0) + "\n"
            if command.name == "set" { text += "\n" + settingsList(width: width + 1) }
            // A command that shares its name with a setting (temp, seed, topk, topp, len, eval): the setting too.
            if let key = Settings.key(named: command.name) { text += "\n" + settingHelp(key, width: width) }
            return text
        }
        if let key = Settings.key(named: name) { return settingHelp(key, width: width) }
        throw ShellError.unknownCommand(name, suggestion: nearest(to: name, among: Commands.table.map(\.name) + Settings.keys.map(\.name)))
    }
    return "commands (`help COMMAND` or `help SETTING` for details):\n"
        + twoColumns(Commands.table.map { ($0.usage, $0.summary) }, width: width, maximumLeft: 26) + "\n"
        + wrap("scripts: one command per line (or several, separated by `;`), # comments, a trailing \\ continues a line", width: width, indent: 2)
        + "\n"
}

/// A setting: what it means, what it takes, its default, and when a change takes effect.
func settingHelp(_ key: SettingKey, width: Int) -> String {
    let declaration = key.declaration
    return wrap("\(key.name): \(key.summary). \(declaration.domain.rule.prefix(1).uppercased() + declaration.domain.rule.dropFirst()); "
                + "default \(declaration.defaultText). Group: \(key.group.rawValue)"
                + (settingGroupNote[key.group].map { " (\($0))" } ?? "") + ".\nSet it with `set \(key.name) VALUE`.",
                width: width, indent: 2) + "\n"
}

/// What a setting's group means for when a change takes effect.
let settingGroupNote: [SettingGroup: String] = [
    .model: "the architecture: a trained model keeps its own until `reset`",
    .data: "applies when text is next loaded",
]

/// Every setting with its value (or default) and meaning, in two columns.
func settingsList(_ settings: Settings = Settings(), width: Int = 80) -> String {
    let nameWidth = Settings.keys.map(\.name.count).max()! + 2
    let rows = Settings.keys.map { key in (key.name.rightPadded(to: nameWidth) + key.get(settings), key.summary) }
    return twoColumns(rows, width: width - 1, maximumLeft: nameWidth + 8, indent: 0) + "\n"
}
