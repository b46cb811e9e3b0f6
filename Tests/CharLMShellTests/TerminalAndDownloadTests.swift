// The shell in a real terminal (tmux drives the binary through a pseudo-terminal), and downloads from a local HTTP
// server on 127.0.0.1 (never the internet).

@testable import CharLMShell
import CharLM
import Foundation
import Testing

/// Runs a program to completion and returns its stdout.
@discardableResult
private func shell(_ arguments: [String], capture: Bool = true) throws -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    // The test runner starts children with ordinary signals blocked; tmux (and the charlm it runs) need them, so the
    // command starts through python3, which clears the signal mask and then becomes the command.
    process.arguments = ["python3", "-c", "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execvp(sys.argv[1], sys.argv[1:])"] + arguments
    let out = Pipe()
    // A daemon (the tmux server) would hold a captured pipe open forever.
    process.standardOutput = capture ? out : FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    // Starting the tmux server: its client is not waited for. Foundation never sees it end (the server it leaves
    // behind keeps what it inherited), so the caller waits for what it started instead.
    guard capture else { return (0, "") }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

private let tmuxAvailable = FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux")
    || FileManager.default.isExecutableFile(atPath: "/usr/local/bin/tmux")

@Test(.enabled(if: tmuxAvailable, "tmux is not installed (scripts/setup installs it): the real-terminal test cannot run"))
func aRealTerminalCompletesInterruptsAndExits() throws {
    let folder = try temporaryFolder()
    try FileManager.default.copyItem(atPath: fixture("tiny.txt"), toPath: folder.appendingPathComponent("tiny.txt").path)
    let terminal = try TerminalSession(width: 150, height: 40, folder: folder)
    defer { terminal.end() }
    let name = terminal.name
    let history = folder.appendingPathComponent("history").path
    func screen() -> String { terminal.transcript() }
    func send(_ keys: String...) throws { try terminal.send(keys) }
    func waitFor(_ text: String) -> Bool { terminal.waitFor(text) }
    // capture-pane drops trailing spaces, so the prompt reads "charlm>".
    #expect(waitFor("charlm>"), "no prompt: \(screen())")
    // TAB completes a partial command.
    try send("set hid", "Tab")
    #expect(waitFor("charlm> set hidden"), "no completion: \(screen())")
    try send("64", "Enter")
    try send("load tiny.", "Tab")
    #expect(waitFor("charlm> load tiny.txt"), "no file completion: \(screen())")
    try send("Enter")
    #expect(waitFor("loaded tiny.txt"))
    // A long training run, then Ctrl-C: it stops after the current step and the prompt returns.
    try send("train 100000 steps", "Enter")
    #expect(waitFor("tok/s"), "no live progress: \(screen())")
    try send("C-c")
    #expect(waitFor("stopped after step"), "Ctrl-C did not stop training: \(screen())")
    try send("model", "Enter")
    #expect(waitFor("last training loss"), "model lost after Ctrl-C: \(screen())")
    let lines = screen().components(separatedBy: "\n").filter { !$0.isEmpty }
    #expect(lines.last?.hasPrefix("charlm>") == true)
    // Ctrl-C during a long generation stops it, and the next command runs whole (no Ctrl-C is left pending).
    let command = "gen \"\" 1000000"
    try send(command, "Enter")
    let generating = terminal.waitUntil { screen in
        screen.range(of: "charlm> " + command).map { screen[$0.upperBound...].contains { !$0.isWhitespace } } ?? false
    }
    #expect(generating, "no generated text: \(screen())")
    try send("C-c")
    #expect(waitFor("interrupted: `gen` stopped after"), "Ctrl-C did not stop gen: \(screen())")
    try send("echo after-the-interrupt", "Enter")
    let echoed = terminal.waitUntil { screen in
        screen.components(separatedBy: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == "after-the-interrupt" }
    }
    #expect(echoed, "the command after an interrupted gen: \(screen())")
    // Ctrl-C on the prompt clears the line (nothing typed is lost afterwards); Ctrl-D on an empty line exits.
    try send("gen \"half typed", "C-c")
    #expect(waitFor("^C"))
    try send("show seed", "Enter")
    #expect(waitFor("seed 1337"), "typing after Ctrl-C at the prompt: \(screen())")
    // Ctrl-D after training that was never saved: one note, and the second Ctrl-D leaves.
    try send("C-d")
    #expect(waitFor("trained since the last save"), "no unsaved-work note: \(screen())")
    try send("C-d")
    let exited = waitUntil(every: 0.1) { (try? shell(["tmux", "-L", name, "has-session", "-t", name]).0) != 0 }
    #expect(exited, "Ctrl-D did not end charlm: \(screen())")
    // Interactive history was written.
    let saved = (try? String(contentsOfFile: history, encoding: .utf8)) ?? ""
    #expect(saved.contains("train 100000 steps"))
}

