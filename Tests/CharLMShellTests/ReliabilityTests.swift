// Nothing a user types or loads crashes charlm, exhausts the machine or destroys a file: hostile amounts and
// lengths, settings whose buffers would not fit, saves onto FIFOs, devices, links and read-only files, temporaries
// of killed saves, Ctrl-C in every long command, and the memory model against measured peaks.

import CharLM
@testable import CharLMShell
import Foundation
import Testing

/// The message of the error `line` throws (nil on success).
private func message(_ runner: Runner, _ line: String) -> String? { thrownError(runner, line).map(Runner.describe) }

/// A shell with a small model on the tiny fixture (hidden 8, seq 20, batch 4, no validation while training).
private func smallShell() throws -> (Session, Runner, BufferConsole) {
    try makeShell(running: ["set hidden 8", "set embed 4", "set seq 20", "set batch 4", "set eval 0",
                            "load \(fixture("tiny.txt"))"])
}

/// A text of `characters` random letters, spaces and newlines, written to a new file.
private func randomText(_ characters: Int) throws -> URL {
    var generator = SeededGenerator(seed: 11)
    let letters = Array("abcdefghijklmnopqrstuvwxyz     \n")
    let url = try temporaryFolder().appendingPathComponent("random.txt")
    try String((0..<characters).map { _ in letters[generator.nextIndex(below: letters.count)] }).write(to: url, atomically: true, encoding: .utf8)
    return url
}

@Test func hostileAmountsAndLengthsAreRangeErrors() throws {
    let (session, runner, _) = try smallShell()
    let limit = grouped(Trainer.maximumStep)
    for amount in ["99999999999999999999", "9223372036854775807", "1e300", "1e300 epochs", "9223372036854775807 steps"] {
        let text = message(runner, "train \(amount)")
        #expect(text?.contains("charlm counts to at most \(limit) more steps") == true, "train \(amount): \(text ?? "ran")")
    }
    #expect(message(runner, "train 1e30 steps") == "the number of steps is 9.2e+18 or more; charlm counts to at most \(limit) more steps (the model is at step 0)")
    #expect(message(runner, "train 2000000000000 steps") == "the number of steps is 2,000,000,000,000; charlm counts to at most \(limit) more steps (the model is at step 0)")
    #expect(message(runner, "train 1e300s")?.contains("at most 31536000 seconds (a year)") == true)
    #expect(message(runner, "train 1e300h")?.contains("at most 31536000 seconds (a year)") == true)
    #expect(message(runner, "train inf") == "train needs a number of epochs, `N steps` or a duration like 90s, 5m or 2h; got 'inf'")
    #expect(message(runner, "train 0x10") == "train needs a number of epochs, `N steps` or a duration like 90s, 5m or 2h; got '0x10'")
    #expect(message(runner, "train 0s") == "train: a duration must be above 0; got '0s'")
    #expect(message(runner, "train 0 steps") == "train N steps: N must be a whole number above 0; got '0'")
    #expect(message(runner, "train 3 apples") == "train N UNIT: the unit is steps or epochs (a time is one word: 90s, 5m, 2h); got 'apples'")
    #expect(message(runner, "train 1 steps extra") == "usage: train [N | N epochs | N steps | 90s | 5m | 2h | until N]")
    #expect(session.step == 0, "nothing trained")
    for count in ["1000000000", "9223372036854775807", "-1", "1e3"] {
        #expect(message(runner, "gen \"\" \(count)") == "gen: N must be a whole number from 1 to 1000000; got '\(count)'")
    }
    #expect(message(runner, "gen 5 \"x\"") == "usage: gen [\"PROMPT\"] [N]")
    #expect(message(runner, "set temp 0x10") == "temp must be a number from 0 to 100; got '0x10'")
    #expect(message(runner, "set temp 0.5\u{0}junk") == "the line has a NUL character; remove it (column 13)")
    let long = String(repeating: "9", count: 100_000)
    #expect(message(runner, "set seq \(long)")!.count < 120, "a 100 KB value is not repeated in full")
    #expect(session.settings.temp == 1)
}

