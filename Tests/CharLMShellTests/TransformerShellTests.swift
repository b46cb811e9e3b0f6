// The transformer in the shell: `set arch` and the transformer's settings (and their refusals), a transformer
// trained, saved, loaded and generating through the commands, `cells` and `gates` pointing it to `attn`, and `attn`
// on a hand-built model whose heads are wired to look at the previous character and at the first one.

import CharLM
@testable import CharLMShell
import Foundation
import Testing

/// Runs `line`, returning the error message on one line (nil on success).
private func refusal(_ runner: Runner, _ line: String) -> String? {
    thrownError(runner, line).map { unwrapped("\($0)") }
}

/// A shell set up for a small transformer on the tiny text (not yet loaded).
private let smallTransformer = ["set arch transformer", "set embed 16", "set heads 2", "set layers 2", "set seq 24", "set context 32",
                                "set batch 4", "set eval 0"]

// MARK: Settings

@Test func archChoosesTheFamilyAndCellStaysTheRecurrentThreesName() throws {
    let (session, runner, console) = makeShell()
    #expect(session.settings.arch == .lstm, "the default stays the LSTM")
    for arch in ["gru", "rnn", "transformer", "lstm"] {
        #expect(refusal(runner, "set arch \(arch)") == nil)
        #expect(session.settings.arch.rawValue == arch)
    }
    #expect(refusal(runner, "set arch gpt") == "arch must be one of lstm, gru, rnn, transformer; got 'gpt'")
    #expect(refusal(runner, "set cell gru") == nil)
    #expect(session.settings.arch == .gru)
    #expect(try output(runner, console, "show cell") == "cell gru\n")
    #expect(refusal(runner, "set cell transformer")
            == "cell names a recurrent cell (lstm, gru or rnn), and a transformer has none: `set arch transformer`")
    #expect(session.settings.arch == .gru, "a refused value changes nothing")
    try runner.execute("set arch transformer")
    #expect(try output(runner, console, "show cell") == "cell none (arch transformer)\n")
    #expect(try output(runner, console, "show arch") == "arch transformer\n")
    // A model built from the settings is the family they name.
    try runner.execute("set embed 16; set heads 2; set seq 24; set context 32; load \(fixture("tiny.txt"))")
    #expect(session.model is TransformerModel)
    try runner.execute("set cell rnn; reset")
    #expect((session.model as? RecurrentModel)?.config.layerKind == .rnn)
}

@Test func theTransformersSettingsAreCheckedTogether() throws {
    let (session, runner, console) = makeShell()
    // For a recurrent network heads is not used: any value in range is taken, with a note.
    try runner.execute("set heads 3")
    #expect(unwrapped(console.stderr).contains("note: heads is the transformer's; this LSTM does not use it (`set arch transformer`)"))
    #expect(refusal(runner, "set arch transformer")
            == "heads 3 does not divide embed 64: each head takes an equal share of the embedding; set heads to a divisor of 64 (2 or 4) or embed to a multiple of 3")
    #expect(session.settings.arch == .lstm)
    try runner.execute("set heads 4; set arch transformer")
    #expect(refusal(runner, "set embed 30")
            == "heads 4 does not divide embed 30: each head takes an equal share of the embedding; set heads to a divisor of 30 (3 or 5) or embed to a multiple of 4")
    #expect(refusal(runner, "set heads 5")?.hasPrefix("heads 5 does not divide embed 64") == true)
    #expect(refusal(runner, "set heads 0") == "heads must be a whole number from 1 to 256; got '0'")
    // seq at most the context, refused naming both whichever is set.
    #expect(refusal(runner, "set seq 300")
            == "seq 300 is longer than context 256: the transformer attends over at most context characters; lower seq to 256 or less, or raise context")
    #expect(refusal(runner, "set context 64")
            == "seq 100 is longer than context 64: the transformer attends over at most context characters; lower seq to 64 or less first, or keep context at 100 or more")
    #expect(refusal(runner, "set context 0") == "context must be a whole number from 1 to 10000; got '0'")
    try runner.execute("set seq 64; set context 64; set bias on; set dropout 0.1")
    #expect(refusal(runner, "set bias maybe") == "bias must be on or off; got 'maybe'")
    let settings = session.settings
    #expect(settings.heads == 4 && settings.context == 64 && settings.seq == 64 && settings.bias && settings.dropout == 0.1)
    #expect(settings.architecture(vocabularySize: 10) as? TransformerConfig
            == TransformerConfig(vocabularySize: 10, embeddingSize: 64, layerCount: 2, headCount: 4, context: 64, bias: true, dropout: 0.1))
    // hidden is the recurrent networks' own: said so.
    console.clear()
    try runner.execute("set hidden 32")
    #expect(unwrapped(console.stderr).contains("note: hidden is the recurrent networks' width"))
    // show, help and completion know every new setting.
    let shown = try output(runner, console, "show")
    for line in ["arch       transformer", "heads      4 ", "context    64 ", "bias       on ", "dropout    0.1 "] {
        #expect(shown.contains(line), "show lacks \(line)")
    }
    for name in ["arch", "heads", "context", "bias", "cell"] {
        #expect(try output(runner, console, "help \(name)").hasPrefix("\(name): "))
    }
    #expect(completions(line: "set ar", cursor: 6) == ["arch"])
    #expect(completions(line: "set arch t", cursor: 10) == ["transformer"])
    #expect(completions(line: "set he", cursor: 6) == ["heads"])
    #expect(completions(line: "set bias o", cursor: 10) == ["on", "off"])
    #expect(completions(line: "at", cursor: 2) == ["attn"])
}