/// A charlm in a tmux terminal of `width` x `height` in `folder` (NO_COLOR), and ways to type and read.
private struct TerminalSession {
    let name = "charlm-fit-\(UUID().uuidString.prefix(8))"

    init(width: Int, height: Int, folder: URL, arguments: String = "", environment: String = "") throws {
        let history = folder.appendingPathComponent("history").path
        // charlm runs under a shell that stays (leaving Ctrl-C to charlm): tmux resumes a pane's own process when it
        // stops, and `interruptOnceUnderWay` pauses charlm.
        try shell(["tmux", "-L", name, "new-session", "-d", "-s", name, "-x", String(width), "-y", String(height),
                   "-c", folder.path, "trap : INT; env CHARLM_HISTORY=\(history) NO_COLOR=1 \(environment) \(charlmBinary) \(arguments); exit"],
                  capture: false)
        _ = CharLMShellTests.waitUntil(every: 0.05) { (try? shell(["tmux", "-L", name, "has-session", "-t", name]).0) == 0 }
    }

    /// Everything printed so far (scrollback included), wrapped rows joined back into the lines as written.
    func transcript() -> String { (try? shell(["tmux", "-L", name, "capture-pane", "-p", "-J", "-S", "-5000", "-t", name]).1) ?? "" }
    func send(_ keys: String...) throws { try send(keys) }
    func send(_ keys: [String]) throws { try shell(["tmux", "-L", name, "send-keys", "-t", name] + keys) }
    func waitFor(_ text: String) -> Bool { waitUntil { $0.contains(text) } }
    /// Waits (up to `patience`) until the transcript satisfies `condition`.
    func waitUntil(_ condition: (String) -> Bool) -> Bool { CharLMShellTests.waitUntil(every: 0.1) { condition(transcript()) } }

    /// The charlm process in the terminal: the child of the pane's shell.
    func charlmProcess() -> pid_t? {
        let pane = (try? shell(["tmux", "-L", name, "display-message", "-p", "-t", name, "#{pane_pid}"]).1) ?? ""
        guard let shellProcess = pid_t(pane.trimmingCharacters(in: .whitespacesAndNewlines)),
              let processes = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        return processes.compactMap(pid_t.init).first { pid in
            // /proc/PID/stat: "PID (COMMAND) STATE PPID ..."
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
            return stat.contains("(charlm) ") && stat.split(separator: ")").last?.split(separator: " ").dropFirst().first == "\(shellProcess)"
        }
    }

    /// Types `command` and Enter, and Ctrl-C once the command is under way. Under way: charlm has used a fifth of a
    /// second of processor time since (reading and starting a command takes microseconds; the commands given here
    /// take seconds). Then charlm is paused, Ctrl-C typed, and it goes on once the signal waits for it: so Ctrl-C
    /// lands inside the command however late this test gets to type it (one typed before charlm read the line would
    /// clear the line instead, and one in the moment after would be forgotten at the prompt).
    func interruptOnceUnderWay(_ command: String) throws {
        let pid = try #require(charlmProcess(), "no charlm in the terminal: \(transcript())")
        let before = try #require(processorSeconds(pid))
        try send(command, "Enter")
        try #require(CharLMShellTests.waitUntil { (processorSeconds(pid) ?? .infinity) - before >= 0.2 }, "\(transcript())")
        try #require(pause(pid), "charlm ended: \(transcript())")
        try send("C-c")
        let pending = CharLMShellTests.waitUntil(every: 0.005) { isPending(SIGINT, for: pid) }
        resume(pid)
        #expect(pending, "Ctrl-C did not reach charlm")
    }
    /// The rows on screen now, as shown (no scrollback, wrapped rows apart).
    func screen() -> [String] {
        ((try? shell(["tmux", "-L", name, "capture-pane", "-p", "-t", name]).1) ?? "").split(separator: "\n").map(String.init)
    }
    func resize(width: Int) throws { try shell(["tmux", "-L", name, "resize-window", "-t", name, "-x", String(width)]) }
    func end() { _ = try? shell(["tmux", "-L", name, "kill-server"]) }
}

