// `samples K` in the shell: K samples under their headers, the same K for the same seed, sample k the same text
// whatever K, `samples 1` unchanged, the shorthand, the help, and the memory check before anything is generated.

@testable import CharLMShell
import CharLM
import Foundation
import Testing

/// A shell with a small trained model on the tiny fixture.
private func trainedShell() throws -> (Session, Runner, BufferConsole) {
    try makeShell(running: ["set hidden 16", "set embed 4", "set seq 20", "set batch 4", "set eval 0",
                            "load \(fixture("tiny.txt"))", "train 20 steps"])
}

/// The K texts `gen` wrote in `output`, each after its header (prompt included).
private func samples(in output: String) -> [String] {
    output.components(separatedBy: "--- sample ").dropFirst().map { block in
        String(block.drop(while: { $0 != "\n" }).dropFirst()).trimmingCharacters(in: .newlines)
    }
}

@Test func samplesAreWrittenUnderHeadersAndFollowTheSeed() throws {
    let (_, runner, console) = try trainedShell()
    func generate(_ lines: [String]) throws -> String {
        let before = console.stdout.count
        for line in lines { try runner.execute(line) }
        return String(console.stdout.dropFirst(before))
    }
    let three = try generate(["seed 7", "samples 3", "gen \"the\" 40"])
    #expect(three.contains("--- sample 1 of 3 ---\n") && three.contains("--- sample 3 of 3 ---\n"))
    let texts = samples(in: three)
    #expect(texts.count == 3)
    #expect(texts.allSatisfy { $0.hasPrefix("the") && $0.count == 43 }, "\(texts)")
    #expect(Set(texts).count == 3, "each sample its own stream")
    // the same seed, the same samples; sample k is the same text whatever K
    #expect(samples(in: try generate(["seed 7", "gen \"the\" 40"])) == texts)
    let five = samples(in: try generate(["seed 7", "samples 5", "gen \"the\" 40"]))
    #expect(Array(five.prefix(3)) == texts)
    // samples 1 is gen's single stream, as before the setting existed
    let single = try generate(["seed 7", "samples 1", "gen \"the\" 40"])
    #expect(!single.contains("--- sample"))
    let (_, plainRunner, plainConsole) = try trainedShell()
    for line in ["seed 7", "gen \"the\" 40"] { try plainRunner.execute(line) }
    #expect(plainConsole.stdout.hasSuffix(single))
}

@Test func samplesHasAShorthandHelpAndARangeAndIsCheckedAgainstMemory() throws {
    let (session, runner, console) = try trainedShell()
    try runner.execute("samples 4")
    #expect(session.settings.samples == 4)
    try runner.execute("help gen")
    #expect(console.stdout.contains("samples K"))
    #expect(thrownError(runner, "samples 257").map(Runner.describe)?.contains("from 1 to 256") == true)
    // 256 samples of a million characters each hold 1 GB: checked (here, under a 1.5 GB address-space cap,
    // refused) before anything is generated.
    let command = "ulimit -v 1500000; exec '\(charlmBinary)' -c 'set hidden 8' -c 'load \(fixture("tiny.txt"))' "
        + "-c 'samples 256' -c 'gen \"a\" 1000000'"
    let capped = try runProgram("/bin/sh", ["-c", command])
    #expect(capped.status == 1)
    #expect(unwrapped(capped.stderr).contains("error: 256 samples of 1,000,000 characters needs about 1.0 GB of memory"),
            "\(capped.stderr)")
    // the share the check allows, with the amount: the figures the message gives agree with the refusal
    #expect(unwrapped(capped.stderr).contains("available, of which charlm takes at most 80% ("), "\(capped.stderr)")
    #expect(unwrapped(capped.stderr).hasSuffix("): lower `samples` or N\n"), "\(capped.stderr)")
}

/// Found by the hostile-input run: under an address-space cap, `samples 2` on a large model crashed allocating its
/// stepper after the budget check (the prompt's first BLAS product had mapped OpenBLAS's buffers in between), and a
/// model that fitted hung in OpenBLAS retrying its buffer's mapping. Now each refuses, or runs, and exits promptly.
@Test func aTightAddressSpaceCapGivesARefusalNotACrashOrAHang() throws {
    let text = try temporaryFolder().appendingPathComponent("small.txt")
    try String(repeating: "first citizen: before we proceed any further, hear me speak.\n", count: 300)
        .write(to: text, atomically: true, encoding: .utf8)
    for (cap, settings) in [(3_000_000, "-c 'set hidden 4096' -c reset -c 'set samples 2'"),
                            (1_200_000, "-c 'set hidden 2048' -c 'set layers 3' -c reset")] {
        // The hang lasted for ever, so the timeout only keeps the test from waiting for ever: it is the patience of
        // every wait here, far above what a run takes on a busy machine (up to 10 s). A hang shows as exit 124.
        let command = "ulimit -v \(cap); exec timeout \(Int(patience)) '\(charlmBinary)' -q -c 'load \(text.path)' \(settings) "
            + "-c 'gen \"romeo\" 5'"
        let result = try runProgram("/bin/sh", ["-c", command])
        #expect(result.status == 0 || result.status == 1, "exit \(result.status): \(result.stderr)")
        if result.status == 1 {
            #expect(unwrapped(result.stderr).contains("of memory; the machine has"), "\(result.stderr)")
        }
    }
}

/// Found by the hostile-input run: output to a closed or full stdout stopped the program (Foundation's FileHandle
/// traps on a failed write). Now the failure is said once on stderr, the commands go on, and the exit status is 1.
@Test func aFullStandardOutputIsSaidNotACrash() throws {
    let command = "exec '\(charlmBinary)' -q -c 'echo one' -c 'echo two' > /dev/full"
    let result = try runProgram("/bin/sh", ["-c", command])
    #expect(result.status == 1, "\(result.stderr)")
    #expect(result.stderr == "charlm: cannot write to standard output (No space left on device); its output is dropped\n")
}

@Test func aGenerationRefusedAfterItsPromptEndsThePromptsLine() throws {
    // The transformer's decoder checks its memory once `gen` has echoed the prompt: the refusal must not be glued to
    // the prompt's line (at a terminal both share the screen). Context 8192 with 8 heads needs about 2 GB.
    let command = "ulimit -v 1500000; exec '\(charlmBinary)' -c 'set arch transformer' -c 'set context 8192' "
        + "-c 'set heads 8' -c 'load \(fixture("tiny.txt"))' -c 'gen \"hi\" 5'"
    let refused = try runProgram("/bin/sh", ["-c", command])
    #expect(refused.status == 1)
    #expect(unwrapped(refused.stderr).contains("error: generating 1 sample with context 8192 needs about"),
            "\(refused.stderr)")
    #expect(refused.stdout.hasSuffix("\nhi\n"), "\(refused.stdout)")
}
