// Signals other than Ctrl-C, through the real binary in a child process: SIGTERM and SIGHUP during `train` stop it
// as Ctrl-C does (the step under way finishes, autosave writes the run, the reason is said) and charlm leaves with
// 128 + the signal's number; a file size limit (`ulimit -f`, SIGXFSZ) makes `save` fail with a message, not kill it.

import CharLM
import Foundation
import Testing

@Test(arguments: [(SIGTERM, "SIGTERM"), (SIGHUP, "SIGHUP")])
func aTerminationDuringTrainingAutosavesAndLeavesWithItsCode(signal: Int32, name: String) throws {
    let folder = try temporaryFolder()
    let log = folder.appendingPathComponent("steps.csv").path
    let program = try RunningProgram(["-c", "set hidden 32", "-c", "set embed 8", "-c", "set seq 32", "-c", "set batch 8",
                                      "-c", "set eval 0", "-c", "set autosave 1h", "-c", "set log \(log)",
                                      "-c", "load \(fixture("tiny.txt"))", "-c", "train 100000 steps"], in: folder)
    // Once a step is logged, the run is under way: signal it.
    #expect(waitUntil { ((try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").count ?? 0) >= 2 })
    kill(program.pid, signal)
    #expect(program.waitForExit(), "still running after \(name)")
    #expect(program.process.terminationStatus == 128 + signal, "\(program.stderr)")
    let stderr = program.stderr
    #expect(stderr.contains("interrupted: `train` stopped after step"), "\(stderr)")
    #expect(stderr.contains("autosaved charlm.safetensors at step"), "\(stderr)")
    #expect(stderr.contains("charlm: stopped by \(name)"), "\(stderr)")
    // The autosaved run loads, at the step it stopped after.
    let saved = try Checkpoint.load(from: folder.appendingPathComponent("charlm.safetensors").path)
    #expect((saved.training?.step ?? 0) >= 1)
}

@Test func aFileSizeLimitMakesSaveFailWithAMessage() throws {
    let folder = try temporaryFolder()
    // 64 blocks of 512 bytes: the checkpoint of this model is larger.
    let script = "ulimit -f 64; exec \"\(charlmBinary)\" -c 'set hidden 64' -c 'load \(fixture("tiny.txt"))' -c 'save big.safetensors'"
    let program = try RunningProgram(["-c", script], program: "/bin/bash", in: folder)
    #expect(program.waitForExit())
    #expect(program.process.terminationReason == .exit && program.process.terminationStatus == 1, "\(program.stderr)")
    #expect(program.stderr.contains("error: ") && program.stderr.contains("big.safetensors"), "\(program.stderr)")
    #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("big.safetensors").path))
}

/// `-i` reading commands from a pipe: Ctrl-C drops the half-read line (it is never run, and never run again at the
/// next signal), and SIGTERM ends it with 143.
@Test func signalsWhileReadingCommandsFromAPipe() throws {
    let input = Pipe()
    let program = try RunningProgram(["-i"], input: input)
    input.fileHandleForWriting.write(Data("echo one\nech".utf8))
    #expect(waitUntil { program.stdout.contains("one") && isBlockedReadingStandardInput(program.pid) }, "\(program.stderr)")
    for _ in 0..<2 {
        kill(program.pid, SIGINT)
        #expect(waitUntil { isBlockedReadingStandardInput(program.pid) || !program.process.isRunning })
    }
    input.fileHandleForWriting.write(Data("o two\n".utf8))
    #expect(waitUntil { program.stderr.contains("'o'") || program.stdout.contains("two") })
    kill(program.pid, SIGTERM)
    #expect(program.waitForExit(), "still running after SIGTERM")
    #expect(program.process.terminationStatus == 143, "\(program.stderr)")
    #expect(!program.stderr.contains("'ech'"), "the half-read line ran: \(program.stderr)")
    #expect(program.stderr.contains("charlm: stopped by SIGTERM"), "\(program.stderr)")
}

/// Output into a pipe whose reader has gone (`charlm ... | head -c 10`) is a failed write, said once, exit 1: not
/// death by SIGPIPE.
@Test func aClosedOutputPipeIsAFailedWriteNotADeath() throws {
    let helps = Array(repeating: "-c help", count: 40).joined(separator: " ")
    let script = "\"\(charlmBinary)\" \(helps) | head -c 10 > /dev/null; echo \"status ${PIPESTATUS[0]}\" >&2"
    let program = try RunningProgram(["-c", script], program: "/bin/bash")
    #expect(program.waitForExit())
    #expect(program.stderr.contains("status 1"), "\(program.stderr)")
    let said = program.stderr.components(separatedBy: "cannot write to standard output (Broken pipe)").count - 1
    #expect(said == 1, "\(program.stderr)")
}

/// A script stopped by SIGTERM during a command that is not `train` names SIGTERM, not Ctrl-C, in every message.
@Test func aTerminationDuringAnotherCommandIsNamedAsSuch() throws {
    let folder = try temporaryFolder()
    let corpus = folder.appendingPathComponent("long.txt").path
    try String(repeating: "It is a truth universally acknowledged, that a single man in possession. ", count: 20_000)
        .write(toFile: corpus, atomically: true, encoding: .utf8)
    let program = try RunningProgram(["-c", "set hidden 256", "-c", "set val 0.5", "-c", "load \(corpus)", "-c", "eval",
                                      "-c", "echo after"], in: folder)
    #expect(waitUntil { program.stdout.contains("new model") || program.stderr.contains("new model") }, "\(program.stderr)")
    usleep(300_000)
    kill(program.pid, SIGTERM)
    #expect(program.waitForExit(), "still running after SIGTERM")
    #expect(program.process.terminationStatus == 143, "\(program.stderr)")
    #expect(program.stderr.contains("SIGTERM") && !program.stderr.contains("Ctrl-C"), "\(program.stderr)")
    #expect(!program.stdout.contains("after"))
}