@Test(.enabled(if: tmuxAvailable, "tmux is not installed (scripts/setup installs it): the real-terminal test cannot run"),
      arguments: [80, 60])
func theShellFitsANarrowTerminal(width: Int) throws {
    let folder = try temporaryFolder()
    var generator = SeededGenerator(seed: 4)
    let letters = Array("abcdefghijklmnopqrstuvwxyz     \n")
    try String((0..<1_000_000).map { _ in letters[generator.nextIndex(below: letters.count)] })
        .write(to: folder.appendingPathComponent("big.txt"), atomically: true, encoding: .utf8)
    // `help` and `show` are taller than the screen: a pager that writes everything keeps them in the transcript.
    let terminal = try TerminalSession(width: width, height: 24, folder: folder, environment: "PAGER=cat")
    defer { terminal.end() }
    #expect(terminal.waitFor("charlm>"), "no prompt: \(terminal.transcript())")
    try terminal.send("set hidden 64; set seq 50; set batch 16; set eval 100; set val 0.5; load big.txt", "Enter")
    #expect(terminal.waitFor("new model"))
    // Training: the live line rewrites itself in place, so what stays is the validations and the summary.
    try terminal.send("train 200 steps", "Enter")
    #expect(terminal.waitFor("steps in "), "training did not finish: \(terminal.transcript())")
    let lines = terminal.transcript().components(separatedBy: "\n")
    // (What was typed at the prompt is the user's own and may be wider.)
    let printed = lines.filter { !$0.hasPrefix("charlm> ") }
    #expect(printed.filter { $0.contains("step ") }.count == 2 + 1, "progress residue:\n\(terminal.transcript())")
    #expect(printed.allSatisfy { $0.count <= width }, "wider than \(width):\n\(printed.filter { $0.count > width }.joined(separator: "\n"))")
    try terminal.send("help", "Enter")
    try terminal.send("help cells", "Enter")
    try terminal.send("show", "Enter")
    try terminal.send("echo shown", "Enter")
    #expect(terminal.waitFor("\nshown"))
    let all = terminal.transcript().components(separatedBy: "\n").filter { !$0.hasPrefix("charlm> ") }
    #expect(all.allSatisfy { $0.count <= width }, "wider than \(width):\n\(all.filter { $0.count > width }.joined(separator: "\n"))")
    guard width == 80 else { return }
    // Ctrl-C stops eval and novelty, and the next command runs whole.
    try terminal.interruptOnceUnderWay("eval")
    #expect(terminal.waitFor("interrupted: `eval` stopped; nothing was changed"), "eval: \(terminal.transcript())")
    try terminal.interruptOnceUnderWay("novelty 1000000")
    #expect(terminal.waitFor("interrupted: `novelty` stopped"), "novelty: \(terminal.transcript())")
    try terminal.send("echo after-the-interrupts", "Enter")
    #expect(terminal.waitFor("\nafter-the-interrupts"))
    try terminal.send("save m.safetensors", "Enter")
    #expect(terminal.waitFor("saved m.safetensors"))
    try terminal.send("quit", "Enter")
    // A checkpoint named on the command line opens at the prompt with its model.
    let reopened = try TerminalSession(width: width, height: 24, folder: folder, arguments: "m.safetensors")
    defer { reopened.end() }
    #expect(reopened.waitFor("charlm>"), "\(reopened.transcript())")
    try reopened.send("model", "Enter")
    #expect(reopened.waitFor("model: LSTM, E 64, H 64, L 2"), "\(reopened.transcript())")
}

@Test func sha256MatchesPublishedVectors() {
    #expect(sha256Hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    #expect(sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    #expect(sha256Hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
}

