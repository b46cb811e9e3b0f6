// What the shell shows: help teaches only what runs: every `quoted` phrase in a command's help (its summary, details and example) and in a
// setting's help is a command as written (its first word a command or alias), or a setting or command name on its
// own. "`bf16 on`" once taught a command that does not exist.

import CharLM
@testable import CharLMShell
import Foundation
import Testing

/// The phrases between backticks in `text`.
private func backticked(_ text: String) -> [String] {
    text.split(separator: "`", omittingEmptySubsequences: false).enumerated().compactMap { $0.offset % 2 == 1 ? String($0.element) : nil }
}

@Test func everyCommandAndSettingThatHelpNamesRunsAsWritten() throws {
    let commands = Set(Commands.table.flatMap { [$0.name] + $0.aliases })
    let settings = Set(Settings.keys.map(\.name))
    var texts = Commands.table.map { "\($0.summary) \($0.details)" }
    texts += Settings.keys.map { settingHelp($0, width: 200) }
    var checked = 0
    for text in texts {
        for phrase in backticked(text) {
            let words = phrase.split(separator: " ").map(String.init)
            guard let first = words.first, first.allSatisfy({ $0.isLetter || $0.isNumber }) else { continue }
            // A phrase of several words is a command line; one word names a command or a setting.
            if words.count > 1 {
                #expect(commands.contains(first), "help teaches `\(phrase)`, but `\(first)` is no command (in: \(text.prefix(80))...)")
            } else if first.first?.isLowercase == true && first.count > 1 {
                #expect(commands.contains(first) || settings.contains(first) || ["gen", "cells"].contains(first),
                        "help names `\(phrase)`, which is neither a command nor a setting")
            }
            checked += 1
        }
    }
    #expect(checked > 50)
}

@Test func anUnknownCommandGetsTheNearestNames() throws {
    let (_, runner, _) = makeShell()
    let error = try #require(thrownError(runner, "trian 5"))
    #expect("\(error)".contains("did you mean 'train'"), "\(error)")
    // A setting typed as a command is pointed to `set`.
    let setting = try #require(thrownError(runner, "bf16 on"))
    #expect("\(setting)".contains("did you mean 'set bf16 on'"), "\(setting)")
}

@Test func controlCharactersReachATerminalSpelledOutAndAPipeByteExact() throws {
    // A checkpoint whose vocabulary holds ESC: what it generates may hold escape sequences.
    let vocabulary = try Vocabulary(scalars: ["\u{1B}", "[", "3", "1", "m", "a"], normalization: NormalizationOptions())
    var generator = SeededGenerator(seed: 1)
    let model = try RecurrentConfig(vocabularySize: 6, embeddingSize: 4, hiddenSize: 8, layerCount: 1).makeModel(generator: &generator)
    let path = try temporaryFolder().appendingPathComponent("escape.safetensors").path
    try Checkpoint(architecture: model.architecture, vocabulary: vocabulary, parameters: model.parameters.array).save(to: path)
    func generated(terminal: Bool) throws -> String {
        let (_, runner, console) = makeShell()
        console.outputIsTerminal = terminal
        try runner.execute("load \(path)")
        try runner.execute("gen \"\u{1B}[31m\" 300")
        return console.stdout
    }
    let piped = try generated(terminal: false)
    let shown = try generated(terminal: true)
    #expect(piped.contains("\u{1B}") && !shown.contains("\u{1B}"))
    #expect(shown == terminalSafe(piped) && shown.contains("<U+1B>[31m"))
    // Names a user typed come back in messages spelled out too.
    #expect(terminalSafe("no such file '\u{1B}[31mx'\n\tnext") == "no such file '<U+1B>[31mx'\n\tnext")

    // Every report and piece of information at a terminal: a file name, an echoed word, a setting, the history,
    // a decoded token, the vocabulary (C1 controls and U+2028 included), novelty's and cells' coloured text.
    let folder = try temporaryFolder()
    let hostileName = folder.appendingPathComponent("x\u{1B}[2Jy\u{85}z\u{2028}.txt").path
    try "ab\u{1B}c\u{9B}d\u{2028}e ab\u{1B}c\u{9B}d\u{2028}e\n".write(toFile: hostileName, atomically: true, encoding: .utf8)
    for terminal in [true, false] {
        let (_, runner, console) = makeShell()
        console.outputIsTerminal = terminal
        runner.historyProvider = { ["echo \u{1B}]0;title\u{7}"] }
        try runner.execute("set hidden 8; set seq 4; set batch 2; set val 0.5; set eval 0; set autosave off; set lowercase off; set ascii off")
        try runner.execute("load \"\(hostileName)\"")
        try runner.execute("echo \"\u{1B}[31mred\u{9B}\"; history; vocab; decode 2 3 4; set keepbest \"\(folder.path)/k\u{1B}[H.safetensors\"; show keepbest")
        try runner.execute("novelty 20; cells \"a\u{1B}b\"; next \"\u{2028}\"; trace \"a\" 3")
        let written = console.stdout + console.stderr
        let raw = written.unicodeScalars.filter { actsOnATerminal($0) && $0 != "\n" && $0 != "\t" }
        if terminal {
            #expect(raw.isEmpty, "raw control characters reached the terminal: \(raw.map { String($0.value, radix: 16) })")
            #expect(written.contains("<U+1B>[31mred<U+9B>") && written.contains("x<U+1B>[2Jy<U+85>z<U+2"), "\(written)")
        } else {
            #expect(console.stdout.contains("\u{1B}[31mred\u{9B}"), "a pipe gets the bytes as they are")
        }
    }
}