@Test func seqMustFitTheContextOfTheTransformerInUse() throws {
    let (session, runner, _) = try makeShell(running: smallTransformer + ["load \(fixture("tiny.txt"))"])
    // The settings are for the next `reset`; the model in use trains with seq, so its context bounds seq too.
    try runner.execute("set arch lstm")
    #expect(refusal(runner, "set seq 40")
            == "seq 40 is longer than the model's context 32: it attends over at most 32 characters; lower seq to 32 or less (or `reset` first, to the LSTM that arch names)")
    try runner.execute("reset; set seq 40")
    #expect(session.settings.seq == 40 && session.model is RecurrentModel)
}

@Test func aTransformerTooLargeForMemoryIsRefusedBeforeTraining() throws {
    // Attention's (B, heads, T, T) weights per layer dominate: E 8 and one head per 8 wide, but 16 layers of 4,000
    // x 4,000 attention for 4,096 windows.
    let (session, runner, _) = try makeShell(running: ["set arch transformer", "set embed 8", "set heads 8", "set layers 16",
                                                       "set context 4000", "set seq 4000", "set batch 4096",
                                                       "load \(fixture("tiny.txt"))"])
    let config = try #require(session.model?.architecture as? TransformerConfig)
    let attention = 4 * 16 * 4096 * 8 * 4000.0 * 4000
    #expect(config.passBytes(length: 4000, batch: 4096) > attention, "the memory model counts attention per layer")
    let message = refusal(runner, "train 1 steps") ?? ""
    #expect(message.hasPrefix("not enough memory") || message.contains("training with seq 4000 and batch 4096"), "\(message)")
    #expect(session.step == 0)
}

// MARK: The commands

@Test func aTransformerTrainsSavesLoadsAndGeneratesThroughTheShell() throws {
    let folder = try temporaryFolder()
    let path = folder.appendingPathComponent("gpt.safetensors").path
    let (session, runner, console) = try makeShell(running: smallTransformer + ["set bias on", "set dropout 0.1",
                                                                                "load \(fixture("tiny.txt"))", "train 4 steps"])
    #expect(session.step == 4)
    let model = try output(runner, console, "model")
    #expect(model.hasPrefix("model: Transformer, E 16, L 2, heads 2, context 32, bias, dropout 0.1, V "))
    #expect(try output(runner, console, "eval").hasPrefix("validation loss "))
    #expect(try output(runner, console, "next \"First\" 3").contains("the 3 most likely next characters"))
    #expect(try output(runner, console, "trace \"First\" 3").contains("text: "))
    #expect(try output(runner, console, "novelty 50").contains("words found in the training text"))
    try runner.execute("compare add; ngram 2")
    #expect(try output(runner, console, "compare").contains("Transformer E 16"))
    // gen: one stream, and several samples generated together.
    try runner.execute("seed 9")
    let one = try output(runner, console, "gen \"First\" 40")
    #expect(!one.isEmpty)
    try runner.execute("samples 2; seed 9")
    let two = try output(runner, console, "gen \"First\" 30")
    #expect(two.components(separatedBy: "--- sample ").count == 3)
    try runner.execute("samples 1")
    try runner.execute("save \(path)")
    // Loaded into a session of other settings: the architecture and its settings come back, and so does the text.
    let (other, otherRunner, otherConsole) = try makeShell(running: ["set heads 8", "set context 128", "load \(fixture("tiny.txt"))",
                                                                     "load \(path)"])
    let restored = other.settings
    #expect(restored.arch == .transformer && restored.embed == 16 && restored.heads == 2 && restored.context == 32)
    #expect(restored.layers == 2 && restored.bias && restored.dropout == 0.1 && restored.seq == 24)
    #expect(other.model?.parameters.array == session.model?.parameters.array)
    try otherRunner.execute("seed 9")
    #expect(try output(otherRunner, otherConsole, "gen \"First\" 40") == one, "the loaded model writes what the saved one did")
    try otherRunner.execute("train 2 steps")
    #expect(other.step == 6, "training resumes from the file's step")
}