/// A python3 http.server on 127.0.0.1 serving `folder`, stopped when the returned closure is called.
private func startServer(serving folder: URL) throws -> (port: Int, stop: () -> Void) {
    try startServer { port in ["-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", folder.path] }
}

/// A python3 server on 127.0.0.1 started with `arguments(port)`; it must print "Serving HTTP" once it listens.
private func startServer(_ arguments: (Int) -> [String]) throws -> (port: Int, stop: () -> Void) {
    var generator = SystemRandomNumberGenerator()
    let port = 20_000 + Int(generator.next() % 30_000)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-u"] + arguments(port)
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    // It is ready once it says "Serving HTTP on 127.0.0.1 port N".
    var greeting = Data()
    while !String(decoding: greeting, as: UTF8.self).contains("Serving HTTP") {
        let chunk = out.fileHandleForReading.availableData
        if chunk.isEmpty { break }  // it exited (port taken?)
        greeting += chunk
    }
    // SIGKILL: the test runner starts children with ordinary signals blocked, so SIGTERM would wait forever.
    return (port, { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() })
}

let sharedCorpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../../shared/data/tinyshakespeare.txt").standardizedFileURL.path

@Test(.enabled(if: FileManager.default.fileExists(atPath: sharedCorpus), "../shared/data/tinyshakespeare.txt is absent: the good-checksum download cannot be served"))
func theBuiltInDatasetDownloadsVerifiesAndIsReused() throws {
    let served = try temporaryFolder()
    try FileManager.default.copyItem(atPath: sharedCorpus, toPath: served.appendingPathComponent("input.txt").path)
    let cache = try temporaryFolder()
    let server = try startServer(serving: served)
    let environment = ["CHARLM_CACHE": cache.path, "CHARLM_TINYSHAKESPEARE_URL": "http://127.0.0.1:\(server.port)/input.txt"]
    let first = try runCharLM(["-c", "set hidden 8", "-c", "load tinyshakespeare"], environment: environment)
    server.stop()
    #expect(first.status == 0, "\(first.stderr)")
    #expect(first.stderr.contains("downloading tinyshakespeare from http://127.0.0.1:\(server.port)/input.txt"))
    #expect(first.stdout.contains("1,115,394 characters"))
    // The server is gone; the cache serves.
    let again = try runCharLM(["-c", "set hidden 8", "-c", "load tinyshakespeare"], environment: environment)
    #expect(again.status == 0)
    #expect(!again.stderr.contains("downloading"))
}

@Test func aWrongChecksumOrAMissingServerIsExplainedAndNothingIsCached() throws {
    let served = try temporaryFolder()
    try "not shakespeare\n".write(to: served.appendingPathComponent("input.txt"), atomically: true, encoding: .utf8)
    try "any text at all\n".write(to: served.appendingPathComponent("other.txt"), atomically: true, encoding: .utf8)
    let cache = try temporaryFolder()
    let server = try startServer(serving: served)
    var environment = ["CHARLM_CACHE": cache.path, "CHARLM_TINYSHAKESPEARE_URL": "http://127.0.0.1:\(server.port)/input.txt"]
    let wrong = try runCharLM(["-c", "load tinyshakespeare"], environment: environment)
    #expect(wrong.status == 1)
    #expect(unwrapped(wrong.stderr).contains("has sha256 \(sha256Hex(Array("not shakespeare\n".utf8))), not 86c4e6aa"))
    #expect(unwrapped(wrong.stderr).contains("nothing was saved"))
    #expect(try FileManager.default.contentsOfDirectory(atPath: cache.path).isEmpty)
    // Any URL downloads (no checksum to check) and is cached.
    let url = try runCharLM(["-c", "set hidden 8", "-c", "load http://127.0.0.1:\(server.port)/other.txt"], environment: environment)
    #expect(url.status == 0, "\(url.stderr)")
    #expect(url.stdout.contains("16 characters"))
    let missing = try runCharLM(["-c", "load http://127.0.0.1:\(server.port)/nope.txt"], environment: environment)
    #expect(unwrapped(missing.stderr).contains("the server answered HTTP 404"))
    server.stop()
    // Server down: says how to get the file.
    environment["CHARLM_TINYSHAKESPEARE_URL"] = "http://127.0.0.1:\(server.port)/input.txt"
    let down = try runCharLM(["-c", "load tinyshakespeare"], environment: environment)
    #expect(down.status == 1)
    #expect(unwrapped(down.stderr).contains("could not download http://127.0.0.1:\(server.port)/input.txt"))
    #expect(unwrapped(down.stderr).contains("Offline? Put the file at \(cache.path)/tinyshakespeare.txt (sha256 86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed)"))
}

