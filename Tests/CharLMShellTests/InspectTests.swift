// The inspection commands (vocab, encode, decode, windows, next, trace, cells, plot, novelty, echo) on tiny models:
// exact plain-text output where the answer is known independently (a model whose parameters are all zero predicts
// the uniform distribution), and the numbers against the engine's own API (sampler, cell states) elsewhere.

import CharLM
@testable import CharLMShell
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// A shell holding `text` and a model whose parameters are all zero: every prediction is uniform.
private func shellWithZeroModel(text: String, folder: URL) throws -> (Session, Runner, BufferConsole) {
    let corpus = try Corpus.make(text: text, normalization: Settings().normalization)
    let config = RecurrentConfig(vocabularySize: corpus.vocabulary.count, embeddingSize: 3, hiddenSize: 4, layerCount: 1)
    let zeros = [Float](repeating: 0, count: RecurrentLayout(config: config).totalCount)
    let checkpoint = Checkpoint(config: config, vocabulary: corpus.vocabulary, parameters: zeros, optimizer: nil,
                                training: nil, sampling: nil, corpus: nil, settings: [:])
    let textPath = folder.appendingPathComponent("text.txt").path
    let modelPath = folder.appendingPathComponent("zero.safetensors").path
    try Data(text.utf8).write(to: URL(fileURLWithPath: textPath))
    try Checkpoint.write(checkpoint.serialized(), to: modelPath)
    let (session, runner, console) = makeShell()
    try runner.execute("load \(textPath)")
    try runner.execute("load \(modelPath)")
    // After the model: a file without training settings puts them back to their defaults.
    try runner.execute("set seq 4")
    return (session, runner, console)
}

/// A shell with a small model trained briefly on the tiny fixture.
private func shellWithTrainedModel() throws -> (Session, Runner, BufferConsole) {
    try makeShell(running: ["set hidden 20", "set embed 8", "set seq 16", "set batch 8", "set eval 10",
                            "load \(fixture("tiny.txt"))", "train 30 steps"])
}

