// The shell fits the person's terminal and habits: output within the width, the live line that never wraps,
// `;` between commands, `~` in paths, files named on the command line, <stdin>:LINE:, help for everything, every
// help example working, timings, -q, the unsaved-work warning, and `history` as the commands typed.

import CharLM
@testable import CharLMShell
import Foundation
import Testing

@Test func wrappingKeepsEveryLineWithinTheWidthWithAHangingIndent() {
    let text = "loaded /some/rather/long/path/to/a/corpus.txt: 1,115,394 characters, 65 distinct; training 1,003,854, validation 111,540"
    for width in [20, 40, 60, 79] {
        let wrapped = wrap(text, width: width, indent: 2)
        let lines = wrapped.split(separator: "\n").map(String.init)
        #expect(lines.allSatisfy { $0.count <= width }, "width \(width): \(wrapped)")
        #expect(lines.dropFirst().allSatisfy { $0.hasPrefix("  ") })
        #expect(unwrapped(wrapped) == text || width < 46, "width \(width)")  // the path is cut only when it must be
    }
    // Paragraph breaks stay; a word longer than a line is cut across lines.
    #expect(wrap("a b\nc", width: 30) == "a b\nc")
    #expect(wrap(String(repeating: "x", count: 25), width: 10).split(separator: "\n").map(\.count) == [10, 10, 5])
}

@Test func wideCharactersTakeTwoColumnsWhenWrapping() {
    #expect(displayWidth("abc") == 3 && displayWidth("日本語") == 6 && displayWidth("e\u{301}") == 1 && displayWidth("한글") == 4)
    let text = String(repeating: "春眠不覚暁 ", count: 20) + String(repeating: "字", count: 50)
    for width in [20, 40, 79] {
        let lines = wrap(text, width: width, indent: 2).split(separator: "\n")
        #expect(lines.allSatisfy { displayWidth($0) <= width }, "width \(width)")
        #expect(lines.count >= displayWidth(text) / width, "width \(width): lines are filled, not halved")
    }
}

@Test func theLossChartFitsEveryWidthWhateverTheLosses() {
    let kinds: [(String, [Double], [ValidationPoint])] = [
        ("small", [4.2, 3.1, 2.5, 2.0], [ValidationPoint(step: 4, loss: 2.1)]),
        ("thousands", [1234.5, 999.9, 12.0], [ValidationPoint(step: 2, loss: 1500)]),
        ("enormous", [1e300, 2.0, -1e300], [ValidationPoint(step: 3, loss: 1e200)]),
        ("a billion steps", [3.0, 2.0], [ValidationPoint(step: 1_000_000_000, loss: 2.5)]),
    ]
    for (name, training, validation) in kinds {
        for width in [20, 40, 80, 132] {
            let chart = brailleChart(training: training, validation: validation, width: width, height: 12)
            let widest = chart.split(separator: "\n").map { displayWidth($0) }.max() ?? 0
            #expect(widest <= width, "\(name) at \(width) columns: \(widest)\n\(chart)")
        }
    }
    #expect(axisLabel(2.3456) == "  2.346" && axisLabel(1234.5678) == "1234.57" && axisLabel(123_456) == " 123456" && axisLabel(12_345_678) == "1.2e+07")
    #expect(axisLabel(-1e300) == "-1e+300")
    // Steps past 2^31 and losses near the largest double are printed whole and short.
    #expect(validationList([ValidationPoint(step: 1_000_000_000_000, loss: 1e308)]) == "validation loss: 1e+308 @1000000000000")
    let far = brailleChart(training: [2.5], validation: [ValidationPoint(step: 3_000_000_000, loss: -1.7e308)], width: 80, height: 12)
    #expect(unwrapped(far).contains("validation -1.7e+308 at step 3000000000"), "\(far)")
}

@Test func aStatusLineIsCutToTheWidth() {
    let console = BufferConsole()
    console.isTerminal = true
    console.status("generating 16 samples: " + String(repeating: "9", count: 200))
    let shown = console.stderr.replacingOccurrences(of: "\r\u{1B}[K", with: "")
    #expect(shown.count == console.width - 1 && shown.hasSuffix("…"), "\(shown)")
    console.clear()
    console.status("short")
    #expect(console.stderr.hasSuffix("short"))
}