@Test(.enabled(if: tmuxAvailable, "tmux is not installed (scripts/setup installs it): the real-terminal test cannot run"))
func outputTallerThanTheScreenIsPagedAndClearClears() throws {
    let folder = try temporaryFolder()
    let paged = folder.appendingPathComponent("paged.txt").path
    // A pager that keeps what it was given, so the test can read it.
    let terminal = try TerminalSession(width: 80, height: 24, folder: folder, environment: "PAGER='cat > paged.txt'")
    defer { terminal.end() }
    #expect(terminal.waitFor("charlm>"))
    // `help` is taller than 24 rows: it goes through the pager, not to the screen.
    try terminal.send("help", "Enter")
    #expect(waitUntil { (try? String(contentsOfFile: paged, encoding: .utf8))?.contains("commands (`help COMMAND`") == true })
    #expect(!terminal.transcript().contains("commands (`help COMMAND`"))
    // A short answer is not paged; with the pager off, tall output goes to the screen.
    try FileManager.default.removeItem(atPath: paged)
    try terminal.send("echo short answer", "Enter")
    #expect(terminal.waitFor("short answer"))
    try terminal.send("set pager off", "Enter")
    try terminal.send("help", "Enter")
    #expect(terminal.waitFor("commands (`help COMMAND`"))
    #expect(!FileManager.default.fileExists(atPath: paged))
    // `clear` empties the screen and its scrollback.
    try terminal.send("clear", "Enter")
    #expect(terminal.waitUntil { !$0.contains("short answer") && $0.contains("charlm>") }, "\(terminal.transcript())")
}

@Test(.enabled(if: tmuxAvailable, "tmux is not installed (scripts/setup installs it): the real-terminal test cannot run"))
func narrowingTheTerminalDuringTrainLeavesNoFragmentOfTheLiveLine() throws {
    let folder = try temporaryFolder()
    let terminal = try TerminalSession(width: 120, height: 24, folder: folder)
    defer { terminal.end() }
    #expect(terminal.waitFor("charlm>"))
    try terminal.send("set hidden 16; set seq 20; set batch 4; set eval 0; load \(fixture("tiny.txt")); train 100000 steps", "Enter")
    // The live line at 120 columns is longer than 50: narrowed, a terminal that reflows (tmux) wraps it onto two rows.
    #expect(terminal.waitUntil { $0.contains("ETA") })
    let wide = terminal.screen().last { $0.hasPrefix("step ") } ?? ""
    #expect(wide.count > 50, "\(wide)")
    try terminal.resize(width: 50)
    // Once the line has been drawn again at the new width, one row on screen is the live line, and no other row holds
    // a piece of the old one.
    #expect(terminal.waitUntil { _ in terminal.screen().contains { $0.hasPrefix("step ") && $0.count <= 49 } })
    let rows = terminal.screen().filter { $0.hasPrefix("step ") || $0.contains("tok/s") || $0.contains("ETA") }
    #expect(rows.count == 1, "\(terminal.screen())")
    try terminal.send("C-c")
    #expect(terminal.waitFor("interrupted: `train` stopped"))
}

