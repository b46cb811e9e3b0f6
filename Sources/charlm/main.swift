// charlm: the executable. Reads argv, picks interactive (readline) or batch input, and maps outcomes to exit
// codes: 0 success, 1 a command failed, 2 bad usage, 130 interrupted in batch mode, 143 or 129 stopped by SIGTERM or
// SIGHUP.

import ArgumentParser
import CharLM
import CharLMShell
import Foundation

/// This build's version, for `charlm --version`.
let charlmVersion = "0.4.0"

struct CharLMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "charlm",
        abstract: "A character-level language model you train and sample from a shell.",
        discussion: """
        Files named on the command line are run or loaded in order: a script (.clm, or text whose every line is a \
        command) runs line by line; a checkpoint or a text corpus is loaded, as `load` would. With no script and no \
        -c, charlm then opens the charlm> prompt when stdin is a terminal, and otherwise reads commands from stdin, \
        one per line (errors name <stdin>:LINE and stop it). Type `help` at the prompt for the commands.
        """,
        version: "charlm \(charlmVersion)")

    @Argument(help: ArgumentHelp("Scripts to run, checkpoints and texts to load, in order.", valueName: "file"))
    var files: [String] = []

    @Option(name: .customShort("c"), help: ArgumentHelp("Run a command, then exit (repeatable).", valueName: "command"))
    var commands: [String] = []

    @Flag(name: .customShort("i"), help: "Stay interactive after running the scripts and commands.")
    var interactive = false

    @Flag(name: .customShort("q"), help: "Quiet: only generated text, requested output and errors.")
    var quiet = false

    @Flag(name: .long, help: "Scripts continue after a failing command.")
    var keepGoing = false

    /// A `CHARLM_VECTOR_BITS` charlm cannot follow is bad usage, refused before anything runs.
    func validate() throws {
        do {
            _ = try CPUClass.fromEnvironment()
        } catch {
            throw ValidationError(error.description)
        }
    }

    mutating func run() throws {
        let console = StandardConsole(quiet: quiet)
        let session = Session(console: console)
        let runner = Runner(session: session)
        runner.keepGoing = keepGoing
        Interrupts.install()
        session.interruptRequested = { Interrupts.pending }
        session.clearInterrupt = { Interrupts.clear() }
        session.interruptionName = { Interrupts.terminationSignal.map { $0 == SIGHUP ? "SIGHUP" : "SIGTERM" } ?? "Ctrl-C" }
        console.pagingEnabled = { [unowned session] in session.settings.pager }
        if isTerminal(.input) && isTerminal(.error) {
            session.waitForEnter = { _ = readLineUnbuffered() }
            session.whileRunningLong = { keep, body in try withoutTerminalEcho(keepTypedKeys: keep, body) }
        }

        var status: Runner.Status = .success
        var ranScript = false
        for file in files where (status == .success || keepGoing) && Interrupts.terminationSignal == nil {
            do {
                switch FileRole.of(file) {
                case .script:
                    ranScript = true
                    try runner.source(file)
                case .data:
                    try session.load(file)
                }
            } catch is Interrupted {
                status = .interrupted
            } catch is AlreadyReported {
                status = .failed
            } catch CharLMError.cancelled {
                status = .interrupted
            } catch {
                console.error(Runner.describe(error))
                status = .failed
            }
            if status == .interrupted || runner.quitRequested { break }
        }
        if !commands.isEmpty && (status == .success || keepGoing) && !runner.quitRequested && Interrupts.terminationSignal == nil {
            let result = runner.run(ArrayLineSource(commands), name: nil)
            if result != .success { status = result }
        }
        let stdinIsTerminal = isTerminal(.input)
        let readsCommands = !ranScript && commands.isEmpty
        let stayInteractive = interactive || (readsCommands && stdinIsTerminal)
        let terminated = Interrupts.terminationSignal != nil
        // With -i at a terminal, a script stopped by Ctrl-C leaves its session at the prompt (as `python -i` does).
        let interruptedToPrompt = interactive && stdinIsTerminal && status == .interrupted
        if stayInteractive && (status != .interrupted || interruptedToPrompt) && !runner.quitRequested && !terminated {
            runner.interactive = true
            if interruptedToPrompt {
                Interrupts.clear()
                console.note("the script stopped there; the session is as it left it (`model` shows it)\n")
            }
            if stdinIsTerminal {
                console.note(session.model == nil
                    ? "charlm: a character-level language model. `help` lists the commands; `load tinyshakespeare` to start.\n"
                    : "charlm: a character-level language model. `help` lists the commands.\n")
                let source = ReadlineLineSource(session: session)
                runner.afterEachLine = { source.saveHistory() }
                runner.historyProvider = { source.entries() }
                session.guardsUnsavedWork = true
                _ = runner.run(source, name: nil, prompt: "charlm> ")
                source.saveHistory()
                status = .success
            } else {
                status = runner.run(StandardInputLineSource(), name: "<stdin>")
            }
        } else if readsCommands && status == .success && !terminated {
            status = runner.run(StandardInputLineSource(), name: "<stdin>")
        }
        if let signal = Interrupts.terminationSignal {
            console.note("charlm: stopped by \(signal == SIGHUP ? "SIGHUP" : "SIGTERM")\n")
            throw ExitCode(128 + signal)
        }
        if status != .success { throw ExitCode(Self.exitCode(for: status)) }
        // Output that could not be written (a full disk, a closed stdout) is a failure, as for `cat`.
        if console.outputFailed { throw ExitCode(1) }
    }

    /// 0 success, 1 a command failed, 130 interrupted (as a shell reports death by SIGINT).
    static func exitCode(for status: Runner.Status) -> Int32 {
        switch status {
        case .success: return 0
        case .failed: return 1
        case .interrupted: return 130
        }
    }
}

/// Lines from stdin without a prompt (batch mode).
final class StandardInputLineSource: LineSource {
    private let lines = StandardInputLines()
    /// A Ctrl-C while waiting for the next line ends the wait; the runner then stops with status 130 (or, with -i,
    /// goes on with the next line). SIGTERM or SIGHUP ends the input.
    func nextLine(prompt: String) -> String? {
        guard Interrupts.terminationSignal == nil else { return nil }
        let line = lines.next(interrupted: { Interrupts.pending })
        return Interrupts.terminationSignal == nil ? line : nil
    }
}

// Bad usage exits with 2 (ArgumentParser's own default is 64); help and version exit 0.
do {
    var command = try CharLMCommand.parseAsRoot()
    try command.run()
} catch let exit as ExitCode {
    Foundation.exit(exit.rawValue)
} catch {
    let code = CharLMCommand.exitCode(for: error)
    let message = CharLMCommand.fullMessage(for: error)
    if code == .success {
        print(message)
        Foundation.exit(0)
    }
    FileHandle.standardError.write(Data((message + "\n").utf8))
    Foundation.exit(2)
}