@Test func theLiveTrainingLineNeverWrapsAndKeepsStepAndLoss() {
    let progress = TrainingProgress(step: 1234, lastStep: 100_000, epoch: 12.34, recentLosses: [2.5, 2.4, 2.3, 2.2][...],
                                    validation: 2.1, tokensPerSecond: 123_456, remaining: 3725)
    let full = progress.line(sparkline: true)
    #expect(full == "step 1234/100000  epoch 12.34  loss 2.2000 █▆▃▁  val 2.1000  123,456 tok/s  ETA 1:02:05")
    for width in 20...120 {
        let line = progress.line(sparkline: true, width: width)
        #expect(line.count <= width, "width \(width): \(line)")
        if width >= 30 { #expect(line.hasPrefix("step 1234/100000") && line.contains("loss 2.2000"), "width \(width): \(line)") }
    }
    // The least important go first: the sparkline, the epoch, tokens/s, the validation loss, the ETA.
    #expect(progress.line(sparkline: true, width: 87) == full)
    #expect(progress.line(sparkline: true, width: 86) == "step 1234/100000  epoch 12.34  loss 2.2000  val 2.1000  123,456 tok/s  ETA 1:02:05")
    #expect(progress.line(sparkline: true, width: 79) == "step 1234/100000  loss 2.2000  val 2.1000  123,456 tok/s  ETA 1:02:05")
    #expect(progress.line(sparkline: true, width: 60) == "step 1234/100000  loss 2.2000  val 2.1000  ETA 1:02:05")
    #expect(progress.line(sparkline: true, width: 45) == "step 1234/100000  loss 2.2000  ETA 1:02:05")
    #expect(progress.line(sparkline: true, width: 40) == "step 1234/100000  loss 2.2000")
}

@Test func semicolonsSeparateCommandsOutsideQuotes() throws {
    #expect(splitCommands("echo a; echo b").map(\.text) == ["echo a", " echo b"])
    #expect(splitCommands("echo \"a;b\"; echo \"c\\\";d\"").map(\.text) == ["echo \"a;b\"", " echo \"c\\\";d\""])
    #expect(splitCommands("echo a # b; c").map(\.text) == ["echo a # b; c"])
    let (_, runner, console) = makeShell()
    try runner.execute("echo a; echo \"b;c\";echo d")
    #expect(console.stdout == "a\nb;c\nd\n")
    // The first failing command stops the line; columns in errors count from the line's start.
    console.clear()
    #expect(throws: ShellError.syntax(LexError(message: "unterminated quote", column: 9))) { try runner.execute("echo a; \"x") }
    #expect(throws: ShellError.self) { try runner.execute("echo one; bogus; echo two") }
    #expect(console.stdout == "a\none\n")
}

@Test func aTildeInAnyPathIsTheHomeFolder() throws {
    let home = NSHomeDirectory()
    #expect(expandingTilde("~") == home)
    #expect(expandingTilde("~/x/y.txt") == home + "/x/y.txt")
    #expect(expandingTilde("~root/z") == (FileManager.default.homeDirectory(forUser: "root")?.path ?? "~root") + "/z")
    #expect(expandingTilde("a~/b") == "a~/b" && expandingTilde("~nosuchuser12345/q") == "~nosuchuser12345/q")
    // load and save through ~.
    let name = ".charlm-test-\(UUID().uuidString.prefix(8))"
    let text = home + "/" + name + ".txt"
    try FileManager.default.copyItem(atPath: fixture("tiny.txt"), toPath: text)
    defer {
        try? FileManager.default.removeItem(atPath: text)
        try? FileManager.default.removeItem(atPath: home + "/" + name + ".safetensors")
    }
    let (session, runner, _) = makeShell()
    try runner.execute("set hidden 8; load ~/\(name).txt; save ~/\(name).safetensors")
    #expect(session.corpus != nil)
    #expect((try? Checkpoint.load(from: home + "/" + name + ".safetensors")) != nil)
}

@Test func filesOnTheCommandLineAreLoadedOrRunByWhatTheyHold() throws {
    let folder = try temporaryFolder()
    try FileManager.default.copyItem(atPath: fixture("tiny.txt"), toPath: folder.appendingPathComponent("corpus.txt").path)
    // A text of commands without the .clm name is a script; prose is a corpus; a checkpoint is loaded.
    try "# setup\nset hidden 8\nset seq 20; set batch 4\n\nload corpus.txt\nsave model.safetensors\n".write(
        to: folder.appendingPathComponent("setup"), atomically: true, encoding: .utf8)
    #expect(FileRole.of(folder.appendingPathComponent("setup").path) == .script)
    #expect(FileRole.of(folder.appendingPathComponent("corpus.txt").path) == .data)
    let setup = try runCharLM(["setup"], in: folder)
    #expect(setup.status == 0, "\(setup.stderr)")
    #expect(FileRole.of(folder.appendingPathComponent("model.safetensors").path) == .data)
    // With commands on stdin (not a terminal), charlm model.safetensors loads it and reads them.
    let model = try runCharLM(["model.safetensors"], in: folder, input: "model\n")
    #expect(model.status == 0, "\(model.stderr)")
    #expect(model.stdout.contains("loaded checkpoint model.safetensors") && model.stdout.contains("model: LSTM, E 64, H 8, L 2"))
    let text = try runCharLM(["-q", "corpus.txt"], in: folder, input: "set hidden 8; reset; show hidden\n")
    #expect(text.status == 0 && text.stdout == "hidden 8\n", "\(text.stderr)")
    // A binary file is never echoed back.
    try Data([0x7F, 0x45, 0x4C, 0x46, 0, 1, 2, 0xFF, 0xFE]).write(to: folder.appendingPathComponent("program"))
    let binary = try runCharLM(["program"], in: folder)
    #expect(binary.status == 1)
    #expect(unwrapped(binary.stderr) == "error: 'program' looks like a binary file (it has a NUL byte at offset 4): load a UTF-8 text file (a checkpoint cut to its first few bytes looks like this too)\n")
}

@Test func pipedCommandsNameTheirLineAndVersionAnswers() throws {
    let piped = try runCharLM([], input: "set hidden 8\n\nbogus 3\nshow hidden\n")
    #expect(piped.status == 1)
    #expect(piped.stderr == "<stdin>:3: error: unknown command 'bogus'; `help` lists the commands\n")
    #expect(piped.stdout.isEmpty, "stops at the first error")
    let version = try runCharLM(["--version"])
    #expect(version.status == 0 && version.stdout.hasPrefix("charlm "))
}

@Test func everyHelpExampleRunsInAFreshSession() throws {
    let folder = try temporaryFolder()
    try FileManager.default.copyItem(atPath: fixture("tiny.txt"), toPath: folder.appendingPathComponent("input.txt").path)
    try "echo \"an experiment\"\n".write(to: folder.appendingPathComponent("experiment.clm"), atomically: true, encoding: .utf8)
    // A small trained model on a small text, as a learner would have after a minute; each example in a process of
    // its own, in a folder holding the files the examples name.
    let setup = "set hidden 16; set embed 8; set seq 20; set batch 4; set eval 0; load input.txt; train 2 steps"
    // `attn` looks inside a transformer: its example runs on a small one.
    let transformer = "set arch transformer; set seq 20; set context 32; " + setup
    // `load tinyshakespeare` reads the download cache: a cache holding the shared copy, so no network is needed.
    let cache = try temporaryFolder()
    let haveCorpus = FileManager.default.fileExists(atPath: sharedCorpus)
    if haveCorpus {
        try FileManager.default.copyItem(atPath: sharedCorpus,
                                         toPath: cache.appendingPathComponent("tinyshakespeare.txt").path)
    }
    for command in Commands.table {
        let example = String(command.details.split(separator: "\n").last!.dropFirst("Example: ".count))
        if example.contains("tinyshakespeare") && !haveCorpus {
            print("note: `\(example)` (help \(command.name)) not run: ../shared/data/tinyshakespeare.txt is absent, "
                  + "and the example would download it")
            continue
        }
        let result = try runCharLM(["-c", command.name == "attn" ? transformer : setup, "-c", example], in: folder,
                                   environment: ["CHARLM_CACHE": cache.path])
        #expect(result.status == 0, "`\(example)` (help \(command.name)): \(result.stderr)")
    }
}

@Test func helpExplainsSettingsAndTheCommandsFitTheWidth() throws {
    let (_, runner, console) = makeShell()
    try runner.execute("help lr")
    #expect(console.stdout == "lr: Adam learning rate. A number above 0, at most 1; default 0.002. Group:\n  training.\nSet it with `set lr VALUE`.\n")
    console.clear()
    try runner.execute("? set")
    #expect(console.stdout.contains("usage: set KEY VALUE") && console.stdout.contains("temp       1"))
    #expect(console.stdout.contains("sampling temperature (0 = always the most likely)"))
    #expect(console.stdout.split(separator: "\n").allSatisfy { $0.count < 80 })
    for command in Commands.table {
        console.clear()
        try runner.execute("help \(command.name)")
        #expect(console.stdout.split(separator: "\n").allSatisfy { $0.count < 80 }, "help \(command.name)")
    }
}

@Test func quietModeLeavesOnlyGeneratedTextRequestedOutputAndErrors() throws {
    let folder = try temporaryFolder()
    try FileManager.default.copyItem(atPath: fixture("tiny.txt"), toPath: folder.appendingPathComponent("tiny.txt").path)
    let quiet = try runCharLM(["-q", "-c", "set hidden 8; set seq 20; set batch 4; set eval 1", "-c", "load tiny.txt",
                               "-c", "train 2 steps", "-c", "set hidden 16", "-c", "gen \"a\" 5", "-c", "set temp 500"], in: folder)
    #expect(quiet.status == 1)
    #expect(quiet.stdout.count == 1 + 5 + 1)
    #expect(quiet.stderr == "error: temp must be a number from 0 to 100; got '500'\n", "only the error: \(quiet.stderr)")
}

@Test func timingsHistoryAndTheUnsavedWorkWarning() throws {
    let (session, runner, console) = makeShell()
    try runner.execute("set hidden 8; set seq 20; set batch 4; set eval 0; load \(fixture("tiny.txt"))")
    try runner.execute("set timing on")
    console.clear()
    try runner.execute("echo hi; echo there")
    #expect(console.stderr.split(separator: "\n").filter { $0.hasPrefix("time: ") && $0.hasSuffix(" s") }.count == 2)
    // A command that failed has its error, not a time.
    console.clear()
    #expect(thrownError(runner, "load no-such-file") != nil)
    #expect(!console.stderr.contains("time: "), "\(console.stderr)")
    try runner.execute("set timing off")
    // At the prompt (the executable sets the guard at a terminal), leaving with unsaved training is refused once.
    session.guardsUnsavedWork = true
    runner.interactive = true
    console.clear()
    _ = runner.run(ArrayLineSource(["train 3 steps", "quit", "echo still here", "quit"]), name: nil)
    #expect(unwrapped(console.stderr).contains("note: 3 steps trained since the last save: `save` them, or quit again to leave without"))
    #expect(console.stdout.contains("still here\n"))
    #expect(runner.quitRequested && session.unsavedSteps == 3)
    // `history` lists the commands run, numbered.
    console.clear()
    try runner.execute("history 3")
    #expect(console.stdout == "  2  quit\n  3  echo still here\n  4  quit\n", "\(console.stdout)")
}

/// What a terminal is sent around the live line: drawn without wrapping with the cursor put back on its first
/// character; erased, row by row from there, before anything else is written (a warning during `train`, generated
/// text), so nothing else is ever written over a piece of it; and erased once only.
@Test func outputWhileTheLiveLineIsShownErasesItFirst() {
    final class Sent { var writes: [(StandardStream, String)] = [] }
    let sent = Sent()
    let console = StandardConsole(quiet: false, write: { stream, text in
        sent.writes.append((stream, text))
        return nil
    })
    let line = String(repeating: "x", count: 50)
    console.drawStatus(line)
    console.err("warning: autosave failed\n")
    console.out("generated\n")
    console.eraseStatus()
    let texts = sent.writes.map(\.1)
    // Not a terminal here: the erase covers the rows the line would take at 20 columns, 3 for 50 columns.
    let erase = "\r\u{1B}7\u{1B}[2K" + String(repeating: "\u{1B}[B\u{1B}[2K", count: 2) + "\u{1B}8"
    #expect(texts == ["\u{1B}[?7l" + line + "\u{1B}[?7h\r", erase, "warning: autosave failed\n", "generated\n"])
    #expect(sent.writes.map(\.0) == [.error, .error, .error, .output])
    // Narrower than 20 columns, the rows it would take there; never more than the screen has.
    #expect(StandardConsole.erasing(columns: 50, terminalColumns: 10, terminalRows: 24).components(separatedBy: "[2K").count - 1 == 5)
    #expect(StandardConsole.erasing(columns: 999, terminalColumns: 120, terminalRows: 4).components(separatedBy: "[2K").count - 1 == 4)
    #expect(StandardConsole.erasing(columns: 0, terminalColumns: 120, terminalRows: 24).isEmpty)
}