@Test func settingsWhoseBuffersWouldNotFitAreRefusedBeforeAnythingIsAllocated() throws {
    let (session, runner, console) = makeShell()
    let before = peakResidentBytes()
    for line in ["set hidden 8192", "set layers 16", "set embed 8192"] { try runner.execute(line) }
    let refused = message(runner, "load \(fixture("tiny.txt"))") ?? ""
    #expect(refused.hasPrefix("a model of E 8192, H 8192, L 16, V "), "\(refused)")
    #expect(refused.contains(" needs about 69 GB of memory; the machine has"), "\(refused)")
    #expect(refused.hasSuffix(": lower hidden, layers or embed"))
    #expect(session.model == nil)
    // Training buffers: seq 10000 x batch 4096 on a modest model is tens of gigabytes.
    let text = try randomText(200_000)
    for line in ["set hidden 64", "set layers 2", "set embed 16", "load \(text.path)", "set seq 10000", "set batch 4096"] {
        try runner.execute(line)
    }
    let training = message(runner, "train 1 steps") ?? ""
    #expect(training.hasPrefix("training with seq 10000 and batch 4096 (H 64, L 2) needs about"), "\(training)")
    #expect(training.hasSuffix("lower seq or batch (or hidden or layers, then `reset`)"))
    // (Other tests run in this process at the same time, so the bound is loose: what was refused is tens of GB.)
    #expect(peakResidentBytes() - before < 1_000_000_000, "refusing allocated \(peakResidentBytes() - before) bytes")
    // `model` shows the estimate.
    try runner.execute("set seq 100")
    try runner.execute("set batch 64")
    console.clear()
    try runner.execute("model")
    #expect(console.stdout.contains("memory: the model "))
    #expect(console.stdout.contains("training at seq 100 x batch 64 about "))
    // The page `cells --html` writes is bounded too: 9,000 characters x 256 cells would be some 100 MB.
    for line in ["set hidden 256", "reset"] { try runner.execute(line) }
    #expect(message(runner, "cells \"\(String(repeating: "ab ", count: 3000))\" --html \(NSTemporaryDirectory())/c.html")
        == "the page would hold 9,000 characters x 256 cells; at most 2,000,000 in all: give a shorter text")
}

@Test func generationStreamsInConstantMemory() throws {
    // In a process of its own (tests here run side by side): the peak memory of generating a million characters
    // against two thousand, through the same streaming generator `gen` uses.
    func peak(_ length: Int) throws -> Double {
        let result = try runProgram(benchBinary, ["generate-speed", "--hidden", "8", "--embed", "4", "--layers", "1",
                                                  "--length", String(length)], in: try temporaryFolder())
        #expect(result.status == 0, "\(result.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(object?["characters"] as? Int == length)
        return try #require(object?["peak_rss_mb"] as? Double)
    }
    let (short, long) = (try peak(2_000), try peak(1_000_000))
    // Keeping the characters would take 8 MB (an Int each); streaming keeps none.
    #expect(long - short < 3, "a million characters took \(long - short) MB more than two thousand")
}