/// The race the test above can meet only by chance, made certain: the live line is cut to the width read before the
/// terminal was narrowed, and its bytes reach the terminal after the narrowed terminal has re-wrapped the line before
/// it. A shell in tmux writes StandardConsole's own sequences: the first line, then (once this test has narrowed
/// the terminal from 120 to 50 columns and tmux has re-wrapped that line) the erase and the second line. Counting
/// the rows to erase from the width read before the write erased one row and left two of the first line's.
@Test(.enabled(if: tmuxAvailable, "tmux is not installed (scripts/setup installs it): the real-terminal test cannot run"))
func aLiveLineDrawnAfterTheTerminalNarrowedLeavesNoFragmentOfTheOldOne() throws {
    let folder = try temporaryFolder()
    let (old, new) = ("step 1 " + String(repeating: "a", count: 110), "step 2 " + String(repeating: "b", count: 110))
    // What StandardConsole writes: the old line; then, having read 120 columns and 24 rows, the erase and the new line.
    let erase = StandardConsole.erasing(columns: old.count, terminalColumns: 120, terminalRows: 24)
    try Data(StandardConsole.drawing(old).utf8).write(to: folder.appendingPathComponent("old"))
    try Data((erase + StandardConsole.drawing(new)).utf8).write(to: folder.appendingPathComponent("new"))
    let go = folder.appendingPathComponent("go").path
    #expect(mkfifo(go, 0o600) == 0)
    let name = "charlm-race-\(UUID().uuidString.prefix(8))"
    try shell(["tmux", "-L", name, "new-session", "-d", "-s", name, "-x", "120", "-y", "24", "-c", folder.path,
               "clear; seq 1 40; cat old; cat go > /dev/null; cat new; sleep 600"], capture: false)
    defer { _ = try? shell(["tmux", "-L", name, "kill-server"]) }
    func screen() -> [String] {
        ((try? shell(["tmux", "-L", name, "capture-pane", "-p", "-t", name]).1) ?? "").split(separator: "\n").map(String.init)
    }
    #expect(waitUntil(every: 0.05) { screen().contains { $0.hasPrefix("step 1 aaa") } }, "\(screen())")
    try shell(["tmux", "-L", name, "resize-window", "-t", name, "-x", "50"])
    // tmux has re-wrapped the old line onto three rows (at the bottom of the screen, as a live line is after a while:
    // a line with empty rows below it may be pushed into the scrollback instead) before the new one is written.
    #expect(waitUntil(every: 0.05) { screen().filter { $0.hasPrefix("aaa") }.count == 2 }, "\(screen())")
    // The shell waits to read the FIFO: opening it for writing and closing it lets the shell go on.
    let opened = waitUntil(every: 0.05) {
        let trigger = open(go, O_WRONLY | O_NONBLOCK)
        if trigger >= 0 { close(trigger) }
        return trigger >= 0
    }
    #expect(opened, "the shell in tmux never waited at the FIFO: \(screen())")
    #expect(waitUntil(every: 0.05) { screen().contains { $0.hasPrefix("step 2 bbb") } }, "\(screen())")
    let rows = screen().filter { $0.contains("aaa") || $0.contains("bbb") }
    #expect(rows.count == 1 && rows[0].hasPrefix("step 2 "), "\(screen())")
}

/// On a terminal whose TERM says it takes no escape sequences (dumb: Emacs's shell buffer), training shows no live
/// line, only plain lines; the same run on an ordinary terminal draws one. `script` gives charlm a pseudo-terminal
/// and passes on its bytes as written.
@Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script"), "script (util-linux) is not installed"))
func aDumbTerminalGetsNoLiveLine() throws {
    let folder = try temporaryFolder()
    func bytes(term: String) throws -> String {
        let command = "env TERM=\(term) NO_COLOR=1 CHARLM_HISTORY=\(folder.path)/history \(charlmBinary) -c 'set hidden 8' "
            + "-c 'set eval 0' -c 'load \(fixture("tiny.txt"))' -c 'train 300 steps'"
        let run = try runProgram("/usr/bin/script", ["-q", "-e", "-c", command, "/dev/null"], in: folder)
        #expect(run.status == 0, "\(run.stderr)")
        return run.stdout
    }
    let ordinary = try bytes(term: "xterm")
    #expect(ordinary.contains("\u{1B}[?7l") && ordinary.contains("(300 steps in"), "\(ordinary.debugDescription)")
    let dumb = try bytes(term: "dumb")
    #expect(dumb.contains("(300 steps in"), "\(dumb.debugDescription)")
    #expect(!dumb.contains("\u{1B}"), "\(dumb.debugDescription)")
}