@Test func aWordLongerThanTheLineIsCutIntoWholeLines() {
    let word = String(repeating: "abcdefghij", count: 100_000)
    let lines = wrap("say " + word + " end", width: 79, indent: 2).split(separator: "\n", omittingEmptySubsequences: false)
    #expect(lines.allSatisfy { $0.count <= 79 })
    // Nothing lost or added but the line breaks and the hanging indent.
    let joined = lines.enumerated().map { $0.offset == 0 ? String($0.element) : String($0.element.dropFirst(2)) }.joined()
    #expect(joined.replacingOccurrences(of: " ", with: "") == "say" + word + "end")
    #expect(lines.dropFirst().dropLast().allSatisfy { $0.count == 79 }, "every line but the first and last is full")
}

@Test func fileSettingsAreCheckedWhenSetAndUnsavedWorkIsOneRule() throws {
    let (session, runner, console) = makeShell()
    // keepbest (and log) into a folder that is not there: refused at `set`, the setting unchanged.
    let error = try #require(thrownError(runner, "set keepbest no/such/folder/best.safetensors"))
    #expect("\(error)".contains("in a folder that does not exist ('no/such/folder')"), "\(error)")
    #expect(session.settings.keepbest == nil)
    #expect(thrownError(runner, "set log missing/x.csv") != nil && session.settings.log == nil)
    // A folder named as the file: refused for both, with what to do.
    let aFolder = try temporaryFolder().path
    #expect("\(try #require(thrownError(runner, "set log \(aFolder)")))" == "log names '\(aFolder)', which is a folder: name a file inside it")
    #expect("\(try #require(thrownError(runner, "set keepbest \(aFolder)")))".contains("which is a folder: name a file inside it"))
    #expect(session.settings.log == nil && session.settings.keepbest == nil)
    // `on` is a switch, not a file name.
    #expect("\(try #require(thrownError(runner, "set keepbest on")))" == "keepbest must be a file name (there is no `on`: name the file), or off; got 'on'")
    #expect(thrownError(runner, "set log yes") != nil && session.settings.log == nil && session.settings.keepbest == nil)
    // ~ is $HOME, as shells take it.
    let home = try temporaryFolder()
    let homeChild = try RunningProgram(["-c", "HOME=\(home.path) exec \"\(charlmBinary)\" -c 'load ~/nosuch.txt'"], program: "/bin/bash")
    #expect(homeChild.waitForExit() && unwrapped(homeChild.stderr).contains("no such file '\(home.path)/nosuch.txt'"), "\(homeChild.stderr)")
    // autosave where a file this session did not write stands: said at `set` (in a folder of its own, so a child).
    let folder = try temporaryFolder()
    #expect(FileManager.default.createFile(atPath: folder.appendingPathComponent("charlm.safetensors").path, contents: Data([1])))
    let child = try RunningProgram(["-c", "set autosave 5s"], in: folder)
    #expect(child.waitForExit() && child.process.terminationStatus == 0)
    #expect(unwrapped(child.stderr).contains("note: autosave writes where a bare `save` does, and 'charlm.safetensors' already exists"))

    // At the prompt, `reset` over unsaved training is refused once with a note, as leaving is; again goes ahead.
    try runner.execute("set autosave off; set hidden 8; set seq 20; set batch 4; set eval 0; load \(fixture("tiny.txt"))")
    session.guardsUnsavedWork = true
    runner.interactive = true
    console.clear()
    _ = runner.run(ArrayLineSource(["train 2 steps", "reset"]), name: nil)
    #expect(unwrapped(console.stderr).contains("note: 2 steps trained since the last save: `save` them, or `reset` again to discard them"))
    #expect(!console.stderr.contains("error:") && session.step == 2)
    _ = runner.run(ArrayLineSource(["reset"]), name: nil)
    #expect(session.step == 0)
    // The note belongs to a model, not to a step count: a new model trained to the same step is guarded again, and
    // a note given for `reset` does not let leaving (here the end of the lines, as Ctrl-D) go unasked.
    console.clear()
    _ = runner.run(ArrayLineSource(["train 2 steps", "reset"]), name: nil)
    #expect(unwrapped(console.stderr).contains("`reset` again to discard them") && session.step == 2)
    #expect(unwrapped(console.stderr).contains("quit again to leave without saving"))
}

