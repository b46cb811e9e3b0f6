// The only file that talks to GNU readline: the interactive line source (editing, persistent history, tab
// completion through the shell core's `completions`) and the Ctrl-C flag.

import CharLMShell
import CReadline
import Foundation

/// Ctrl-C, SIGTERM and SIGHUP: flags set by the C handlers in the readline shim, polled by the session.
enum Interrupts {
    static var pending: Bool { charlm_interrupt_pending() != 0 }
    /// SIGTERM or SIGHUP, once one came: charlm stops what it does and leaves with 128 + its number.
    static var terminationSignal: Int32? {
        let number = charlm_termination_signal_number()
        return number == 0 ? nil : number
    }
    static func clear() { charlm_interrupt_clear() }
    static func install() { charlm_install_interrupt_handler() }
}

/// The session whose state completion consults (readline's callbacks are plain C functions).
nonisolated(unsafe) private var completionSession: Session?
nonisolated(unsafe) private var completionCandidates: [String] = []

/// Reads lines with GNU readline at the `charlm>` prompt.
final class ReadlineLineSource: LineSource {
    private let historyPath: String

    init(session: Session) {
        historyPath = ProcessInfo.processInfo.environment["CHARLM_HISTORY"]
            ?? (homeFolder() as NSString).appendingPathComponent(".charlm_history")
        completionSession = session
        charlm_readline_configure(strdup("charlm")) { text, _, _ in
            let line = String(cString: charlm_readline_line())
            completionCandidates = completions(line: line, cursor: Int(charlm_readline_point()), session: completionSession)
            let single = completionCandidates.count == 1
            charlm_readline_completion_done(single && completionCandidates[0].hasSuffix("/") ? 0 : 32)
            return rl_completion_matches(text) { _, state in
                let index = Int(state)
                guard index < completionCandidates.count else { return nil }
                return strdup(completionCandidates[index])
            }
        }
        using_history()
        stifle_history(1000)
        if historyIsPlainFile { read_history(historyPath) }
    }

    /// The history file is read and written only when it is a regular file or not there yet: a FIFO, a device or a
    /// directory named by CHARLM_HISTORY would block or fail (readline opens it without asking what it is).
    private var historyIsPlainFile: Bool {
        var status = stat()
        guard stat(historyPath, &status) == 0 else { return errno == ENOENT }
        return (status.st_mode & S_IFMT) == S_IFREG
    }

    func nextLine(prompt: String) -> String? {
        while true {
            Interrupts.clear()
            if Interrupts.terminationSignal != nil { return nil }
            guard let raw = readline(prompt) else {
                FileHandle.standardError.write(Data("\n".utf8))
                return nil
            }
            defer { free(raw) }
            // SIGTERM or SIGHUP while waiting: the session ends.
            if Interrupts.terminationSignal != nil { return nil }
            let line = String(cString: raw)

            if !line.trimmingCharacters(in: .whitespaces).isEmpty { add_history(raw) }
            return line
        }
    }

    func saveHistory() {
        if historyIsPlainFile { write_history(historyPath) }
    }

    /// The history list, oldest first: this session's lines and those kept from earlier ones.
    func entries() -> [String] {
        (0..<Int(charlm_history_count())).compactMap { charlm_history_entry(Int32($0)).map { String(cString: $0) } }
    }
}
