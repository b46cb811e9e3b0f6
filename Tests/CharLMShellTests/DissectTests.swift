// The dissecting commands on hand-built models whose answers are known without running them: gate saturation
// (`gates`) on gates wired to the input character, a unit wired to count the position in the line (`cells find`),
// and the comparing commands (`ngram`, `compare`) and `set cell` through the shell.

import CharLM
@testable import CharLMShell
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// A shell holding `text` (raw: no lowercasing or folding) and a model with exactly `parameters`, set by name.
private func shellWithModel(text: String, config: RecurrentConfig, folder: URL,
                            set: (inout [Float], RecurrentLayout) -> Void) throws -> (Session, Runner, BufferConsole, Vocabulary) {
    let corpus = try Corpus.make(text: text, normalization: .raw)
    var config = config
    config.vocabularySize = corpus.vocabulary.count
    let layout = RecurrentLayout(config: config)
    var parameters = [Float](repeating: 0, count: layout.totalCount)
    set(&parameters, layout)
    let checkpoint = Checkpoint(config: config, vocabulary: corpus.vocabulary, parameters: parameters, optimizer: nil,
                                training: nil, sampling: nil, corpus: nil, settings: [:])
    let textPath = folder.appendingPathComponent("text.txt").path
    let modelPath = folder.appendingPathComponent("model.safetensors").path
    try Data(text.utf8).write(to: URL(fileURLWithPath: textPath))
    try Checkpoint.write(checkpoint.serialized(), to: modelPath)
    let (session, runner, console) = makeShell()
    try runner.execute("set lowercase off")
    try runner.execute("set ascii off")
    try runner.execute("load \(textPath)")
    try runner.execute("load \(modelPath)")
    return (session, runner, console, corpus.vocabulary)
}

/// Element (row, column) of a 2-D view (or element `row` of a 1-D one) in a flat buffer.
private func put(_ value: Float, _ parameters: inout [Float], _ view: ParameterView, _ row: Int, _ column: Int = 0) {
    parameters[view.offset + row * (view.shape.count == 2 ? view.shape[1] : 1) + column] = value
}

// MARK: gates

/// An LSTM and a GRU with E 1, H 2, one layer, no recurrent weights: each gate's pre-activation is w x + b, with the
/// embedding x = 1 for 'a' and 0 for 'b' and 'c'. On "abc" repeated, a gate at sigmoid(10x - 5) is open (0.993)
/// after a third of the characters and closed (0.007) after the rest; sigmoid(+-5) is always open or closed;
/// sigmoid(0) = 0.5 neither.
@Test(arguments: [LayerKind.lstm, .gru])
func gateFractionsAreThoseOfAHandBuiltModel(cell: LayerKind) throws {
    let folder = try temporaryFolder()
    let text = String(repeating: "abc", count: 40)
    let config = RecurrentConfig(vocabularySize: 3, embeddingSize: 1, hiddenSize: 2, layerCount: 1, layerKind: cell)
    let (session, runner, console, vocabulary) = try shellWithModel(text: text, config: config, folder: folder) { p, layout in
        put(1, &p, layout.embedding, rawVocabulary(of: text).index(of: "a")!)
        let layer = layout.layers[0]
        func gate(_ block: Int, unit: Int, weight: Float, bias: Float) {
            put(weight, &p, layer.weightIH, block * 2 + unit, 0)
            put(bias, &p, layer.biasIH, block * 2 + unit)
        }
        switch cell {
        case .lstm:  // blocks i 0, f 1, g 2, o 3
            gate(0, unit: 0, weight: 10, bias: -5); gate(0, unit: 1, weight: 0, bias: 5)
            gate(1, unit: 0, weight: 0, bias: -5); gate(1, unit: 1, weight: 0, bias: 0)
            gate(3, unit: 0, weight: 10, bias: 0); gate(3, unit: 1, weight: -10, bias: -5)
        default:  // blocks r 0, z 1, n 2
            gate(0, unit: 0, weight: 10, bias: -5); gate(0, unit: 1, weight: 0, bias: -5)
            gate(1, unit: 0, weight: 0, bias: 5); gate(1, unit: 1, weight: 0, bias: 0)
        }
    }
    #expect(vocabulary.count == 3)
    let saturation = try session.inspector().gateSaturation(text: text, layer: 0)
    let third = 1.0 / 3, twoThirds = 2.0 / 3
    let expected: [(String, [Double], [Double])] = cell == .lstm
        ? [("i", [twoThirds, 0], [third, 1]), ("f", [1, 0], [0, 0]), ("o", [0, 1], [third, 0])]
        : [("r", [twoThirds, 1], [third, 0]), ("z", [0, 0], [1, 0])]
    #expect(saturation.map(\.gate) == expected.map(\.0))
    for (gate, (_, left, right)) in zip(saturation, expected) {
        for unit in 0..<2 {
            #expect(abs(gate.left[unit] - left[unit]) < 1e-12, "\(gate.gate) unit \(unit) left")
            #expect(abs(gate.right[unit] - right[unit]) < 1e-12, "\(gate.gate) unit \(unit) right")
        }
    }
    // The report draws one panel per gate and fits 80 columns; the summary counts the units.
    let report = try output(runner, console, "gates \"\(text)\"")
    #expect(report.split(separator: "\n").allSatisfy { $0.count <= 79 })
    if cell == .lstm {
        #expect(report.contains("i input gate") && report.contains("f forget gate") && report.contains("o output gate"))
        #expect(report.contains("f: mostly closed 1 of 2 units, mostly open 0"))
        #expect(report.contains("i: mostly closed 1 of 2 units, mostly open 1"))
    } else {
        #expect(report.contains("r reset gate") && report.contains("z update gate"))
        #expect(report.contains("z: mostly closed 0 of 2 units, mostly open 1"))
    }
    // The SVG: a dot per unit per gate, where the fractions put it.
    let svgPath = folder.appendingPathComponent("gates.svg").path
    _ = try output(runner, console, "gates \"\(text)\" 0 --svg \(svgPath)")
    let document = try XMLDocument(contentsOf: URL(fileURLWithPath: svgPath))
    let circles = try document.nodes(forXPath: "//*[local-name()='circle']")
    #expect(circles.count == 2 * expected.count)
}