@Test func promptsAndFilesFromTheSmallerHostileInputsAreRefusedAlike() throws {
    let folder = try temporaryFolder()
    let (_, runner, _) = try makeShell(running: ["set hidden 8", "load \(fixture("tiny.txt"))"])
    // A binary file as a prompt is refused as `load` refuses it.
    let binary = folder.appendingPathComponent("program").path
    #expect(FileManager.default.createFile(atPath: binary, contents: Data([0x7F, 0x45, 0x4C, 0x46, 0, 1, 2])))
    #expect("\(try #require(thrownError(runner, "gen @\(binary) 5")))".contains("NUL byte at offset 4"))
    #expect("\(try #require(thrownError(runner, "load \(binary)")))".contains("NUL byte at offset 4"))
    // An inline prompt has the @FILE prompt's cap.
    let huge = String(repeating: "a", count: 10_000_001)
    #expect("\(try #require(thrownError(runner, "gen \"\(huge)\" 5")))".contains("a prompt holds at most 10,000,000"))

    // `eval` refused for memory speaks of evaluating, not training. At H 256 the pass needs about 550 GB: refused on
    // any machine this runs on (at H 8 it needed 19 GB, about 80% of this 24 GB machine, and ran where less was in use).
    let text = folder.appendingPathComponent("long.txt").path
    try String(repeating: "the cat sat on the mat. ", count: 10_000).write(toFile: text, atomically: true, encoding: .utf8)
    try runner.execute("load \(text); set hidden 256; reset; set seq 10000; set batch 4096")
    let refusal = "\(try #require(thrownError(runner, "eval")))"
    #expect(refusal.contains("evaluating with seq 10000 and batch 4096") && !refusal.contains("training with"), "\(refusal)")
}

