// The built binary: scripts, -c, -q, exit codes, error locations, resuming across processes.

import CharLM
@testable import CharLMShell
import Foundation
import Testing

/// A folder holding copies of the fixtures, so scripts can use relative paths and write files.
private func workFolder() throws -> URL {
    let folder = try temporaryFolder()
    for name in ["tiny.txt", "e2e.clm"] {
        try FileManager.default.copyItem(atPath: fixture(name), toPath: folder.appendingPathComponent(name).path)
    }
    return folder
}

@Test func aScriptRunsEndToEndAndTheSavedModelGeneratesTheSameText() throws {
    let folder = try workFolder()
    let result = try runCharLM(["e2e.clm"], in: folder)
    #expect(result.status == 0, "stderr: \(result.stderr)")
    let lines = result.stdout.components(separatedBy: "\n")
    // What the script prints, line by line: the load report, the two models, the generated text twice (identical:
    // same seed, same parameters after the round trip), the save and load reports.
    let corpus = try Corpus.load(path: folder.appendingPathComponent("tiny.txt").path, normalization: .init())
    let generated = lines.first { $0.hasPrefix("romeo:") } ?? ""
    #expect(generated.count == "romeo:".count + 40)
    let size = try FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent("e2e.safetensors").path)[.size] as! Int
    let config = "LSTM, E 8, H 16, L 2, V \(corpus.vocabulary.count)"
    let parameters = RecurrentLayout(config: RecurrentConfig(vocabularySize: corpus.vocabulary.count, embeddingSize: 8, hiddenSize: 16, layerCount: 2)).totalCount
    let expected = """
    loaded tiny.txt: 6,000 characters, \(corpus.vocabulary.count) distinct; training 5,400, validation 600
      normalisation: lowercase on, ascii on; \(corpus.report.lowercased) characters lowercased
    new model: \(config): \(grouped(parameters)) parameters
    \(generated)
    saved e2e.safetensors (\(grouped(size)) bytes)
    new model: \(config): \(grouped(parameters)) parameters
    loaded checkpoint e2e.safetensors, step 5
      model: \(config): \(grouped(parameters)) parameters
    \(generated)

    """
    #expect(result.stdout == expected)
    // The checkpoint holds the 5 steps.
    let checkpoint = try Checkpoint.load(from: folder.appendingPathComponent("e2e.safetensors").path)
    #expect(checkpoint.training?.step == 5 && checkpoint.training?.lossHistory.count == 5)
}

@Test func quietModePrintsOnlyGeneratedTextAndWhatWasAskedFor() throws {
    let folder = try workFolder()
    let result = try runCharLM(["-q", "-c", "set hidden 8", "-c", "load tiny.txt", "-c", "seed 3", "-c", "gen \"the\" 25", "-c", "show temp"], in: folder)
    #expect(result.status == 0)
    #expect(result.stdout.count == "the".count + 25 + 1 + "temp 1\n".count)
    #expect(result.stdout.hasPrefix("the") && result.stdout.hasSuffix("\ntemp 1\n"))
    #expect(result.stderr.isEmpty)
}

@Test func scriptErrorsNameTheFileAndLineAndStopUnlessKeepGoing() throws {
    let folder = try workFolder()
    let script = folder.appendingPathComponent("bad.clm")
    try "set hidden 8\n\n# comment\nset temp -2\nshow temp\n".write(to: script, atomically: true, encoding: .utf8)
    let stopped = try runCharLM(["bad.clm"], in: folder)
    #expect(stopped.status == 1)
    #expect(stopped.stderr == "bad.clm:4: error: temp must be a number from 0 to 100; got '-2'\n")
    #expect(stopped.stdout == "")
    let kept = try runCharLM(["--keep-going", "bad.clm"], in: folder)
    #expect(kept.status == 1)
    #expect(kept.stdout == "temp 1\n")
}

@Test func continuationLinesAndNestedSourceWithRelativePaths() throws {
    let folder = try workFolder()
    let sub = folder.appendingPathComponent("sub")
    try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: false)
    try "show \\\n  temp\nsource inner.clm\n".write(to: folder.appendingPathComponent("outer.clm"), atomically: true, encoding: .utf8)
    try "temp 0.25\nsource deeper/last.clm\n".write(to: folder.appendingPathComponent("inner.clm"), atomically: true, encoding: .utf8)
    try FileManager.default.createDirectory(at: folder.appendingPathComponent("deeper"), withIntermediateDirectories: false)
    try "show temp\nbogus\n".write(to: folder.appendingPathComponent("deeper/last.clm"), atomically: true, encoding: .utf8)
    let result = try runCharLM(["outer.clm"], in: folder)
    #expect(result.stdout == "temp 1\ntemp 0.25\n")
    #expect(result.stderr == "./deeper/last.clm:2: error: unknown command 'bogus'; `help` lists the commands\n")
    #expect(result.status == 1)
    // A script that sources itself hits the nesting cap with a clear message.
    try "source loop.clm\n".write(to: folder.appendingPathComponent("loop.clm"), atomically: true, encoding: .utf8)
    let loop = try runCharLM(["loop.clm"], in: folder)
    #expect(loop.status == 1)
    #expect(unwrapped(loop.stderr).contains("error: scripts nested deeper than 8 levels: does 'loop.clm' source itself?"))
}