/// The vocabulary `Corpus.make` gives `text` without normalisation.
private func rawVocabulary(of text: String) -> Vocabulary {
    (try? Corpus.make(text: text, normalization: .raw).vocabulary)!
}

@Test func theVanillaRNNHasNoGatesToCount() throws {
    let (_, runner, _) = try makeShell(running: ["set hidden 8", "set embed 4", "set cell rnn", "load \(fixture("tiny.txt"))", "reset"])
    let message = (thrownError(runner, "gates \"to be\"") as? CustomStringConvertible)?.description ?? ""
    #expect(message.contains("the vanilla RNN has no gates") && message.contains("set cell lstm"))
}

// MARK: cells find

/// An LSTM (E 1, H 2) wired so that unit 0's cell counts the characters since the last newline: the embedding is 1
/// for a newline and 0 otherwise; the forget gate sigmoid(10 - 20x) keeps the cell except at a newline; the input
/// gate is open and g = tanh(0.005), so c grows by 0.005 a character. Unit 1 copies the newline: its forget gate is
/// shut and g = tanh(5x). `cells find` must name unit 0 for the line position and unit 1 for the newline.
@Test func cellsFindNamesTheUnitWiredToCountTheLinePosition() throws {
    let folder = try temporaryFolder()
    var text = ""
    var generator = SeededGenerator(seed: 5)
    for _ in 0..<60 { text += String(repeating: "a", count: 1 + generator.nextIndex(below: 35)) + "\n" }
    let config = RecurrentConfig(vocabularySize: 2, embeddingSize: 1, hiddenSize: 2, layerCount: 1)
    let (session, runner, console, _) = try shellWithModel(text: text, config: config, folder: folder) { p, layout in
        put(1, &p, layout.embedding, rawVocabulary(of: text).index(of: "\n")!)
        let layer = layout.layers[0]
        // rows: i 0-1, f 2-3, g 4-5, o 6-7
        put(10, &p, layer.biasIH, 0); put(10, &p, layer.biasIH, 1)                 // i open
        put(10, &p, layer.biasIH, 2); put(-20, &p, layer.weightIH, 2, 0)           // unit 0: f shut at a newline only
        put(-10, &p, layer.biasIH, 3)                                              // unit 1: f always shut
        put(0.005, &p, layer.biasIH, 4)                                            // unit 0: g = tanh(0.005)
        put(5, &p, layer.weightIH, 5, 0)                                           // unit 1: g = tanh(5x)
        put(10, &p, layer.biasIH, 6); put(10, &p, layer.biasIH, 7)                 // o open
    }
    let found = try session.inspector().findUnits(text: text, layer: 0)
    let byFeature = Dictionary(uniqueKeysWithValues: found.map { ($0.feature, $0.found) })
    let line = try #require(byFeature[.linePosition] ?? nil)
    #expect(line.unit == 0 && line.correlation > 0.999, "line position: unit \(line.unit), r \(line.correlation)")
    let newline = try #require(byFeature[.newline] ?? nil)
    #expect(newline.unit == 1 && newline.correlation > 0.999, "newline: unit \(newline.unit), r \(newline.correlation)")
    #expect((byFeature[.inQuotes] ?? nil) == nil && (byFeature[.capital] ?? nil) == nil, "features absent from the text find nothing")
    // The report, and `cells TEXT LAYER FEATURE` then shows the unit found.
    let report = try output(runner, console, "cells find \"\(text.replacingOccurrences(of: "\n", with: "\\n"))\" 0")
    #expect(report.contains("line-position") && report.contains("does not vary in this text"))
    #expect(report.split(separator: "\n").allSatisfy { $0.count <= 79 })
    let shown = try output(runner, console, "cells \"aaa\\naa\" 0 line-position")
    #expect(shown.hasPrefix("layer 0 cell 0: tanh(c) after each character"))
}