@Test func savingNeverDestroysWhatIsNotARegularFileOrIsReadOnly() throws {
    let folder = try temporaryFolder()
    let (_, runner, _) = try smallShell()
    // A FIFO stays a FIFO.
    let fifo = folder.appendingPathComponent("fifo").path
    #expect(mkfifo(fifo, 0o644) == 0)
    #expect(message(runner, "save \(fifo)") == "could not save '\(fifo)': it is a FIFO (named pipe), not a regular file: save to a file name")
    var info = stat()
    #expect(stat(fifo, &info) == 0 && info.st_mode & S_IFMT == S_IFIFO)
    // A device node (one this test makes, as root: the same device as /dev/null) stays a device.
    if getuid() == 0 {
        let device = folder.appendingPathComponent("null").path
        // makedev(1, 3) is a C macro; on Linux it packs the minor into the low byte and the major above it.
        #expect(mknod(device, S_IFCHR | 0o666, dev_t(1 << 8 | 3)) == 0)
        #expect(message(runner, "save \(device)") == "could not save '\(device)': it is a character device, not a regular file: save to a file name")
        #expect(stat(device, &info) == 0 && info.st_mode & S_IFMT == S_IFCHR)
    }
    // A link is followed: the file it points to is replaced, and the link stays a link.
    let target = folder.appendingPathComponent("real.safetensors").path
    let link = folder.appendingPathComponent("link.safetensors").path
    try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "real.safetensors")
    let (_, linkRunner, linkConsole) = try smallShell()
    #expect(message(linkRunner, "save \(link)") == nil)
    #expect(unwrapped(linkConsole.stdout).contains("saved \(link) (a link: wrote \(target)) ("), "\(linkConsole.stdout)")
    #expect(lstat(link, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK)
    #expect((try? Checkpoint.load(from: target)) != nil)
    // A read-only file is never replaced (the rename would go around its permissions), even as root.
    let readOnly = folder.appendingPathComponent("frozen.safetensors").path
    try FileManager.default.copyItem(atPath: target, toPath: readOnly)
    try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: readOnly)
    let original = try readFileBytes(at: readOnly)
    try runner.execute("train 1 steps")
    #expect(message(runner, "save \(readOnly)")?.hasSuffix("it is read-only; it is unchanged (make it writable to replace it)") == true)
    #expect(try readFileBytes(at: readOnly) == original)
    // A bare `save` never replaces a file this session did not write: a loaded checkpoint, say.
    let fresh = folder.appendingPathComponent("fresh")
    try FileManager.default.createDirectory(at: fresh, withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: target, toPath: fresh.appendingPathComponent("charlm.safetensors").path)
    let bare = try runCharLM(["-c", "load charlm.safetensors", "-c", "save"], in: fresh)
    #expect(bare.status == 1)
    #expect(unwrapped(bare.stderr).contains("'charlm.safetensors' already exists and this session did not write it: `save charlm.safetensors` to replace it, or `save PATH` to another name"))
    let named = try runCharLM(["-c", "load charlm.safetensors", "-c", "save charlm.safetensors", "-c", "save"], in: fresh)
    #expect(named.status == 0, "after saving there, a bare save writes there again: \(named.stderr)")
    // After a load, a bare `save` does not replace the file this session saved the model before in, and says so
    // truthfully (the newcomer run found it saying "this session did not write it").
    let again = try runCharLM(["-c", "load charlm.safetensors", "-c", "save charlm.safetensors",
                               "-c", "load charlm.safetensors", "-c", "save"], in: fresh)
    #expect(again.status == 1)
    #expect(unwrapped(again.stderr).contains("'charlm.safetensors' holds the model this session saved before the current one was loaded or made: `save charlm.safetensors` to replace it"), "\(again.stderr)")
}

@Test func temporariesOfKilledSavesAreRemovedByTheNextSave() throws {
    let folder = try temporaryFolder()
    let path = folder.appendingPathComponent("m.safetensors").path
    // A process that no longer runs: a child that has exited.
    let child = Process()
    child.executableURL = URL(fileURLWithPath: "/bin/true")
    try child.run()
    child.waitUntilExit()
    let dead = child.processIdentifier
    let stale = [".m.safetensors.tmp-charlm-\(dead)-123", ".m.safetensors.tmp-\(dead)-456"]
    let live = ".m.safetensors.tmp-charlm-1-789"  // pid 1 runs: a save in progress is left alone
    for name in stale + [live] { try Data([1, 2, 3]).write(to: folder.appendingPathComponent(name)) }
    try writeFileAtomically([9, 9], to: path)
    let left = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
    #expect(left == [live, "m.safetensors"].sorted())

    // For real: SIGKILL a process in the middle of a series of saves, then save again.
    let script = folder.appendingPathComponent("saves.clm")
    let text = try randomText(100_000)
    var lines = ["set hidden 512", "set embed 64", "set layers 2", "load \(text.path)"]
    lines += (0..<40).map { _ in "save \(path)" }
    try lines.joined(separator: "\n").write(to: script, atomically: true, encoding: .utf8)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: charlmBinary)
    process.arguments = [script.path]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    // Until a save has finished, then until the next is under way (its temporary is there, or all 40 are done).
    #expect(waitUntil { (try? Checkpoint.load(from: path))?.config.hiddenSize == 512 }, "no save finished")
    let temporary = ".m.safetensors.tmp-charlm-\(process.processIdentifier)-"
    _ = waitUntil(every: 0.002) {
        !process.isRunning || ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).contains { $0.hasPrefix(temporary) }
    }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    // The target is whole (old or new), and the next save leaves no temporaries behind.
    #expect((try? Checkpoint.load(from: path))?.config.hiddenSize == 512)
    let (_, runner, _) = try smallShell()
    try runner.execute("save \(path)")
    let after = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains(".tmp-") && $0 != live }
    #expect(after.isEmpty, "left behind: \(after)")
}