@Test func exitCodesFollowTheConvention() throws {
    let folder = try workFolder()
    #expect(try runCharLM(["-c", "show seed"], in: folder).status == 0)
    let failed = try runCharLM(["-c", "load nothing-here.txt", "-c", "show seed"], in: folder)
    #expect(failed.status == 1)
    #expect(failed.stderr == "error: no such file 'nothing-here.txt': check the path\n")
    #expect(failed.stdout == "", "commands after a failure do not run")
    let usage = try runCharLM(["--no-such-flag"], in: folder)
    #expect(usage.status == 2)
    #expect(usage.stderr.contains("Unknown option '--no-such-flag'"))
    // Commands from stdin when it is not a terminal.
    let piped = try runCharLM([], in: folder, input: "seed 9\nshow seed\n")
    #expect(piped.status == 0 && piped.stdout == "seed 9\n")
}

@Test func ctrlCInBatchModeStopsWith130() throws {
    let folder = try workFolder()
    // Ctrl-C once training is under way: the metrics log has its first step.
    let log = folder.appendingPathComponent("steps.csv").path
    let program = try RunningProgram(["-c", "set hidden 64", "-c", "set log steps.csv", "-c", "load tiny.txt",
                                      "-c", "train 100000 steps", "-c", "show seed"], in: folder)
    #expect(waitUntil { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("\n1,") }, "\(program.stderr)")
    program.process.interrupt()  // SIGINT
    #expect(program.waitForExit(), "still training: \(program.stderr)")
    #expect(program.process.terminationStatus == 130)
    #expect(unwrapped(program.stderr).contains("stopped after step"))
    #expect(unwrapped(program.stderr).contains("the model and optimizer are consistent"))
}

@Test func ctrlCWhileWaitingForPipedInputStopsWith130() throws {
    // Commands piped in, the pipe still open: charlm waits for the next line when Ctrl-C comes. It must stop with
    // 130 at once (Swift's readLine spun forever at full speed here, its stream's error flag set by the signal).
    let input = Pipe()
    let program = try RunningProgram([], input: input)
    input.fileHandleForWriting.write(Data("echo first\r\n".utf8))
    // Ctrl-C once it ran that line and waits for the next, blocked reading stdin.
    #expect(waitUntil { program.stdout == "first\n" && isBlockedReadingStandardInput(program.pid) }, "\(program.stderr)")
    let before = processorSeconds(program.pid) ?? 0
    program.process.interrupt()  // SIGINT
    // Ending takes it a few milliseconds of processor time; the spinning took all it could get, so a second of it
    // means it spins, however busy the machine (which only delays when it gets the processor).
    let stopped = program.waitForExit { (processorSeconds(program.pid) ?? before) - before > 1 }
    try? input.fileHandleForWriting.close()
    #expect(stopped, "still running after using a second of processor time since Ctrl-C")
    #expect(program.process.terminationStatus == 130)
    #expect(program.stdout == "first\n", "\\r\\n ends a line")
    #expect(program.stderr.contains("interrupted by Ctrl-C"))
}

@Test func resumingInANewProcessIsBitIdentical() throws {
    let folder = try workFolder()
    let setup = ["-c", "set hidden 16", "-c", "set embed 8", "-c", "set seq 20", "-c", "set batch 4", "-c", "set eval 0", "-c", "set dropout 0.1", "-c", "load tiny.txt"]
    // One process: 6 steps, save, 4 more, save.
    let straight = try runCharLM(setup + ["-c", "train 6 steps", "-c", "save half.safetensors", "-c", "train 4 steps", "-c", "save straight.safetensors"], in: folder)
    #expect(straight.status == 0, "\(straight.stderr)")
    // Another process: load the half-way file and the text, 4 more steps.
    let resumed = try runCharLM(["-c", "load half.safetensors", "-c", "load tiny.txt", "-c", "train 4 steps", "-c", "save resumed.safetensors"], in: folder)
    #expect(resumed.status == 0, "\(resumed.stderr)")
    let a = try Checkpoint.load(from: folder.appendingPathComponent("straight.safetensors").path)
    let b = try Checkpoint.load(from: folder.appendingPathComponent("resumed.safetensors").path)
    #expect(a.parameters == b.parameters)
    #expect(a.optimizer == b.optimizer)
    #expect(a.training?.lossHistory == b.training?.lossHistory && a.training?.step == 10)
}