@Test func ctrlCStopsATransformersGenerationKeepingWhatItWrote() throws {
    let (session, runner, console) = try makeShell(running: smallTransformer + ["load \(fixture("tiny.txt"))", "train 2 steps"])
    // 100 characters after a 5-character prompt: past the context of 32, where each character recomputes a window.
    try runner.execute("seed 3")
    let whole = try output(runner, console, "gen \"First\" 100")
    #expect(whole.count == 5 + 100 + 1)
    final class Counter: @unchecked Sendable { var asked = 0 }
    let counter = Counter()
    session.interruptRequested = { counter.asked += 1; return counter.asked >= 40 }
    try runner.execute("seed 3")
    console.clear()
    _ = thrownError(runner, "gen \"First\" 100")
    let cut = console.stdout.trimmingCharacters(in: .newlines)
    #expect(cut.count > 5 && cut.count <= 5 + 40, "stopped by the 40th question: \(cut)")
    #expect(whole.hasPrefix(cut), "what was written is kept, and is what the uninterrupted run wrote")
}

@Test func cellsAndGatesPointATransformerToAttn() throws {
    let (_, runner, _) = try makeShell(running: smallTransformer + ["load \(fixture("tiny.txt"))"])
    for line in ["cells \"to be\"", "cells top \"to be\"", "gates \"to be\"", "gates \"to be\" 0"] {
        let message = refusal(runner, line) ?? ""
        #expect(message.contains("is for recurrent models") && message.contains("`attn \"TEXT\"`"), "\(line): \(message)")
    }
    let (_, lstm, _) = try makeShell(running: ["set hidden 8", "set embed 4", "load \(fixture("tiny.txt"))"])
    let message = refusal(lstm, "attn \"to be\"") ?? ""
    #expect(message.hasPrefix("`attn` shows a transformer's attention") && message.contains("`cells` and `gates`"))
}

// MARK: attn on a hand-built model