@Test func vocabEncodeAndDecodeShowTextAsNumbers() throws {
    let folder = try temporaryFolder()
    let (_, runner, console) = try shellWithZeroModel(text: "abba cab\nab", folder: folder)
    // Vocabulary in code-point order: '\n' 0, ' ' 1, a 2, b 3, c 4; counts from the text.
    #expect(try output(runner, console, "vocab") == """
        5 characters (index, character, count in the text)
           0  '\\n'            1      1  ' '             1      2  'a'             4
           3  'b'             4      4  'c'             1

        """)
    #expect(try output(runner, console, "encode \"Cab é!\"") == """
        4 tokens: 4 2 3 1
        \(wrap("normalisation (lowercase on, ascii on): 1 character folded to ASCII, 1 character lowercased", width: 79, indent: 2))
        left out (not in the vocabulary): 'e' '!' (2 in all)
        the model sees: 'c' 'a' 'b' ' '

        """)
    #expect(try output(runner, console, "decode 3 2 0 1") == "'b' 'a' '\\n' ' '\nba\n \n")
    #expect(throws: ShellError.self) { try runner.execute("decode 5") }
    #expect(throws: ShellError.self) { try runner.execute("decode x") }
}

@Test func windowsShowInputsAboveTheCharactersToPredict() throws {
    let text = String(repeating: "abcdefghij", count: 20)
    let folder = try temporaryFolder()
    let (_, runner, console) = try shellWithZeroModel(text: text, folder: folder)
    let printed = try output(runner, console, "windows 3")
    let lines = printed.split(separator: "\n").map(String.init)
    #expect(printed.hasPrefix(wrap("3 training windows of seq = 4 characters (first 4 shown); the model reads the input row and must predict, at each position, the character below it:", width: 79) + "\n"))
    #expect(lines.allSatisfy { $0.count < 80 })
    let inputs = lines.filter { $0.hasPrefix("  input ") }.map { $0.dropFirst(8).replacingOccurrences(of: " ", with: "") }
    let targets = lines.filter { $0.hasPrefix("  target") }.map { $0.dropFirst(8).replacingOccurrences(of: " ", with: "") }
    #expect(inputs.count == 3 && targets.count == 3)
    let letters = Array("abcdefghij")
    for (input, target) in zip(inputs, targets) {
        // Each window is a stretch of the text, and each target is the character after its input.
        #expect(input.count == 4 && target.count == 4)
        #expect(text.contains(input) && text.contains(target))
        for (i, t) in zip(input, target) {
            #expect(letters[(letters.firstIndex(of: i)! + 1) % 10] == t)
        }
    }
    // Looking does not change what training draws: the same command prints the same windows.
    #expect(try output(runner, console, "windows 3") == printed)
}

@Test func nextShowsTheUniformDistributionOfAZeroModel() throws {
    let folder = try temporaryFolder()
    let (_, runner, console) = try shellWithZeroModel(text: "abba cab\nab", folder: folder)
    try runner.execute("temp 0.5")
    try runner.execute("topk 2")
    // Five equally likely characters: 20% each at temp 1 (4 bars of 20 eighths' worth); top-k 2 keeps the two
    // lowest indices (ties go to the lower index), 50% each.
    let bar20 = String(repeating: "█", count: 4) + String(repeating: " ", count: 16)
    let bar50 = String(repeating: "█", count: 10) + String(repeating: " ", count: 10)
    let empty = String(repeating: " ", count: 20)
    let printed = try output(runner, console, "next \"ab\" 3")
    #expect(printed == """
        after "ab": the 3 most likely next characters
        char     temp 1\(String(repeating: " ", count: 24))temp 0.5, top-k 2
        '\\n'     \(bar20)  20.00%  \(bar50)  50.00%
        ' '      \(bar20)  20.00%  \(bar50)  50.00%
        'a'      \(bar20)  20.00%  \(empty)   0.00%
        others                         40.00%  \(empty)   0.00%

        """, "\(printed)")
}

@Test func nextMatchesTheSamplersDistribution() throws {
    let (session, runner, console) = try shellWithTrainedModel()
    try runner.execute("temp 0.7")
    let model = try #require(session.model).recurrent
    let vocabulary = try #require(session.vocabulary)
    let printed = try output(runner, console, "next \"First\" \(vocabulary.count)")
    // The reference: the engine's generator and sampler, as `gen` uses them.
    let textGenerator = TextGenerator(model: model)
    var logits = try textGenerator.logits(after: vocabulary.encode("First").tokens)
    var plainTotal = 0.0, currentTotal = 0.0
    for (settings, column) in [(SamplingSettings(temperature: 1), 0), (SamplingSettings(temperature: 0.7), 1)] {
        logits.withUnsafeMutableBufferPointer { textGenerator.sampler.prepare(logits: UnsafePointer($0.baseAddress!), settings: settings) }
        for line in printed.split(separator: "\n").dropFirst(2).dropLast() {
            let percents = line.split(separator: " ").filter { $0.hasSuffix("%") }.map { Double($0.dropLast())! }
            let character = String(line.prefix(9)).trimmingCharacters(in: .whitespaces)
            let index = (0..<vocabulary.count).first { visible(vocabulary.scalars[$0]) == character }!
            #expect(abs(percents[column] - 100 * textGenerator.sampler.probabilities[index]) < 0.006, "\(character)")
            if column == 0 { plainTotal += percents[0] } else { currentTotal += percents[1] }
        }
    }
    // All V characters listed: each column sums to 100% (up to the rounding of V two-decimal figures).
    #expect(abs(plainTotal - 100) < 0.005 * Double(vocabulary.count))
    #expect(abs(currentTotal - 100) < 0.005 * Double(vocabulary.count))
}

@Test func traceShowsEachDrawWithItsProbabilityRankAndCutOff() throws {
    let folder = try temporaryFolder()
    let (session, runner, console) = try shellWithZeroModel(text: "abba cab\nab", folder: folder)
    try runner.execute("topk 2")
    try runner.execute("seed 9")
    let printed = try output(runner, console, "trace \"a\" 6")
    let lines = printed.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    #expect(lines[0] == "sampling after \"a\" with temp 1, top-k 2:")
    #expect(lines[1] == "step  char   prob   rank  kept  alternatives (| marks the cut-off)")
    // Top-k 2 of a uniform distribution: '\n' or ' ', each 0.5; the alternatives list both, then the cut-off.
    var drawn = ""
    for (step, line) in lines[2..<8].enumerated() {
        let character = line.contains("'\\n'  ") && line.dropFirst(6).hasPrefix("'\\n'") ? "\n" : " "
        drawn += character
        let rank = character == "\n" ? 1 : 2
        let shown = character == "\n" ? "'\\n'  " : "' '   "
        // Past the cut, the model's next choices in its order (all equal here: by index), without a probability.
        #expect(line == String(step + 1).leftPadded(to: 4) + "  " + shown + "0.500      \(rank)     2  '\\n' 0.50  ' ' 0.50  | 'a'  'b'  'c'")
    }
    #expect(lines[8] == "text: " + drawn.replacingOccurrences(of: "\n", with: "\\n"))
    // The same draws as `gen` makes with the same seed.
    var generator = SeededGenerator(seed: 9)
    let expected = try TextGenerator(model: session.model!).generate(
        prompt: [2], count: 6, settings: SamplingSettings(temperature: 1, topK: 2), primer: 0, generator: &generator)
    #expect(expected.map { $0 == 0 ? "\n" : " " }.joined() == drawn)
}

@Test func cellsShowTheEnginesCellStates() throws {
    let (session, runner, console) = try shellWithTrainedModel()
    let model = try #require(session.model).recurrent
    let text = "First Citizen:\nWe are"
    let tokens = session.vocabulary!.encode(text).tokens
    // The engine's cell states for the same input, from a zero state.
    let workspace = model.makeWorkspace(length: tokens.count, batch: 1)
    for (t, token) in tokens.enumerated() { workspace.inputs[t] = Int32(token) }
    var unused = SeededGenerator(seed: 0)
    model.forward(length: tokens.count, batch: 1, workspace: workspace, mode: .inference, generator: &unused)
    let printed = try output(runner, console, "cells \"\(text.replacingOccurrences(of: "\n", with: "\\n"))\" 1 7")
    let lines = printed.split(separator: "\n").map(String.init)
    #expect(lines[0] == "layer 1 cell 7: tanh(c) after each character, from -1 to +1")
    #expect(lines.count == tokens.count + 1)
    for (t, line) in lines.dropFirst().enumerated() {
        let expected = tanh(workspace.cellState(layer: 1, slot: t + 1, batch: 1)[7])
        #expect(line.hasPrefix(String(t).leftPadded(to: 5) + "  " + visible(session.vocabulary!.scalars[tokens[t]])))
        #expect(abs(Float(line.split(separator: " ").last!)! - expected) <= 0.0005)
    }
    let (_, values) = try session.inspector().cellActivations(text: text, layer: 0)
    for t in 0..<tokens.count {
        for cell in 0..<20 { #expect(values[t][cell] == tanh(workspace.cellState(layer: 0, slot: t + 1, batch: 1)[cell])) }
    }
    // `cells top` ranks by range, largest first; `cells` without CELL shows the first of them.
    let top = try output(runner, console, "cells top \"\(text.replacingOccurrences(of: "\n", with: "\\n"))\" 0")
    // The rows follow the (wrapped) header and the column titles.
    let rows = top.split(separator: "\n").drop { !$0.hasPrefix("cell   range") }.dropFirst()
    let ranges = rows.map { Double($0.split(separator: " ")[1])! }
    #expect(ranges.count == 10 && ranges == ranges.sorted(by: >))
    let best = Int(rows.first!.split(separator: " ")[0])!
    let series = values.map { $0[best] }
    #expect(abs(Double(series.max()! - series.min()!) - ranges[0]) < 0.0005)
    #expect(try output(runner, console, "cells \"\(text.replacingOccurrences(of: "\n", with: "\\n"))\" 0").hasPrefix("layer 0 cell \(best):"))
    #expect(throws: ShellError.self) { try runner.execute("cells \"abc\" 2") }
    #expect(throws: ShellError.self) { try runner.execute("cells \"abc\" 0 20") }
}

/// Elements by name, with their attributes, from a well-formed XML document (parse failure fails the test).
final class XMLCollector: NSObject, XMLParserDelegate {
    var elements: [(name: String, attributes: [String: String])] = []
    var text = ""
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        elements.append((name, attributes))
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    static func parse(_ path: String) throws -> XMLCollector {
        let collector = XMLCollector()
        let parser = XMLParser(data: try Data(contentsOf: URL(fileURLWithPath: path)))
        parser.delegate = collector
        let parsed = parser.parse()
        #expect(parsed, "not well-formed: \(String(describing: parser.parserError))")
        return collector
    }
}

@Test func cellsPageIsWellFormedAndHoldsEveryCell() throws {
    let (session, runner, console) = try shellWithTrainedModel()
    let folder = try temporaryFolder()
    let path = folder.appendingPathComponent("cells.html").path
    let text = "All:\nWe'll speak"
    #expect(unwrapped(try output(runner, console, "cells \"\(text.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\"", with: "\\\""))\" 0 --html \(path)"))
            == "wrote \(path): layer 0, 20 cells\n")
    let page = try XMLCollector.parse(path)
    let (tokens, values) = try session.inspector().cellActivations(text: text, layer: 0)
    let rows = page.elements.filter { $0.name == "div" && $0.attributes["class"] == "row" }
    #expect(rows.map { $0.attributes["id"]! } == (0..<20).map { "cell-\($0)" })
    let spans = page.elements.filter { $0.name == "span" && $0.attributes["title"] != nil }
    #expect(spans.count == 20 * tokens.count)
    for cell in 0..<20 {
        for t in 0..<tokens.count {
            #expect(spans[cell * tokens.count + t].attributes["title"] == String(format: "%+.3f", values[t][cell]))
        }
    }
    // Spaces are written as no-break spaces (so they keep their width) and newlines as ↵.
    #expect(page.text.replacingOccurrences(of: "\u{A0}", with: " ").contains("cell 0all:↵we'll speak"))
}

@Test func plotDrawsTheCurvesInTheTerminalAndAsSVG() throws {
    let (session, runner, console) = try shellWithTrainedModel()
    #expect(session.lossHistory.count == 30 && session.validationHistory.map(\.step) == [10, 20, 30])
    let chart = try output(runner, console, "plot")
    let lines = chart.split(separator: "\n").map(String.init)
    #expect(lines.count == 17 && lines.allSatisfy { $0.count <= 80 })  // the chart, then the validation losses
    #expect(lines[0] == "loss (⠉ training, averaged per column; ◆ validation)")
    #expect(lines[1].hasPrefix(String(format: "%7.3f ┤", max(session.lossHistory.max()!, session.validationHistory.map(\.loss).max()!))))
    #expect(chart.filter { $0 == "◆" }.count == 3 + 1)  // three validations and the legend
    #expect(chart.unicodeScalars.contains { (0x2801...0x28FF).contains($0.value) })
    #expect(lines[14].hasPrefix("        step 1") && lines[14].hasSuffix("step 30"))
    let folder = try temporaryFolder()
    let path = folder.appendingPathComponent("loss.svg").path
    #expect(try output(runner, console, "plot \(path)") == "wrote \(path)\n")
    let svg = try XMLCollector.parse(path)
    #expect(svg.elements.first?.name == "svg")
    let training = try #require(svg.elements.first { $0.attributes["id"] == "training" })
    #expect(training.attributes["points"]!.split(separator: " ").count == 30)
    #expect(svg.elements.filter { $0.name == "circle" }.count == 3 + 1)  // three validations and the legend's mark
    #expect(throws: ShellError.self) { try runner.execute("plot loss.png") }
}

@Test func noveltyIsCompleteForAMemorisedTextAndNearZeroForRandomText() throws {
    let (session, runner, console) = makeShell()
    let folder = try temporaryFolder()
    let textPath = folder.appendingPathComponent("rhyme.txt").path
    try Data(String(repeating: "the cat sat on the mat. the dog dug in the fog.\n", count: 40).utf8).write(to: URL(fileURLWithPath: textPath))
    for line in ["set hidden 48", "set embed 8", "set seq 48", "set batch 16", "set eval 0", "set lr 0.01", "load \(textPath)",
                 "train 150 steps", "temp 0"] {
        try runner.execute(line)
    }
    let report = try output(runner, console, "novelty 300")
    #expect(report.contains("words found in the training text: "))
    let memorised = try session.inspector().novelty(of: session.vocabulary!.encode(String(repeating: "the dog dug in the fog.\nthe cat sat on the mat. ", count: 6)).tokens)
    #expect(memorised.knownWords == memorised.words && memorised.knownGrams == memorised.grams)
    // What the trained model generates greedily is the memorised text: everything found.
    let wordsLine = report.split(separator: "\n").first { $0.hasPrefix("words found") }!
    let gramsLine = report.split(separator: "\n").first { $0.hasPrefix("character 8-grams") }!
    #expect(wordsLine.hasSuffix("(100.0%)") && gramsLine.hasSuffix("(100.0%)"), "\(report)")
    // Random text over the same characters shares almost no 8-grams and few words with it.
    var generator = SeededGenerator(seed: 3)
    let random = (0..<2000).map { _ in generator.nextIndex(below: session.vocabulary!.count) }
    let result = try session.inspector().novelty(of: random)
    #expect(Double(result.knownGrams) / Double(result.grams) < 0.01)
    #expect(result.longestCopy.length < 8)
    // The longest copy is a real substring of the training text.
    let trainingText = try String(contentsOfFile: textPath, encoding: .utf8)
    let scalars = Array(result.text.unicodeScalars)
    let copy = String(String.UnicodeScalarView(scalars[result.longestCopy.start..<(result.longestCopy.start + result.longestCopy.length)]))
    #expect(trainingText.contains(copy))
}

@Test func echoPrintsItsWords() throws {
    let (_, runner, console) = makeShell()
    #expect(try output(runner, console, "echo Tokens are  just \"numbers:  0 1 2\"") == "Tokens are just numbers:  0 1 2\n")
}

@Test func theTourAndTheDemoUseOnlyKnownCommands() throws {
    let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts")
    for name in ["tour.clm", "demo.clm"] {
        let text = try String(contentsOf: scripts.appendingPathComponent(name), encoding: .utf8)
        var commands = 0
        for line in text.split(separator: "\n") {
            let words = try lex(String(line))
            guard let first = words.first else { continue }
            #expect(Commands.command(named: first.text) != nil, "\(name): unknown command in '\(line)'")
            commands += 1
        }
        #expect(commands > 5)
    }
}

@Test func sparklineSpansLowestToHighestBlock() {
    // Eight equal bins over [lowest, highest]: 0.5 of the way is the fifth block, 0.25 the third.
    #expect(sparkline([3.0, 2.0, 1.0, 1.5]) == "█▅▁▃")
    #expect(sparkline([2.0, 2.0]) == "▁▁")
    #expect(sparkline([Double]()) == "")
}

@Test func cellsOverALongTextAreFedInChunksWithTheSameStates() throws {
    // 700 characters: three chunks of up to 256, the state carried from one to the next, against one pass.
    let (session, _, _) = try shellWithTrainedModel()
    let text = String(repeating: "the quick brown fox jumps over the lazy dog.\n", count: 16)
    let inspector = try session.inspector()
    let (tokens, values) = try inspector.cellActivations(text: text, layer: 1)
    #expect(tokens.count > 512)
    let model = try #require(session.model).recurrent
    let workspace = model.makeWorkspace(length: tokens.count, batch: 1)
    for t in 0..<tokens.count { workspace.inputs[t] = Int32(tokens[t]) }
    var unused = SeededGenerator(seed: 0)
    model.forward(length: tokens.count, batch: 1, workspace: workspace, mode: .inference, generator: &unused)
    var worst: Float = 0
    for t in 0..<tokens.count {
        let whole = workspace.cellState(layer: 1, slot: t + 1, batch: 1)
        for cell in 0..<whole.count { worst = max(worst, abs(values[t][cell] - tanh(whole[cell]))) }
    }
    #expect(worst < 1e-5, "largest difference \(worst)")
}