/// A console that calls `onOut` with everything written to stdout.
private final class WatchingConsole: Console {
    let isTerminal = false, useColor = false, quiet = false, colorMode = ColorMode.none, width = 80
    var onOut: (String) -> Void = { _ in }
    var stderr = ""
    func out(_ text: String) { onOut(text) }
    func err(_ text: String) { stderr += text }
}

@Test func ctrlCIsNeverLeftPendingForTheNextCommand() throws {
    final class Flag: @unchecked Sendable { var raised = false }
    let flag = Flag()
    let console = WatchingConsole()
    let session = Session(console: console)
    session.interruptRequested = { flag.raised }
    session.clearInterrupt = { flag.raised = false }
    let runner = Runner(session: session)
    try runner.execute("set hidden 8")
    try runner.execute("load \(fixture("tiny.txt"))")
    let path = try temporaryFolder().appendingPathComponent("s.safetensors").path
    // Ctrl-C during a command that runs to the end (save): a script stops after it and says that it finished.
    console.onOut = { if $0.hasPrefix("saved") { flag.raised = true } }
    #expect(runner.run(ArrayLineSource(["save \(path)", "echo after"]), name: "s.clm") == .interrupted)
    #expect(console.stderr.contains("s.clm:1: error: interrupted by Ctrl-C; `save` had finished"))
    #expect((try? Checkpoint.load(from: path)) != nil)
    // Pressed between two commands: the script stops before the next.
    flag.raised = true
    console.onOut = { _ in }
    #expect(runner.run(ArrayLineSource(["echo one"]), name: "t.clm") == .interrupted)
    #expect(console.stderr.contains("t.clm:1: error: interrupted by Ctrl-C before this command"))
    // At the prompt a stale Ctrl-C is forgotten: the next command runs whole.
    flag.raised = true
    runner.interactive = true
    var printed = ""
    console.onOut = { printed += $0 }
    #expect(runner.run(ArrayLineSource(["gen \"a\" 30"]), name: nil) == .success)
    #expect(printed.count == 1 + 30 + 1, "gen was cut short: \(printed)")
    // Ctrl-C during eval (asked between batches) stops it and changes nothing.
    runner.interactive = false
    flag.raised = false
    final class Counter: @unchecked Sendable { var asked = 0 }
    let counter = Counter()
    session.interruptRequested = { counter.asked += 1; return counter.asked > 1 }
    #expect(runner.run(ArrayLineSource(["eval"]), name: "e.clm") == .interrupted)
    #expect(console.stderr.contains("e.clm:1: error: `eval` interrupted by Ctrl-C; nothing was changed"))
}

/// Pauses `program`, notes `progress()` of its work so far, sends it Ctrl-C (SIGINT) when `interrupting`, and lets it
/// go on: the signal is then handled at a known point of its work, however late this test got to send it.
private func whilePaused<Progress>(_ program: RunningProgram, interrupting: Bool = false,
                                   noting progress: () -> Progress) throws -> Progress {
    try #require(pause(program.pid), "it ended first: \(program.stderr)")
    let noted = progress()
    if interrupting { kill(program.pid, SIGINT) }
    resume(program.pid)
    return noted
}