/// A transformer (E 8, one block, 4 heads of width 2, no biases) whose attention is wired by hand. The position
/// embedding puts position i on a half circle: wpe[i] = (cos iθ, sin iθ, -cos iθ, -sin iθ, 1, -1, 0, 0), θ = π / C,
/// whose LayerNorm is √2 times itself (mean 0, variance 1/2 at every position); token embeddings are zero, so only
/// positions matter. Through c_attn:
/// - head 0: key (cos jθ, sin jθ), query a (cos (i-1)θ, sin (i-1)θ), so q·k = a cos((i-1-j)θ), largest at j = i - 1:
///   the previous character, by a margin of 14 in the scores;
/// - head 1: the same keys, a constant query b (1, 0), so q·k = b cos jθ, largest at j = 0: the first character, by
///   a margin of 3 (about 95% of the weight: less concentrated than head 0);
/// - heads 2 and 3: zero queries: every character alike.
private func handBuiltAttention(text: String, context C: Int, folder: URL) throws -> (Session, Runner, BufferConsole) {
    let corpus = try Corpus.make(text: text, normalization: .raw)
    let config = TransformerConfig(vocabularySize: corpus.vocabulary.count, embeddingSize: 8, layerCount: 1, headCount: 4,
                                   context: C, bias: false, dropout: 0)
    let layout = TransformerLayout(config: config)
    var p = [Float](repeating: 0, count: layout.totalCount)
    func put(_ value: Double, _ view: ParameterView, _ row: Int, _ column: Int = 0) {
        p[view.offset + row * (view.shape.count == 2 ? view.shape[1] : 1) + column] = Float(value)
    }
    let theta = Double.pi / Double(C)
    for i in 0..<C {
        for (column, value) in [cos(Double(i) * theta), sin(Double(i) * theta), -cos(Double(i) * theta), -sin(Double(i) * theta), 1, -1].enumerated() {
            put(value, layout.positionEmbedding, i, column)
        }
    }
    for view in [layout.blocks[0].ln1Weight, layout.blocks[0].ln2Weight, layout.lnFinalWeight] {
        for e in 0..<8 { put(1, view, e) }
    }
    // c_attn (3E, E): rows 0..<8 the queries, 8..<16 the keys, 16..<24 the values (zero); n = √2 wpe.
    let attention = layout.blocks[0].attentionWeight
    let root2 = 2.0.squareRoot()
    let gap = 1 - cos(theta)
    let a = 14 * root2 / gap, b = 3 * root2 / gap  // scores are q·k / √2
    put(1 / root2, attention, 8, 0); put(1 / root2, attention, 9, 1)  // head 0's key (cos jθ, sin jθ)
    put(a * cos(theta) / root2, attention, 0, 0); put(a * sin(theta) / root2, attention, 0, 1)  // query rotated back by θ
    put(-a * sin(theta) / root2, attention, 1, 0); put(a * cos(theta) / root2, attention, 1, 1)
    put(1 / root2, attention, 10, 0); put(1 / root2, attention, 11, 1)  // head 1's key
    put(b / root2, attention, 2, 4)  // head 1's query: b from the constant column
    let checkpoint = Checkpoint(architecture: config, vocabulary: corpus.vocabulary, parameters: p, optimizer: nil,
                                training: nil, sampling: nil, corpus: nil, settings: [:])
    let modelPath = folder.appendingPathComponent("wired.safetensors").path
    try Checkpoint.write(checkpoint.serialized(), to: modelPath)
    return try makeShell(running: ["set lowercase off", "set ascii off", "load \(modelPath)"])
}