@Test func textFeaturesAreWhatTheirNamesSay() {
    let characters = Array("He said \"hi (there)\".\nOk")
    #expect(TextFeature.linePosition.values(characters) == (1...21).map(Double.init) + [0, 1, 2])
    #expect(TextFeature.inQuotes.values(characters).map { Int($0) } == [0, 0, 0, 0, 0, 0, 0, 0] + [Int](repeating: 1, count: 11) + [0, 0, 0, 0, 0])
    #expect(TextFeature.inBrackets.values(characters).map { Int($0) } == [Int](repeating: 0, count: 12) + [Int](repeating: 1, count: 6) + [0, 0, 0, 0, 0, 0])
    #expect(TextFeature.capital.values(characters).map { Int($0) } == [1] + [Int](repeating: 0, count: 21) + [1, 0])
    #expect(TextFeature.newline.values(characters).map { Int($0) } == [Int](repeating: 0, count: 21) + [1, 0, 0])
    #expect(correlation([1, 2, 3], [2, 4, 6])! > 0.999_999 && correlation([1, 2, 3], [5, 5, 5]) == nil)
}

// MARK: ngram and compare

@Test func ngramReportsTheEngineModelsLossesAndJoinsTheComparison() throws {
    let (session, runner, console) = try makeShell(running: ["set hidden 16", "set embed 8", "set seq 20", "set batch 8", "set eval 0",
                                                             "load \(fixture("tiny.txt"))", "set cell gru", "reset", "train 10 steps"])
    let report = try output(runner, console, "ngram 3")
    let dataset = try #require(session.dataset)
    let model = try NGramModel(dataset: dataset, vocabularySize: session.corpus!.vocabulary.count, order: 3, maximumBytes: 1e9)
    for order in 1...3 {
        let nats = try model.evaluate(dataset: dataset, length: 20, order: order).nats
        let row = try #require(report.split(separator: "\n").first { $0.hasPrefix("\(order)-gram") })
        #expect(row.contains(String(format: "%.4f", nats)), "\(row) against \(nats)")
    }
    #expect(report.contains("GRU, step 10"))
    #expect(report.split(separator: "\n").allSatisfy { $0.count <= 79 }, "\(report)")
    let generated = try output(runner, console, "ngram gen \"the \" 50")
    #expect(generated.hasPrefix("the ") && generated.count == 4 + 50 + 1)
    try runner.execute("compare add \"GRU ten steps\"")
    let table = try output(runner, console, "compare")
    let lines = table.split(separator: "\n").map(String.init)
    #expect(lines[1].hasPrefix("GRU ten steps") && lines[1].contains(grouped(session.model!.layout.totalCount)))
    #expect(lines[2].hasPrefix("3-gram (Kneser-Ney)") && lines[4].hasPrefix("1-gram (Kneser-Ney)"), "n-grams after the networks, best first")
    #expect(lines.allSatisfy { $0.count <= 79 })
    // Out of range, and without text.
    #expect((thrownError(runner, "ngram 11") as? CustomStringConvertible)?.description.contains("from 1 to 10") == true)
    let (_, bare, _) = makeShell()
    #expect(thrownError(bare, "ngram") != nil && thrownError(bare, "ngram gen") != nil)
}