/// The number that follows `label` in `text` ("stopped after step 12"), thousands separators dropped.
private func number(after label: String, in text: String) -> Int? {
    let text = unwrapped(text)
    guard let range = text.range(of: label) else { return nil }
    return Int(text[range.upperBound...].prefix { $0.isNumber || $0 == "," }.filter(\.isNumber))
}

@Test func ctrlCStopsEveryLongCommandInBatchModeWith130() throws {
    let folder = try temporaryFolder()
    let text = try randomText(1_000_000)
    let setup = ["-c", "set hidden 256", "-c", "set val 0.5", "-c", "load \(text.path)"]
    // How soon each command stops is counted in its own work (steps, characters, processor time), not in seconds: a
    // busy machine stretches seconds (a training step here took 1.5 s beside one other busy program). The program is
    // paused once the long command is under way, its progress noted, then Ctrl-C is sent and it goes on.

    // train for a time: stops after the step under way. The metrics log has a line per step done.
    let log = folder.appendingPathComponent("steps.csv").path
    func stepsLogged() -> Int {
        let lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n", omittingEmptySubsequences: false)
        return lines.dropLast().compactMap { Int($0.prefix { $0 != "," }) }.max() ?? 0  // (the last may be cut short)
    }
    let train = try RunningProgram(setup + ["-c", "set log \(log)", "-c", "train 10m"], in: folder)
    #expect(waitUntil { stepsLogged() >= 1 }, "no step logged: \(train.stderr)")
    let stepsBefore = try whilePaused(train, interrupting: true) { stepsLogged() }
    train.waitForExit()
    #expect(train.process.terminationStatus == 130, "train: \(train.stderr)")
    let stoppedAfter = number(after: "stopped after step ", in: train.stderr)
    #expect(stoppedAfter == stepsBefore || stoppedAfter == stepsBefore + 1,
            "Ctrl-C came after step \(stepsBefore), during the next: \(train.stderr)")

    // gen: a long generation stops between characters; each is written as it is made.
    let gen = try RunningProgram(setup + ["-c", "echo ready", "-c", "gen \"\" 1000000"], in: folder)
    func generated() -> Int {
        let text = gen.stdout
        return text.range(of: "ready\n").map { text[$0.upperBound...].unicodeScalars.count } ?? 0
    }
    #expect(waitUntil { generated() >= 1 }, "no generation: \(gen.stderr)")
    let charactersBefore = try whilePaused(gen, interrupting: true) { generated() }
    gen.waitForExit()
    #expect(gen.process.terminationStatus == 130, "gen: \(gen.stderr)")
    let charactersAfter = number(after: "stopped after ", in: gen.stderr)
    #expect(charactersAfter == charactersBefore || charactersAfter == charactersBefore + 1,
            "Ctrl-C came after \(charactersBefore) characters, during the next: \(gen.stderr)")

    // eval: 500,000 validation characters in some 80 batches; Ctrl-C is asked between batches. It prints nothing
    // until it ends, so its pace is the processor time a whole eval takes (the first one), and the second is
    // interrupted once it has used some.
    let eval = try RunningProgram(setup + ["-c", "echo first", "-c", "eval", "-c", "echo second", "-c", "eval"], in: folder)
    #expect(waitUntil { eval.stdout.hasSuffix("first\n") }, "\(eval.stderr)")
    let firstStarted = try whilePaused(eval) { processorSeconds(eval.pid) ?? 0 }
    #expect(waitUntil { eval.stdout.hasSuffix("second\n") }, "\(eval.stderr)")
    let secondStarted = try whilePaused(eval) { processorSeconds(eval.pid) ?? 0 }
    let whole = secondStarted - firstStarted
    #expect(waitUntil { (processorSeconds(eval.pid) ?? .infinity) - secondStarted >= whole / 20 }, "\(eval.stderr)")
    let signalled = try whilePaused(eval, interrupting: true) { processorSeconds(eval.pid) ?? 0 }
    var last = signalled
    eval.waitForExit { last = processorSeconds(eval.pid) ?? last; return false }
    #expect(eval.process.terminationStatus == 130, "eval: \(eval.stderr)")
    #expect(unwrapped(eval.stderr).contains("`eval` interrupted by Ctrl-C; nothing was changed"), "\(eval.stderr)")
    #expect(eval.stdout.components(separatedBy: "validation loss").count == 2, "the second eval ran to its end")
    #expect(last - signalled < whole / 10,
            "after Ctrl-C eval used \(last - signalled) s of processor time; a whole eval \(whole) s")
}