@Test func attnNamesTheHeadsWiredToThePreviousAndTheFirstCharacter() throws {
    let folder = try temporaryFolder()
    let text = "abcab cab\nbca"
    let (session, runner, console) = try handBuiltAttention(text: text, context: 16, folder: folder)
    let report = try output(runner, console, "attn \"abcab cab\\nbca\"")
    #expect(report.hasPrefix("layer 0 head 0, most distinctive (spread 0.00): the previous character (100%)\n"), "\(report)")
    // The heatmap: the text's characters across (newline and space spelled), one row per character, the weight on the
    // character before it full.
    let lines = Array(report.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        .drop { $0 != "     abcab␣cab↵bca" })
    #expect(lines.count > 17)
    for t in 0..<13 {
        let row = lines[1 + t]
        let label = String(t).leftPadded(to: 2) + " " + attentionLabel(Array(text.unicodeScalars)[t]) + " "
        let expected = t == 0 ? "█" : String(repeating: "·", count: t - 1) + "█·"
        #expect(row == label + expected, "row \(t): \(row)")
    }
    #expect(lines[14].hasPrefix("query down, key across; · <0.1 ░ 0.1+ ▒ 0.3+ ▓ 0.5+ █ 0.8+; ↵ newline ␣ space"))
    // A line per head: what each is wired to.
    let table = lines.drop { !$0.hasPrefix("layer head") }.dropFirst().prefix(4)
    #expect(table.count == 4)
    let rows = Array(table)
    #expect(rows[0].hasPrefix("    0    0   1.0  100%     ") && rows[0].hasSuffix(" *the previous character"), "\(rows[0])")
    #expect(rows[1].hasPrefix("    0    1") && rows[1].hasSuffix("  the first character"), "\(rows[1])")
    #expect(rows[2].hasSuffix("  everything alike") && rows[3].hasSuffix("  everything alike"))
    // The summaries' numbers, against the weights themselves.
    let (_, _, weights, summaries) = try session.inspector().attention(text: text)
    #expect(summaries[0].previous > 0.999 && summaries[0].spread < 0.01 && abs(summaries[0].distance - 1) < 0.01)
    #expect(summaries[1].first > 0.9 && summaries[1].first < 0.99 && summaries[1].spread > summaries[0].spread)
    #expect(summaries[2].spread > 0.999 && summaries[3].spread > 0.999)
    let spaces = [5, 9]  // ' ' and '\n'
    var share = 0.0, even = 0.0
    for t in 1..<13 {
        for s in spaces where s <= t {
            share += Double(weights.weight(layer: 0, head: 2, query: t, key: s)) / 12
            even += 1 / Double(t + 1) / 12
        }
    }
    #expect(abs((summaries[2].spaceOrNewline ?? -1) - share) < 1e-9)
    #expect(abs(share - even) < 1e-5, "a head of zero queries attends to everything alike")
    // HEAD named: the first-character head is drawn, its weight on character 0 at least 0.8 on every row.
    let first = try output(runner, console, "attn \"abcab cab\\nbca\" 0 1").split(separator: "\n").map(String.init)
    #expect(first[0].hasPrefix("layer 0 head 1 (spread 0.") && first[0].hasSuffix("): the first character (95%)"), "\(first[0])")
    for t in 0..<13 { #expect(first[2 + t].dropFirst(5).first == "█", "row \(t): \(first[2 + t])") }
}

@Test func attnRefusesWhatItCannotShowAndWritesEveryHeadAsAPage() throws {
    let folder = try temporaryFolder()
    let (_, runner, console) = try handBuiltAttention(text: "abc <ab>&\nca", context: 16, folder: folder)
    // The file holds no training settings: seq is back to its default, 100, which this model cannot train with.
    #expect(unwrapped(console.stderr).contains("note: seq 100 is longer than this model's context 16: `set seq 16` (or less) before training"))
    #expect(refusal(runner, "attn \"abcabcabcabcabcabc\"")
            == "the text has 18 characters, more than the model's context 16: it never attends over more than 16 at once; give at most 16 characters")
    #expect(refusal(runner, "attn \"abc\" 1") == "layer must be from 0 to 0; got 1")
    #expect(refusal(runner, "attn \"abc\" 0 4") == "head must be from 0 to 3; got 4")
    #expect(refusal(runner, "attn \"abc\" x") == "LAYER and HEAD are whole numbers >= 0; got 'x'; usage: attn \"TEXT\" [LAYER] [HEAD] [--html FILE]")
    #expect(refusal(runner, "attn \"a\"") == "give at least two characters: with one, every head can only look at it")
    #expect(refusal(runner, "attn") == "usage: attn \"TEXT\" [LAYER] [HEAD] [--html FILE]")
    // Control characters never reach the terminal as themselves: the label is their picture.
    #expect(attentionLabel("\u{1B}") == "␛" && attentionLabel("\t") == "␉" && attentionLabel("\u{7F}") == "␡"
            && attentionLabel("\u{200B}") == "?" && attentionLabel("界") == "?")
    // --html: every head on one page, a square per weight with its value on hover.
    let page = folder.appendingPathComponent("attn.html").path
    #expect(refusal(runner, "attn \"ab\" 0 --html \(page)") == "--html writes every layer and head: give no LAYER or HEAD; usage: attn \"TEXT\" [LAYER] [HEAD] [--html FILE]")
    let wrote = try output(runner, console, "attn \"ab <c>\" --html \(page)")
    #expect(unwrapped(wrote) == "wrote \(page): 1 layer x 4 heads\n")
    let document = try XMLCollector.parse(page)
    let titles = document.elements.filter { $0.name == "td" }.compactMap { $0.attributes["title"] }
    #expect(titles.count == 4 * (6 * 7 / 2), "every head's lower triangle")
    #expect(titles.contains("query 3 '<', key 2 ' ': 1.000"), "head 0 looks at the previous character")
    #expect(titles.contains { $0.hasPrefix("query 5 '>', key 0 'a': 0.9") }, "head 1 looks at the first")
    for heading in ["layer 0 head 0 (the most distinctive): looks at the previous character",
                    "layer 0 head 1: looks at the first character", "layer 0 head 2: looks at everything alike",
                    "layer 0 head 3: looks at everything alike"] {
        #expect(document.text.contains(heading))
    }
    // The page it wrote is replaced; a file of another kind (a text, a checkpoint) is refused and left as it was.
    #expect(refusal(runner, "attn \"ab\" --html \(page)") == nil)
    let notes = folder.appendingPathComponent("notes.txt").path
    try Data("keep me\n".utf8).write(to: URL(fileURLWithPath: notes))
    let checkpoint = folder.appendingPathComponent("model.safetensors").path
    try runner.execute("save \(checkpoint)")
    let saved = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
    for other in [notes, checkpoint] {
        #expect(refusal(runner, "attn \"ab\" --html \(other)") == "'\(other)' exists and is not an HTML page, so "
                + "`attn --html` will not replace it: name a new file, or remove that one first")
    }
    #expect(try String(contentsOfFile: notes, encoding: .utf8) == "keep me\n")
    #expect(try Data(contentsOf: URL(fileURLWithPath: checkpoint)) == saved)
}