/// A live line on the screen's first row (the first thing a run writes after `clear`, or a terminal one row tall),
/// redrawn many times, leaves no copy of itself in tmux's scrollback: erasing to the end of the screen there (ESC [J)
/// made tmux copy the whole screen into its history at every redraw.
@Test(.enabled(if: tmuxAvailable, "tmux is not installed (scripts/setup installs it): the real-terminal test cannot run"))
func liveLinesRedrawnOnTheFirstRowLeaveNoCopiesInTheScrollback() throws {
    let folder = try temporaryFolder()
    var frames = "", shown = 0
    for step in 1...50 {
        let line = "step \(step)  loss 2.0000  12,345 tok/s"
        frames += StandardConsole.erasing(columns: shown, terminalColumns: 80, terminalRows: 24) + StandardConsole.drawing(line)
        shown = line.count
    }
    try Data(frames.utf8).write(to: folder.appendingPathComponent("frames"))
    let name = "charlm-top-\(UUID().uuidString.prefix(8))"
    try shell(["tmux", "-L", name, "new-session", "-d", "-s", name, "-x", "80", "-y", "24", "-c", folder.path,
               "clear; cat frames; sleep 600"], capture: false)
    defer { _ = try? shell(["tmux", "-L", name, "kill-server"]) }
    func everything() -> String { (try? shell(["tmux", "-L", name, "capture-pane", "-p", "-S", "-1000", "-t", name]).1) ?? "" }
    #expect(waitUntil(every: 0.05) { everything().contains("step 50 ") }, "\(everything())")
    let copies = everything().components(separatedBy: "\n").filter { $0.hasPrefix("step ") }
    #expect(copies == ["step 50  loss 2.0000  12,345 tok/s"], "\(copies.count) lines: \(copies.prefix(3))")
}


@Test(.enabled(if: tmuxAvailable && FileManager.default.isExecutableFile(atPath: "/usr/bin/less"),
               "tmux or less is not installed: the real pager cannot be tried"))
func theRealPagerShowsTallOutputAndGivesThePromptBack() throws {
    // less reads keys from the terminal: it runs only in the terminal's foreground process group (a pager started in
    // a group of its own was stopped by the kernel, and charlm waited for it forever).
    let terminal = try TerminalSession(width: 80, height: 24, folder: try temporaryFolder(), environment: "PAGER='less -FRX'")
    defer { terminal.end() }
    #expect(terminal.waitFor("charlm>"))
    try terminal.send("help", "Enter")
    #expect(terminal.waitUntil { _ in terminal.screen().contains { $0.hasPrefix("commands (`help COMMAND`") } })
    try terminal.send("q")
    try terminal.send("echo back at the prompt", "Enter")
    #expect(terminal.waitFor("back at the prompt"))
}

/// SIGTERM (a `kill`, as SIGHUP from a closed terminal) while charlm waits at the prompt ends it at once with 143,
/// and a half-typed line is not run; a history file that is not a regular file (here a FIFO, which would block
/// readline's read) is left alone.
@Test(.enabled(if: tmuxAvailable, "tmux is not installed (scripts/setup installs it): the real-terminal test cannot run"))
func aTerminationAtThePromptEndsTheSessionWithoutRunningTheTypedLine() throws {
    let folder = try temporaryFolder()
    try FileManager.default.copyItem(atPath: fixture("tiny.txt"), toPath: folder.appendingPathComponent("tiny.txt").path)
    let fifo = folder.appendingPathComponent("fifo-history").path
    #expect(mkfifo(fifo, 0o600) == 0)
    let status = folder.appendingPathComponent("status").path
    let terminal = try TerminalSession(width: 80, height: 24, folder: folder,
                                       arguments: "-i -c 'set hidden 8' -c 'load tiny.txt'; echo $? > \(status)",
                                       environment: "CHARLM_HISTORY=\(fifo)")
    defer { terminal.end() }
    #expect(terminal.waitFor("charlm>"), "no prompt (a FIFO history blocks?): \(terminal.transcript())")
    try terminal.send("save typed.safetensors")
    #expect(terminal.waitFor("charlm> save typed.safetensors"))
    let pid = try #require(terminal.charlmProcess(), "no charlm in the terminal: \(terminal.transcript())")
    kill(pid, SIGTERM)
    let exited = waitUntil { (try? String(contentsOfFile: status, encoding: .utf8)) != nil }
    #expect(exited, "SIGTERM at the prompt did not end charlm: \(terminal.transcript())")
    #expect((try? String(contentsOfFile: status, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) == "143")
    #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("typed.safetensors").path))
}

