// Each command's argument checking and its effect on the session, through the same runner the prompt uses.

import CharLM
@testable import CharLMShell
import Foundation
import Testing

/// Runs `line`, returning the error message (nil on success).
@discardableResult
private func attempt(_ runner: Runner, _ line: String) -> String? {
    do {
        try runner.execute(line)
        return nil
    } catch {
        return "\(error)"
    }
}

@Test func helpListsEveryCommandInTheTable() {
    let (_, runner, console) = makeShell()
    #expect(attempt(runner, "help") == nil)
    // Words as a reader sees them, whatever the wrapping.
    func words(_ text: String) -> String { text.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
    for command in Commands.table {
        #expect(console.stdout.contains("  " + command.usage), "help misses \(command.name)")
        #expect(words(console.stdout).contains(words(command.summary)))
    }
    #expect(console.stdout.split(separator: "\n").allSatisfy { $0.count < 80 }, "help fits 80 columns")
    console.clear()
    #expect(attempt(runner, "help train") == nil)
    #expect(console.stdout.hasPrefix("usage: train [N | N steps | 90s | 5m | until N]\n"))
    #expect(console.stdout.contains("Example: train 500 steps"))
    console.clear()
    #expect(attempt(runner, "help trian") == "unknown command 'trian'; did you mean 'train'?")
    #expect(console.stdout.isEmpty)
}

@Test func unknownCommandsSuggestTheNearest() {
    let (_, runner, _) = makeShell()
    #expect(attempt(runner, "trian 5") == "unknown command 'trian'; did you mean 'train'?")
    #expect(attempt(runner, "xyzzy") == "unknown command 'xyzzy'; `help` lists the commands")
    #expect(attempt(runner, "gen \"oops") == "unterminated quote (column 5)")
}

@Test func settingsAreValidatedWithTheirRanges() {
    let (session, runner, console) = makeShell()
    #expect(attempt(runner, "temp -1") == "temp must be a number from 0 to 100; got '-1'")
    #expect(attempt(runner, "temp abc") == "temp must be a number from 0 to 100; got 'abc'")
    #expect(attempt(runner, "temp 200") == "temp must be a number from 0 to 100; got '200'")
    #expect(attempt(runner, "set hidden 0") == "hidden must be a whole number from 1 to 8192; got '0'")
    #expect(attempt(runner, "set lowercase maybe") == "lowercase must be on or off; got 'maybe'")
    #expect(attempt(runner, "set tmep 1") == "unknown setting 'tmep'; did you mean 'temp'?")
    #expect(attempt(runner, "set temp") == "usage: set KEY VALUE")
    #expect(attempt(runner, "topp 0") == "topp must be a number above 0, at most 1; got '0'")
    #expect(session.settings == Settings(), "failed commands changed nothing")
    #expect(attempt(runner, "temp 0.8") == nil)
    #expect(attempt(runner, "seed 42") == nil)
    #expect(attempt(runner, "topk 40") == nil)
    #expect(attempt(runner, "len 123") == nil)
    #expect(attempt(runner, "set ascii off") == nil)
    #expect(session.settings.temp == 0.8 && session.settings.seed == 42 && session.settings.topk == 40)
    #expect(session.settings.length == 123 && !session.settings.ascii)
    #expect(attempt(runner, "show temp") == nil)
    #expect(console.stdout == "temp 0.8\n")
    console.clear()
    #expect(attempt(runner, "show") == nil)
    // A heading, then one line per setting (a long meaning continues on indented lines).
    #expect(console.stdout.hasPrefix("setting    value  meaning\n"))
    #expect(console.stdout.split(separator: "\n").filter { !$0.hasPrefix(" ") }.count == Settings.keys.count + 1)
    #expect(console.stdout.contains("length     123    characters `gen` writes by default\n"))
    #expect(console.stdout.split(separator: "\n").allSatisfy { $0.count < 80 })
}

@Test func trainingAmountsParse() throws {
    #expect(try parseTrainingAmount([]) == .epochs(1))
    #expect(try parseTrainingAmount(["2.5"]) == .epochs(2.5))
    #expect(try parseTrainingAmount(["30", "steps"]) == .steps(30))
    #expect(try parseTrainingAmount(["90s"]) == .seconds(90))
    #expect(try parseTrainingAmount(["5m"]) == .seconds(300))
    #expect(throws: ShellError.self) { try parseTrainingAmount(["-1"]) }
    #expect(throws: ShellError.self) { try parseTrainingAmount(["5", "apples"]) }
    #expect(throws: ShellError.self) { try parseTrainingAmount(["xs"]) }
}

@Test func commandsNeedALoadedTextOrModel() {
    let (_, runner, _) = makeShell()
    #expect(attempt(runner, "train 1 steps") == "no model yet: `load` a text first")
    #expect(attempt(runner, "gen") == "no model yet: `load` a text or a checkpoint first")
    #expect(attempt(runner, "reset") == "nothing to build a model for: `load` a text first")
    #expect(attempt(runner, "save") == "nothing to save: there is no model yet")
    #expect(attempt(runner, "load /no/such/file.txt") == "no such file '/no/such/file.txt': check the path")
}

@Test func loadTrainGenerateSaveAndLoadAgain() throws {
    let folder = try temporaryFolder()
    let (session, runner, console) = makeShell()
    for line in ["set hidden 16", "set embed 8", "set seq 20", "set batch 4", "set eval 0", "load \(fixture("tiny.txt"))"] {
        #expect(attempt(runner, line) == nil, "\(line)")
    }
    let corpus = try #require(session.corpus)
    #expect(unwrapped(console.stdout).hasPrefix("loaded \(fixture("tiny.txt")): 6,000 characters, \(corpus.vocabulary.count) distinct; training 5,400, validation 600"))
    #expect(session.model?.config == RecurrentConfig(vocabularySize: corpus.vocabulary.count, embeddingSize: 8, hiddenSize: 16, layerCount: 2))
    #expect(attempt(runner, "train 3 steps") == nil)
    #expect(session.step == 3 && session.lossHistory.count == 3 && session.validationHistory.count == 1)
    #expect(attempt(runner, "train 0 steps") != nil)
    // gen: prompt, count, escapes; unknown characters are reported and left out.
    console.clear()
    #expect(attempt(runner, "seed 5") == nil)
    #expect(attempt(runner, "gen \"first\\n\" 20") == nil)
    let first = console.stdout
    #expect(first.hasPrefix("first\n") && first.count == "first\n".count + 20 + 1)
    console.clear()
    #expect(attempt(runner, "gen \"Zebra{\" 5") == nil)
    #expect(console.stderr.contains("note: left out 1 character the model does not know: '{'"))
    // save, change things, load: everything comes back.
    let path = folder.appendingPathComponent("s.safetensors").path
    #expect(attempt(runner, "save \(path)") == nil)
    #expect(attempt(runner, "temp 0.3") == nil)
    #expect(attempt(runner, "set hidden 32") == nil)
    #expect(attempt(runner, "reset") == nil)
    #expect(session.step == 0)
    #expect(attempt(runner, "load \(path)") == nil)
    #expect(session.step == 3 && session.settings.hidden == 16 && session.settings.temp == 1 && session.validationHistory.count == 1)
    console.clear()
    #expect(attempt(runner, "seed 5") == nil)
    #expect(attempt(runner, "gen \"first\\n\" 20") == nil)
    #expect(console.stdout == first, "the loaded model generates what the saved one did")
    // After a load, a bare save would not replace the loaded file (it names charlm.safetensors); after saving to a
    // path, a bare save writes there again.
    console.clear()
    #expect(attempt(runner, "save \(path)") == nil)
    #expect(attempt(runner, "save") == nil)
    #expect(unwrapped(console.stdout).contains("saved \(path) ("))
    // model / info.
    console.clear()
    #expect(attempt(runner, "info") == nil)
    #expect(console.stdout.contains("step 3, epoch 0.04"))  // 3 of the 68 steps (of 80 characters) in 5,400
    #expect(attempt(runner, "plot") == nil)
    #expect(console.stdout.contains("loss (⠉ training") && console.stdout.contains("validation loss: "))
}

@Test func textWithOtherCharactersAsksForReset() throws {
    let folder = try temporaryFolder()
    let other = folder.appendingPathComponent("other.txt")
    try String(repeating: "0123456789 xyz\n", count: 100).write(to: other, atomically: true, encoding: .utf8)
    let (session, runner, console) = makeShell()
    #expect(attempt(runner, "set hidden 8") == nil)
    #expect(attempt(runner, "load \(fixture("tiny.txt"))") == nil)
    // A model that has trained is kept (an untrained one would simply be rebuilt for the new text).
    #expect(attempt(runner, "set seq 10; set batch 2; set eval 0; train 1 steps") == nil)
    let model = session.model
    #expect(attempt(runner, "load \(other.path)") == nil)
    #expect(console.stderr.contains("warning: this text's characters"))
    #expect(session.model === model, "the model is kept")
    #expect(attempt(runner, "train 1 steps") == "the loaded text's characters differ from the model's: `reset` for a new model on this text, or load text with the model's characters")
    #expect(attempt(runner, "reset") == nil)
    #expect(attempt(runner, "train 1 steps") == nil)
    // An untrained model is rebuilt quietly when text with other characters is loaded.
    let (fresh, freshRunner, freshConsole) = makeShell()
    #expect(attempt(freshRunner, "set hidden 8; load \(fixture("tiny.txt")); load \(other.path)") == nil)
    #expect(freshConsole.stderr.contains("note: the untrained model is rebuilt for this text's characters"))
    #expect(fresh.model?.config.vocabularySize == fresh.corpus?.vocabulary.count)
}

@Test func aBadCheckpointLeavesTheSessionAsItWas() throws {
    let folder = try temporaryFolder()
    let (session, runner, _) = makeShell()
    #expect(attempt(runner, "set hidden 8") == nil)
    #expect(attempt(runner, "load \(fixture("tiny.txt"))") == nil)
    let path = folder.appendingPathComponent("m.safetensors").path
    #expect(attempt(runner, "save \(path)") == nil)
    var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    bytes = bytes.prefix(bytes.count - 10)
    let broken = folder.appendingPathComponent("broken.safetensors")
    try bytes.write(to: broken)
    let model = session.model
    let settings = session.settings
    let message = attempt(runner, "load \(broken.path)")
    #expect(message?.hasPrefix("'\(broken.path)' is not a usable checkpoint: the tensors need") == true)
    #expect(session.model === model && session.settings == settings)
}

@Test func everyCommandEndsItsHelpWithOneLineExampleOfItself() throws {
    for command in Commands.table {
        let example = try #require(command.details.split(separator: "\n", omittingEmptySubsequences: false).last)
        #expect(example.hasPrefix("Example: "), "\(command.name): \(example)")
        // The example lexes and starts with a command (itself, or `set` before it as in `set hidden 128; reset`).
        let words = try lex(String(example.dropFirst("Example: ".count)))
        #expect(Commands.command(named: words.first?.text ?? "") != nil, "\(command.name): \(example)")
    }
}