// `save` and `save best` replace a checkpoint, never a file of another kind: the text just loaded, an HTML page.
@Test func saveReplacesCheckpointsAndRefusesEveryOtherFile() throws {
    let folder = try temporaryFolder()
    let corpus = folder.appendingPathComponent("corpus.txt").path
    try FileManager.default.copyItem(atPath: fixture("tiny.txt"), toPath: corpus)
    let text = try Data(contentsOf: URL(fileURLWithPath: corpus))
    let (_, runner, _) = makeShell()
    try runner.execute("set hidden 8; set embed 4; set layers 1; set seq 8; set batch 2; set eval 0; load \(corpus); train 2 steps")
    for command in ["save", "save best"] {
        #expect(refusal(runner, "\(command) \(corpus)") == "'\(corpus)' exists and is not a safetensors checkpoint, so "
                + "`\(command)` will not replace it: name a new file, or remove that one first")
    }
    #expect(try Data(contentsOf: URL(fileURLWithPath: corpus)) == text, "the corpus is left as it was")
    let model = folder.appendingPathComponent("m.safetensors").path
    #expect(refusal(runner, "save \(model)") == nil)
    #expect(refusal(runner, "save \(model)") == nil, "a checkpoint is replaced")
    let empty = folder.appendingPathComponent("empty.safetensors").path
    FileManager.default.createFile(atPath: empty, contents: Data())
    #expect(refusal(runner, "save \(empty)") == nil, "an empty file holds nothing to lose")
    let damaged = folder.appendingPathComponent("damaged.safetensors").path
    try Data([9, 9]).write(to: URL(fileURLWithPath: damaged))
    #expect(refusal(runner, "save \(damaged)") == nil, "a damaged checkpoint (by its name) may be saved over")
}

@Test func theHeatmapFitsTheWidthDrawingTheFirstCharacters() throws {
    let T = 50
    // Every query looks at the first character.
    var values = [Float](repeating: 0, count: T * T)
    for t in 0..<T { values[t * T] = 1 }
    let weights = AttentionWeights(layerCount: 1, headCount: 1, length: T, values: values)
    let scalars = Array(String(repeating: "ab", count: T / 2).unicodeScalars)
    let map = attentionHeatmap(scalars: scalars, weights: weights, layer: 0, head: 0, width: 40)
    let lines = map.split(separator: "\n").map(String.init)
    #expect(lines.allSatisfy { $0.count < 40 }, "\(map)")
    #expect(lines[0] == "     " + String(repeating: "ab", count: 17))
    #expect(lines[1] == " 0 a █" && lines[2] == " 1 b █·" && lines[34] == "33 b █" + String(repeating: "·", count: 33))
    #expect(unwrapped(map).contains("(the first 34 of 50 characters drawn, as many as the width holds; the lines below cover all 50)"))
}

@Test func trainRefusesASeqBeyondTheContextOfAModelLoadedWithoutOne() throws {
    // A file without training settings: seq is back to 100, beyond the model's context; `train` names both.
    let folder = try temporaryFolder()
    let text = String(repeating: "abc <ab>&\nca", count: 40)
    let (session, runner, _) = try handBuiltAttention(text: text, context: 16, folder: folder)
    let textPath = folder.appendingPathComponent("text.txt").path
    try Data(text.utf8).write(to: URL(fileURLWithPath: textPath))
    try runner.execute("load \(textPath)")
    #expect(refusal(runner, "train 1 steps")
            == "seq 100 is longer than the model's context 16: the transformer attends over at most 16 characters; lower `seq` to 16 or less (or raise `context`, then `reset`)")
    #expect(session.step == 0)
    try runner.execute("set seq 16; train 1 steps")
    #expect(session.step == 1)
}
