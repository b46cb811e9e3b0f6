// The seams the shell core is built on: settings declared once (their messages and the engine's validation agree),
// errors that stay typed from the engine through the shell, checkpoints written before the validation history moved
// into `training` still loading, and sessions that each own their compute threads.

import CharLM
@testable import CharLMShell
import Foundation
import Testing

/// Runs `line`, returning the error it threw (nil on success).
private func error(_ runner: Runner, _ line: String) -> Error? { thrownError(runner, line) }

/// Values outside each setting's declared domain, as typed at the prompt.
private func badValues(_ declaration: SettingDeclaration) -> [String] {
    switch declaration.domain {
    case .integer(let range): return ["abc", String(range.lowerBound - 1), String(range.upperBound + 1), "1.5"]
    case .unsigned: return ["abc", "-1", "18446744073709551616"]
    case .flag: return ["maybe", "2"]
    case .file: return ["folder/"]
    case .choice: return ["gpt", "1", "lstm2"]
    case .interval(let range):
        return ["abc", "10", "-1m", formatSettingNumber(range.lowerBound / 2) + "s", formatSettingNumber(range.upperBound + 1) + "s"]
    case .number(let lower, let lowerIncluded, let upper, let upperIncluded):
        return ["abc", "nan", "inf", lowerIncluded ? String(lower - 1) : formatSettingNumber(lower),
                upperIncluded ? String(upper + 1) : formatSettingNumber(upper)]
    }
}

@Test(arguments: Settings.keys.map(\.name))
func everySettingsRangeMessageComesFromItsDeclaration(name: String) throws {
    let (session, runner, _) = makeShell()
    let key = try #require(Settings.key(named: name))
    let declaration = key.declaration
    #expect(Setting.all.contains(declaration), "\(name) is declared in the engine's table")
    for value in badValues(declaration) {
        let thrown = error(runner, "set \(name) \(value)")
        #expect(thrown as? CharLMError == .outOfRange(setting: name, rule: declaration.domain.rule, got: value), "set \(name) \(value)")
        #expect((thrown as? CustomStringConvertible)?.description == "\(name) must be \(declaration.domain.rule); got '\(value)'")
    }
    #expect(session.settings == Settings(), "refused values change nothing")
    // The default is inside the domain and is what `show` prints.
    #expect(error(runner, "set \(name) \(declaration.defaultText)") == nil)
    #expect(key.get(session.settings) == declaration.defaultText)
}

@Test func everyDeclaredSettingHasOnePlaceInSettings() {
    #expect(Settings.keys.map(\.name) == Setting.all.map(\.name), "the settings table is the declarations' list, in order")
    #expect(Set(Settings.storage.keys) == Set(Setting.all.map(\.name)), "no property is bound to a setting that is not declared")
}

@Test func theEngineDefaultsAreTheDeclarations() {
    // The engine's settings structs, built with no arguments, hold what a new session's settings hold.
    let settings = Settings()
    #expect(TrainingSettings() == settings.training)
    #expect(SamplingSettings() == settings.sampling)
    #expect(RecurrentConfig(vocabularySize: 5) == settings.architecture(vocabularySize: 5) as? RecurrentConfig)
    var transformer = settings
    transformer.arch = .transformer
    #expect(TransformerConfig(vocabularySize: 5) == transformer.architecture(vocabularySize: 5) as? TransformerConfig)
    #expect(NormalizationOptions() == settings.normalization)
    #expect(AdamSettings().learningRate == settings.lr && AdamSettings().weightDecay == settings.wd)
    #expect(settings.training.learningRate == 2e-3 && settings.training.sequenceLength == 100 && settings.sampling.temperature == 1)
}

@Test func theEngineStatesTheSameRangesAsTheShell() throws {
    // The same value refused by `set` and by the engine's own validation gives the same sentence.
    let (_, runner, _) = makeShell()
    func shellMessage(_ line: String) -> String? { (error(runner, line) as? CustomStringConvertible)?.description }
    func engineMessage(_ body: () throws -> Void) -> String? {
        do { try body(); return nil } catch { return "\(error)" }
    }
    #expect(engineMessage { try TrainingSettings(sequenceLength: 0).validate() } == shellMessage("set seq 0"))
    #expect(engineMessage { try TrainingSettings(batch: 5000).validate() } == shellMessage("set batch 5000"))
    #expect(engineMessage { try TrainingSettings(learningRate: 2).validate() } == shellMessage("set lr 2"))
    #expect(engineMessage { try TrainingSettings(warmupSteps: -1).validate() } == shellMessage("set warmup -1"))
    #expect(engineMessage { try SamplingSettings(temperature: 200).validate() } == shellMessage("set temp 200"))
    #expect(engineMessage { try SamplingSettings(topP: 0).validate() } == shellMessage("set topp 0"))
    #expect(engineMessage { try SamplingSettings(topK: -1).validate() } == shellMessage("set topk -1"))
    #expect(engineMessage { try RecurrentConfig(vocabularySize: 5, hiddenSize: 9000).validate() } == shellMessage("set hidden 9000"))
    #expect(engineMessage { try RecurrentConfig(vocabularySize: 5, dropout: 1).validate() } == shellMessage("set dropout 1"))
    #expect(engineMessage { _ = try Dataset(tokens: TokenBuffer([0, 1], vocabularySize: 2), validationFraction: 1) }
            == shellMessage("set val 1"))
}