@Test func messagesCountAndExplainAsPeopleWrite() throws {
    let folder = try temporaryFolder()
    let (session, runner, console) = makeShell()
    // One character, not "1 characters"; thousands grouped.
    let one = folder.appendingPathComponent("one.txt").path
    try "x".write(toFile: one, atomically: true, encoding: .utf8)
    try runner.execute("set val 0; load \(one)")
    #expect(unwrapped(console.stdout).contains("loaded \(one): 1 character, 1 distinct;"), "\(console.stdout)")
    #expect(quantity(1, "character") == "1 character" && quantity(29_999, "character") == "29,999 characters")
    // A validation share that leaves no training text is said at load, with what to do.
    let text = folder.appendingPathComponent("text.txt").path
    try String(repeating: "the cat sat on the mat. ", count: 100).write(toFile: text, atomically: true, encoding: .utf8)
    console.clear()
    try runner.execute("set val 0.99999999; set seq 20; load \(text)")
    #expect(unwrapped(console.stderr).contains("note: the training split is too short for seq 20 (val 0.99999999 holds the rest out): `set val 0.1`"))
    #expect("\(try #require(thrownError(runner, "train 1 steps")))".contains("lower `val` (the share held out)"))
    // Another text with as many characters as the model's: what differs is counted, not "37 differ from 37".
    try runner.execute("set val 0.1; set hidden 8; load \(text); train 1 steps")
    // A text using only characters the trained model knows is read with its vocabulary, and training goes on.
    let subset = folder.appendingPathComponent("subset.txt").path
    try String(repeating: "the cat sat. ", count: 100).write(toFile: subset, atomically: true, encoding: .utf8)
    console.clear()
    try runner.execute("load \(subset); train 1 steps")
    #expect(unwrapped(console.stdout).contains("8 distinct (all the model's: read with its 11)"), "\(console.stdout)")
    #expect(session.step == 2 && !console.stderr.contains("warning"), "\(console.stderr)")
    try runner.execute("load \(text)")
    let other = folder.appendingPathComponent("other.txt").path
    try String(repeating: "THE CAT SAT ON THE MAT. ", count: 100).write(toFile: other, atomically: true, encoding: .utf8)
    console.clear()
    try runner.execute("set lowercase off; load \(other)")
    #expect(unwrapped(console.stderr).contains("this text's characters differ from the model's (9 characters the model does not know, 9 of the model's not in it)"),
            "\(console.stderr)")
    // A temperature too small for a float32 says so, not "must be from 0 to 100".
    #expect("\(try #require(thrownError(runner, "set temp 1e-50")))".contains("and a 32-bit float (at least 1.2e-38, or 0); got '1e-50'"))
    #expect(session.settings.temp == 1)
    // A checkpoint that changes how text is read says so.
    let checkpoint = folder.appendingPathComponent("lc.safetensors").path
    try runner.execute("reset; save \(checkpoint); set lowercase on")
    console.clear()
    try runner.execute("load \(checkpoint)")
    #expect(unwrapped(console.stderr).contains("note: lowercase is now off, as the model was trained"), "\(console.stderr)")
    // `eval` shows its progress at a terminal, and clears it at the end.
    console.isTerminal = true
    console.clear()
    try runner.execute("eval")
    console.isTerminal = false
    #expect(console.stderr.contains("evaluating 100% of 240 characters"),
            "\(console.stderr)")
    #expect(console.stderr.hasSuffix("\r\u{1B}[K"), "the status line is cleared")
    // Whole windows of seq predict fewer characters than the split holds, and the result says so (`load` reported
    // the whole split): (240 - 1) / seq windows of seq characters each.
    let seq = session.settings.seq
    #expect(unwrapped(console.stdout).contains("(\(grouped(239 / seq * seq)) of the 240 validation characters, in whole "
                                               + "windows of seq \(seq))"), "\(console.stdout)")
    // A checkpoint given to `source` is named for what it is.
    #expect("\(try #require(thrownError(runner, "source \(checkpoint)")))" == "'\(checkpoint)' is a checkpoint, not a script: `load \(checkpoint)` reads it")
    // A missing file named like the built-in dataset points to it.
    #expect("\(try #require(thrownError(runner, "load shakespeare")))" == "no such file 'shakespeare'; did you mean the built-in dataset: `load tinyshakespeare`?")
    #expect("\(try #require(thrownError(runner, "load tinyshakespear")))".hasSuffix("`load tinyshakespeare`?"))
    #expect("\(try #require(thrownError(runner, "load novel.txt")))" == "no such file 'novel.txt': check the path")
    // Sizes that round alike are said in bytes.
    #expect(CharLMError.fileTooLarge(path: "p", bytes: 10_000_001, maximum: 10_000_000, limit: "a prompt file").description
            == "'p' is 10,000,001 bytes or more; the most for a prompt file is 10,000,000 bytes")
}