@Test func theCellIsSavedShownAndRestored() throws {
    let folder = try temporaryFolder()
    let path = folder.appendingPathComponent("rnn.safetensors").path
    let (session, runner, console) = try makeShell(running: ["set hidden 12", "set embed 4", "set seq 16", "set batch 4", "set eval 0",
                                                             "load \(fixture("tiny.txt"))", "set cell rnn", "reset", "train 3 steps",
                                                             "save \(path)"])
    #expect(try output(runner, console, "model").hasPrefix("model: RNN, E 4, H 12, L 2"))
    #expect(try output(runner, console, "show").contains("arch       rnn"))
    let (other, otherRunner, _) = try makeShell(running: ["load \(fixture("tiny.txt"))", "load \(path)"])
    #expect(other.settings.arch == .rnn && other.model?.config.layerKind == .rnn)
    #expect(other.model?.parameters.array == session.model?.parameters.array)
    #expect(other.model?.layout.view(named: "rnn.weight_hh_l1") != nil)
    try otherRunner.execute("train 2 steps")
    #expect(other.step == 5)
}

// MARK: What the helpers' runs found

@Test func anInterruptedCountKeepsTheModelCountedBeforeAndNgramGenStreamsNormalisedText() throws {
    let (session, runner, console) = try makeShell(running: ["load \(fixture("tiny.txt"))", "ngram 3"])
    // Ctrl-C while counting a higher order: the 3-gram model stays.
    session.interruptRequested = { true }
    #expect(thrownError(runner, "ngram 6") != nil)
    session.interruptRequested = { false }
    #expect(session.baselines.ngram?.order == 3)
    // The prompt is normalised as `gen` normalises it (lowercase on here) and echoed as the model sees it.
    let text = try output(runner, console, "ngram gen \"THE \" 20")
    #expect(text.hasPrefix("the ") && text.count == 4 + 20 + 1)
}

@Test func compareLabelsCannotMoveTheCursorAndEmptyOnesGetTheDefault() throws {
    let (_, runner, console) = try makeShell(running: ["set hidden 8", "set embed 4", "set seq 16", "set batch 4", "set eval 0",
                                                       "load \(fixture("tiny.txt"))", "train 2 steps"])
    try runner.execute("compare add \"x\u{1B}[31mred\\nline\"")
    try runner.execute("compare add \"\"")
    try runner.execute("compare add \"日本語のラベルとても長い名前です😀\"")
    let table = try output(runner, console, "compare")
    #expect(!table.contains("\u{1B}") && table.contains("xU+1B[31mred\\nline"))
    #expect(table.contains("LSTM H 8, L 2"))
    // Wide characters count two columns: every row ends at the same column, within 79.
    let rows = table.split(separator: "\n").dropFirst().prefix(3)
    let widths = rows.map { $0.unicodeScalars.reduce(0) { $0 + columns($1) } }
    #expect(Set(widths).count == 1 && widths.allSatisfy { $0 <= 79 }, "\(widths)")
    #expect(try output(runner, console, "compare clear").contains("removed 3 rows"))
}

@Test func restoreBestSaysWhenThereIsNothingToRestore() throws {
    let (session, runner, console) = try makeShell(running: ["set hidden 8", "set embed 4", "set seq 16", "set batch 4", "set eval 0",
                                                             "load \(fixture("tiny.txt"))", "train 3 steps"])
    let before = session.model!.parameters.array
    console.clear()
    try runner.execute("restore best")
    #expect(console.stderr.contains("already the best, from step 3") || console.stdout.contains("already the best, from step 3"))
    #expect(session.model!.parameters.array == before)
}

@Test func aRunThatDivergesIsSaidOnce() throws {
    // A vanilla RNN at lr 1 without clipping runs away within a few dozen steps on tiny.txt, every number still
    // finite: the validation loss passes ln V, and a note says so once, with the ways back.
    let (_, runner, console) = try makeShell(running: ["set cell rnn", "set hidden 64", "set embed 8", "set seq 20", "set batch 8",
                                                       "load \(fixture("tiny.txt"))", "reset", "set lr 1", "set clip 0", "set eval 10"])
    console.clear()
    try runner.execute("train 60 steps")
    let notes = console.stderr.components(separatedBy: "training has diverged").count - 1
    #expect(notes == 1, "\(console.stderr)")
    #expect(console.stderr.replacingOccurrences(of: "\n  ", with: " ").contains("lower `lr` (now 1) or turn `clip` on"))
}