@Test func smallerHostileInputsGetTheirOwnMessages() throws {
    let folder = try temporaryFolder()
    let (_, runner, _) = try smallShell()
    // A FIFO named as a text is not read (reading it would wait forever for a writer).
    let fifo = folder.appendingPathComponent("pipe").path
    #expect(mkfifo(fifo, 0o644) == 0)
    #expect(message(runner, "load \(fifo)") == "'\(fifo)' is a FIFO (named pipe), not a regular file: name a file")
    #expect(message(runner, "gen @\(fifo)") == "'\(fifo)' is a FIFO (named pipe), not a regular file: name a file")
    // A checkpoint cut inside its header is said to be a damaged checkpoint, not a binary text.
    let path = folder.appendingPathComponent("m.safetensors").path
    try runner.execute("save \(path)")
    let cut = folder.appendingPathComponent("cut.safetensors")
    try Data(try readFileBytes(at: path).prefix(300)).write(to: cut)
    #expect(message(runner, "load \(cut.path)")?.hasPrefix("'\(cut.path)' is not a usable checkpoint: its header length") == true)
    // A script with Windows line endings runs line by line.
    let script = folder.appendingPathComponent("crlf.clm")
    try Data("set temp 0.5\r\nshow temp\r\n".utf8).write(to: script)
    let result = try runCharLM([script.path])
    #expect(result.status == 0 && result.stdout == "temp 0.5\n", "\(result.stderr)")
    // A download from nowhere says why in words.
    let refused = message(runner, "load http://127.0.0.1:1/x.txt") ?? ""
    #expect(refused.hasPrefix("could not download http://127.0.0.1:1/x.txt: nothing answered there"), "\(refused)")
    #expect(!refused.contains("NSURLErrorDomain"))
}

@Test func theMemoryModelMatchesMeasuredPeaks() throws {
    // Each configuration trains one step in a process of its own; its peak memory less that of a tiny run (the
    // runtime, BLAS, the corpus) is what the configuration allocated. The model must be within 20% of it.
    func run(_ options: [String]) throws -> (peakMB: Double, config: RecurrentConfig, seq: Int, batch: Int) {
        let result = try runProgram(benchBinary, ["train-speed", "--steps", "1", "--warmup", "0"] + options, in: try temporaryFolder())
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let config = RecurrentConfig(vocabularySize: object["vocabulary"] as! Int, embeddingSize: object["embed"] as! Int,
                                 hiddenSize: object["hidden"] as! Int, layerCount: object["layers"] as! Int,
                                 layerKind: LayerKind(rawValue: object["cell"] as! String)!)
        return (object["peak_rss_mb"] as! Double, config, object["seq"] as! Int, object["batch"] as! Int)
    }
    let base = try run(["--hidden", "8", "--embed", "4", "--layers", "1", "--seq", "5", "--batch", "2"]).peakMB
    for options in [["--hidden", "256", "--embed", "64", "--layers", "2", "--seq", "100", "--batch", "64"],
                    ["--hidden", "512", "--embed", "64", "--layers", "2", "--seq", "100", "--batch", "64"],
                    ["--hidden", "128", "--embed", "32", "--layers", "3", "--seq", "200", "--batch", "128"],
                    ["--hidden", "384", "--embed", "64", "--layers", "2", "--seq", "100", "--batch", "64", "--cell", "gru"],
                    ["--hidden", "768", "--embed", "64", "--layers", "2", "--seq", "100", "--batch", "64", "--cell", "rnn"]] {
        let measured = try run(options)
        let allocated = (measured.peakMB - base) * 1_048_576
        let estimate = MemoryModel.trainingBytes(measured.config, length: measured.seq, batch: measured.batch)
        #expect(abs(estimate - allocated) <= 0.2 * allocated,
                "\(options.joined(separator: " ")): estimate \(Int(estimate / 1e6)) MB, measured \(Int(allocated / 1e6)) MB")
    }
}