@Test func aScriptWhoseTrainingCouldNotWriteAFileEndsFailed() throws {
    let folder = try temporaryFolder()
    let saved = folder.appendingPathComponent("m.safetensors").path
    let (_, runner, console) = try makeShell(running: [
        "set hidden 8", "set seq 20", "set batch 4", "set eval 0", "load \(fixture("tiny.txt"))", "save \(saved)"])
    // Autosave writes where `save` last wrote; a read-only file there makes it fail at the end of the run.
    try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: saved)
    runner.interactive = false
    let status = runner.run(ArrayLineSource(["set autosave 1h", "train 2 steps", "echo after"]), name: "s.clm")
    #expect(unwrapped(console.stderr).contains("warning: autosave failed:"), "\(console.stderr)")
    #expect(console.stdout.contains("after"), "the script goes on")
    #expect(status == .failed)
    // Without the failure the same script succeeds.
    try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: saved)
    #expect(runner.run(ArrayLineSource(["train 2 steps"]), name: "s.clm") == .success)
}

@Test func compareRowsOfSeveralSeqKeepTheirSeqWhenTheLabelIsCut() throws {
    let (_, runner, console) = try makeShell(running: [
        "set hidden 8", "set seq 20", "set batch 4", "set eval 0", "load \(fixture("tiny.txt"))", "ngram 5", "set seq 10", "ngram 5"])
    console.clear()
    try runner.execute("compare")
    let rows = console.stdout.split(separator: "\n").filter { $0.hasPrefix("5-gram") }
    #expect(rows.count == 2, "\(console.stdout)")
    #expect(rows.contains { $0.contains(" seq 20 ") } && rows.contains { $0.contains(" seq 10 ") }, "\(console.stdout)")
    #expect(console.stdout.split(separator: "\n").allSatisfy { $0.count <= 80 })
}

@Test func afterRestoreBestTheTablesNameTheRestoredStep() throws {
    // A small model that overfits tiny.txt (LongRunTests' settings): its best is not its last step.
    let (session, runner, console) = try makeShell(running: [
        "set hidden 128", "set embed 16", "set seq 20", "set batch 16", "set lr 0.01", "set eval 10", "set seed 5",
        "load \(fixture("tiny.txt"))", "train 200 steps", "restore best"])
    let best = try #require(session.watch.best)
    #expect(best.step < 200 && session.restoredFrom == best.step)
    console.clear()
    try runner.execute("ngram 2")
    #expect(console.stdout.contains("LSTM, step \(grouped(best.step))"), "\(console.stdout)")
    try runner.execute("compare add; compare")
    #expect(session.baselines.rows.first { !$0.isNGram }?.steps == best.step)
}

@Test func theMetricsLogIsNeverOverwrittenByACheckpoint() throws {
    let folder = try temporaryFolder()
    let log = folder.appendingPathComponent("l.csv").path
    let (_, runner, _) = try makeShell(running: ["set hidden 8", "set seq 20", "set batch 4", "load \(fixture("tiny.txt"))"])
    // The same file named two ways is one file.
    try runner.execute("set log \(folder.path)/./l.csv")
    #expect("\(try #require(thrownError(runner, "set keepbest \(log)")))".contains("keepbest and log name the same file"))
    // autosave onto the log is refused before a step is trained.
    try runner.execute("save \(log).safetensors; set log \(log).safetensors; set autosave 1h")
    #expect("\(try #require(thrownError(runner, "train 2 steps")))".contains("which is the metrics log"))
}