@Test func errorsStayTypedFromTheEngineThroughTheShell() throws {
    let (_, runner, _) = makeShell()
    #expect(error(runner, "trian 5") as? ShellError == .unknownCommand("trian", suggestion: "train"))
    #expect(error(runner, "set tmep 1") as? ShellError == .unknownSetting("tmep", suggestion: "temp"))
    #expect(error(runner, "set temp") as? ShellError == .usage("set KEY VALUE"))
    #expect(error(runner, "gen \"oops") as? ShellError == .syntax(LexError(message: "unterminated quote", column: 5)))
    #expect(error(runner, "train 1 steps") as? ShellError == .needs(.modelFromText))
    #expect(error(runner, "vocab") as? ShellError == .needs(.model))
    #expect(error(runner, "save") as? ShellError == .needs(.modelToSave))
    // An engine error arrives as itself, not as a string.
    #expect(error(runner, "load /no/such/file.txt") as? CharLMError == .fileNotFound(path: "/no/such/file.txt"))
    #expect(error(runner, "set seq 0") as? CharLMError == .outOfRange(setting: "seq", rule: "a whole number from 1 to 10000", got: "0"))
}

@Test func aCheckpointWrittenBeforeTheValidationHistoryMovedStillLoads() throws {
    // Written by charlm at commit d96608e (before issue 12): E 4, H 8, L 2, lowercase off, seq 10, batch 4, eval 2,
    // temp 0.7, 5 steps on tiny.txt, validation history stored in `settings` as "step:loss,...".
    let (session, runner, console) = makeShell()
    try runner.execute("load \(fixture("before-issue-12.safetensors"))")
    #expect(session.step == 5 && session.lossHistory.count == 5)
    #expect(session.validationHistory == [ValidationPoint(step: 2, loss: 3.959761925160266),
                                          ValidationPoint(step: 4, loss: 3.9524225170567435),
                                          ValidationPoint(step: 5, loss: 3.948923040693046)])
    #expect(session.settings.hidden == 8 && session.settings.embed == 4 && !session.settings.lowercase)
    #expect(session.settings.seq == 10 && session.settings.batch == 4 && session.settings.eval == 2 && session.settings.temp == 0.7)
    // Training resumes exactly where that charlm left off: it printed these figures for two more steps.
    try runner.execute("load \(fixture("tiny.txt"))")
    try runner.execute("train 2 steps")
    #expect(console.stderr.contains("step 6: validation loss 3.9454 nats/char"))
    #expect(console.stderr.contains("step 7: validation loss 3.9420 nats/char"))
    #expect(String(format: "%.4f", session.lossHistory.last!) == "3.9906")
    // Saved again, the history is a list in `training`, and no longer a setting.
    let path = try temporaryFolder().appendingPathComponent("again.safetensors").path
    try runner.execute("save \(path)")
    let bytes = try readFileBytes(at: path)
    let file = try SafeTensorsFile.parse(bytes, path: path)
    #expect(file.metadata["settings"]?.contains("validation_history") == false)
    let training = try JSONValue.parse(try #require(file.metadata["training"]))
    #expect(training["validation_history"]?.array?.count == 5)
    let reloaded = try Checkpoint.parse(bytes, path: path)
    #expect(reloaded.training?.validationHistory == session.validationHistory)
}

/// Trains a small model in its own session on `threads` threads and generates from it: what it computed.
private func sessionRun(threads: Int) throws -> (losses: [Double], parameters: [Float], text: String) {
    let (session, runner, console) = makeShell()
    for line in ["set threads \(threads)", "set hidden 24", "set embed 8", "set seq 16", "set batch 8", "set eval 0",
                 "load \(fixture("tiny.txt"))", "train 6 steps", "seed 3"] {
        try runner.execute(line)
    }
    #expect(session.context.threadCount == threads)
    console.clear()
    try runner.execute("gen \"the \" 60")
    return (session.lossHistory, try #require(session.model).parameters.array, console.stdout)
}

@Test func twoSessionsWithDifferentThreadCountsRunSideBySideAsEachDoesAlone() throws {
    let alone = try [1, 3].map { try sessionRun(threads: $0) }
    final class Results: @unchecked Sendable { var runs: [Int: (losses: [Double], parameters: [Float], text: String)] = [:]; let lock = NSLock() }
    let results = Results()
    DispatchQueue.concurrentPerform(iterations: 2) { index in
        let threads = [1, 3][index]
        let run = try? sessionRun(threads: threads)
        results.lock.withLock { results.runs[threads] = run }
    }
    for (index, threads) in [1, 3].enumerated() {
        let together = try #require(results.runs[threads])
        #expect(together.losses == alone[index].losses, "threads \(threads): losses")
        #expect(together.parameters == alone[index].parameters, "threads \(threads): parameters")
        #expect(together.text == alone[index].text, "threads \(threads): generated text")
    }
    // And a session's thread count is its own: a new session still gets the default.
    let (other, _, _) = makeShell()
    #expect(other.context.threadCount == Setting.threads.defaultInteger)
}
