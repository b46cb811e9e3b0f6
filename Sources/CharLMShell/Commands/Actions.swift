// What the commands that act on the session or the script run, with the report of what they did: `restore best`,
// `save`, `history`, `echo` and `pause`. The command table (Commands.swift) names each of these in its row.

import CharLM
import Foundation

/// `restore best`: the best parameters validation has seen put back, and what that means for the optimizer.
func runRestore(_ context: CommandContext, _ words: [Word]) throws {
    guard words.count == 1, words[0].text == "best" else { throw ShellError.usage("restore best") }
    let session = context.session
    let (best, changed) = try session.restoreBest()
    guard changed else {
        session.console.report("the parameters in use are already the best, from step \(grouped(best.step)) (validation loss "
                               + String(format: "%.4f", best.loss) + "): nothing changed")
        return
    }
    session.console.report("restored the best parameters, from step \(grouped(best.step)) (validation loss "
                           + String(format: "%.4f", best.loss) + "); the optimizer restarts (its moments were not "
                           + "kept), so the next few steps of training are worse while they rebuild; the step count "
                           + "stays \(grouped(session.step))")
}

/// `save [PATH]` and `save best PATH`: the checkpoint written, where, and how large.
func runSave(_ context: CommandContext, _ words: [Word]) throws {
    try expectArguments(words, 0, 2, "save [PATH] | save best PATH")
    if words.count == 2 || (words.first.map { !$0.quoted && $0.text == "best" } ?? false) {
        guard words.count == 2, !words[0].quoted, words[0].text == "best" else {
            throw ShellError.badArgument("save best PATH: name the file for the best model (a file called best is `save ./best`)")
        }
        let (path, size) = try context.session.saveBest(to: words[1].text)
        let best = context.session.watch.best!
        context.session.console.report("saved the best model, step \(grouped(best.step)) (validation loss "
                                       + String(format: "%.4f", best.loss) + "), to \(path) (\(grouped(size)) bytes)")
        return
    }
    let (path, size) = try context.session.save(to: words.first?.text)
    let target = resolvedSaveTarget(path)
    context.session.console.report("saved \(path)" + (target == path ? "" : " (a link: wrote \(target))") + " (\(grouped(size)) bytes)")
}

/// `history [N]`: the last N commands, numbered.
func runHistory(_ context: CommandContext, _ words: [Word]) throws {
    try expectArguments(words, 0, 1, "history [N]")
    let count = try words.first.map { try positiveInteger($0.text, "history: N", maximum: 100_000) } ?? 20
    let lines = context.runner.historyProvider?() ?? context.runner.executedLines
    let first = max(0, lines.count - count)
    let numberWidth = String(lines.count).count
    let width = context.session.console.width - 1
    // One piece of output, so a history taller than the screen is paged as `help` is.
    let entries = lines[first...].enumerated().map { offset, line in
        let entry = String(first + offset + 1).leftPadded(to: numberWidth + 2) + "  " + line
        return (entry.count <= width ? entry : wrap(entry, width: width, indent: numberWidth + 4)) + "\n"
    }
    if !entries.isEmpty { context.session.console.info(entries.joined()) }
}

/// `echo TEXT`: its words, prose wrapped to the width.
/// `clear`: the screen and its scrollback, at a terminal only.
func runClear(_ context: CommandContext, _ words: [Word]) throws {
    try expectArguments(words, 0, 0, "clear")
    if context.session.console.outputIsTerminal { context.session.console.out("\u{1B}[H\u{1B}[2J\u{1B}[3J") }
}

func runEcho(_ context: CommandContext, _ words: [Word]) throws {
    // A line longer than the terminal is wrapped (it is prose); shorter ones keep their spacing.
    let width = context.session.console.width - 1
    let text = words.map(\.text).joined(separator: " ").split(separator: "\n", omittingEmptySubsequences: false)
        .map { $0.count <= width ? String($0) : wrap(String($0), width: width, indent: 0) }.joined(separator: "\n")
    context.session.console.info(text + "\n")
}

/// `pause ["MESSAGE"]`: waits for Enter at a terminal.
func runPause(_ context: CommandContext, _ words: [Word]) throws {
    try expectArguments(words, 0, 1, "pause [\"MESSAGE\"]")
    guard let wait = context.session.waitForEnter else { return }
    context.session.console.note((words.first?.text ?? "") + (words.isEmpty ? "" : " ") + "[press Enter to go on]\n")
    // Ctrl-C at the pause (or just before it) stops the script there: the pause did not finish, it was waiting.
    if !context.session.interruptRequested() { wait() }
    if context.session.interruptRequested() {
        context.session.clearInterrupt()
        throw Interrupted(description: "stopped at the pause by \(context.session.interruptionName())")
    }
}