@Test func theSecondHostileRunsFindingsStayFixed() throws {
    let folder = try temporaryFolder()
    let (session, runner, _) = try smallShell()
    // Settings are checked as typed and as the float32 they are stored as: clip 1e-50 would be 0, clipping off.
    for line in ["set clip 1e-50", "set lr 1.0000000001", "set topp 1e-50", "set temp 100.000001"] {
        #expect(message(runner, line)?.contains("must be") == true, "\(line)")
    }
    #expect(session.settings.clip == 5 && session.settings.lr == 0.002)
    // A file exactly at a fixed limit is read; one byte more is refused, naming the limit.
    let exact = folder.appendingPathComponent("exact.txt")
    try Data(repeating: UInt8(ascii: "a"), count: 1000).write(to: exact)
    #expect(try readFileBytes(at: exact.path, maximumBytes: 1000, limit: "a test").count == 1000)
    #expect(throws: CharLMError.fileTooLarge(path: exact.path, bytes: 1000, maximum: 999, limit: "a test")) {
        try readFileBytes(at: exact.path, maximumBytes: 999, limit: "a test")
    }
    // Saving to no name, or into a path whose folder is a file.
    #expect(message(runner, "save \"\"") == "usage: save [PATH]")
    #expect(message(runner, "cells \"abc\" --html \"\"")?.hasSuffix("that is not a file name: name the file to write") == true)
    let file = folder.appendingPathComponent("afile")
    try Data([1]).write(to: file)
    #expect(message(runner, "save \(file.path)/x.safetensors") == "could not save '\(file.path)/x.safetensors': '\(file.path)' is not a folder")
    // An optimizer state that makes a parameter infinite stops training at once, and such a model is not saved.
    let path = folder.appendingPathComponent("m.safetensors").path
    try runner.execute("train 1 steps; save \(path)")
    var file2 = try SafeTensorsFile.parse(try readFileBytes(at: path), path: path)
    let index = try #require(file2.tensors.firstIndex { $0.name == "optim.exp_avg.fc.bias" })
    file2.tensors[index].values[0] = 3e38
    try writeFileAtomically(file2.serialized(), to: path)
    try runner.execute("load \(path); load \(fixture("tiny.txt"))")
    let stopped = message(runner, "train 1 steps") ?? "trained"
    #expect(stopped.contains("the update made parameter") && stopped.contains("infinite or NaN"), "\(stopped)")
    #expect(message(runner, "save \(folder.appendingPathComponent("broken.safetensors").path)")?.contains("nothing was saved") == true)
    // Charts of finite but enormous losses label their axes with numbers, not inf or nan.
    let chart = brailleChart(training: [1e308, -1e308, 1e308], validation: [ValidationPoint(step: 2, loss: -1e308)], width: 80, height: 12)
    #expect(!chart.contains("inf") && !chart.contains("nan"))
    let svg = lossChartSVG(training: [1e308, -1e308, 1e308], validation: [])
    #expect(!svg.contains("inf") && !svg.contains("nan"))
    // A checkpoint whose header length is impossible is still said to be a damaged checkpoint.
    // (2^56 - 1: its top byte is zero, as in every real length; text never has a NUL.)
    var impossible = [UInt8](repeating: 0xFF, count: 8)
    impossible[7] = 0
    let bad = folder.appendingPathComponent("bad.safetensors")
    try Data(impossible + Array("{\"a\":1}".utf8)).write(to: bad)
    #expect(message(runner, "load \(bad.path)")?.hasPrefix("'\(bad.path)' is not a usable checkpoint: its header length") == true)
}