/// A download larger than `load` could take stops as it arrives, announced (Content-Length) or not (a body that
/// runs until the connection closes), and nothing is cached.
@Test func aDownloadLargerThanTheLimitIsStoppedAndNothingIsCached() throws {
    let served = try temporaryFolder()
    try String(repeating: "a", count: 5_000).write(to: served.appendingPathComponent("big.txt"), atomically: true, encoding: .utf8)
    let announced = try startServer(serving: served)
    defer { announced.stop() }
    // HTTP/1.0 without Content-Length: the body ends when the connection closes.
    let endless = try startServer { port in
        ["-c", """
        import http.server as h
        class Endless(h.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200); self.end_headers()
                try:
                    while True: self.wfile.write(b"a" * 65536)
                except OSError: pass
        server = h.HTTPServer(("127.0.0.1", \(port)), Endless)
        print("Serving HTTP", flush=True)
        server.serve_forever()
        """]
    }
    defer { endless.stop() }
    let cache = try temporaryFolder()
    var downloads = Downloads(cacheFolder: cache.path)
    downloads.maximumBytes = 4_096
    let (_, _, console) = makeShell()
    for address in ["http://127.0.0.1:\(announced.port)/big.txt", "http://127.0.0.1:\(endless.port)/"] {
        var message = "no error"
        do { _ = try downloads.fetch(url: address, console: console) } catch { message = "\(error)" }
        #expect(message.contains("the download of \(address) is over 4.1 KB"), "\(message)")
        #expect(message.contains("nothing was saved"), "\(message)")
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: cache.path).isEmpty)
    // Under the limit it downloads.
    downloads.maximumBytes = 5_000
    #expect(try downloads.fetch(url: "http://127.0.0.1:\(announced.port)/big.txt", console: console).hasPrefix(cache.path))
}

/// `charlm -i SCRIPT` (how `scripts/charlm` runs the demo): Ctrl-C during the script's `train` stops the script and
/// leaves its session, trained steps and all, at the prompt; Ctrl-C at a `pause` says it stopped there.
@Test(.enabled(if: tmuxAvailable, "tmux is not installed (scripts/setup installs it): the real-terminal test cannot run"))
func ctrlCInAScriptRunWithDashILeavesItsSessionAtThePrompt() throws {
    let folder = try temporaryFolder()
    try FileManager.default.copyItem(atPath: fixture("tiny.txt"), toPath: folder.appendingPathComponent("tiny.txt").path)
    try "set hidden 32\nset seq 20\nset batch 4\nset eval 0\nload tiny.txt\ntrain 1000000 steps\necho never\n"
        .write(to: folder.appendingPathComponent("long.clm"), atomically: true, encoding: .utf8)
    let terminal = try TerminalSession(width: 80, height: 24, folder: folder, arguments: "-i long.clm")
    defer { terminal.end() }
    #expect(terminal.waitFor("step "), "\(terminal.transcript())")
    try terminal.send("C-c")
    #expect(terminal.waitFor("charlm>"), "no prompt after Ctrl-C in the script: \(terminal.transcript())")
    #expect(terminal.transcript().contains("the script stopped there; the session is as it left it"))
    #expect(!terminal.transcript().contains("never"))
    try terminal.send("model", "Enter")
    #expect(terminal.waitUntil { $0.contains("\nstep ") && $0.contains("epoch") }, "\(terminal.transcript())")

    try "echo first\npause\necho second\n".write(to: folder.appendingPathComponent("paused.clm"), atomically: true, encoding: .utf8)
    // (With -i, so the terminal stays open to be read once the script has stopped.)
    let paused = try TerminalSession(width: 80, height: 24, folder: folder, arguments: "-i paused.clm")
    defer { paused.end() }
    #expect(paused.waitFor("[press Enter to go on]"), "\(paused.transcript())")
    usleep(500_000)  // the note is written just before the read starts
    try paused.send("C-c")
    #expect(paused.waitFor("stopped at the pause by Ctrl-C") && paused.waitFor("charlm>"), "\(paused.transcript())")
    #expect(!paused.transcript().contains("had finished") && !paused.transcript().contains("second"))
    #expect(!paused.transcript().contains("^Cpaused.clm"), "the message starts on its own line: \(paused.transcript())")
}
