// Training a user leaves running: the best model kept (`restore best`, `save best`, `keepbest`), the overfitting
// note, early stopping (`train until N`), the metrics log, autosave across a SIGKILL, and `wd` in checkpoints.

import CharLM
@testable import CharLMShell
import Foundation
import Testing

/// Settings for a small model that overfits tiny.txt (5,400 training characters) within a few hundred steps.
private let overfitting = ["set hidden 128", "set embed 16", "set seq 20", "set batch 16", "set lr 0.01", "set eval 10",
                           "set seed 5"]

/// A folder with tiny.txt in it.
private func folderWithText() throws -> URL {
    let folder = try temporaryFolder()
    try FileManager.default.copyItem(atPath: fixture("tiny.txt"), toPath: folder.appendingPathComponent("tiny.txt").path)
    return folder
}

/// The parameters a fresh session with `settings` has after exactly `steps` steps of training on tiny.txt: the
/// independent reference for "the best step's parameters" (training is deterministic for a seed).
private func parametersAfter(_ steps: Int, settings: [String]) throws -> [Float] {
    let (session, _, _) = try makeShell(running: settings + ["load \(fixture("tiny.txt"))", "train \(steps) steps"])
    return try #require(session.model).parameters.array
}

@Test func theBestParametersAreKeptAndRestoredExactly() throws {
    let folder = try folderWithText()
    let keep = folder.appendingPathComponent("best.safetensors").path
    let (session, runner, console) = try makeShell(running: overfitting + ["set keepbest \(keep)", "load \(fixture("tiny.txt"))",
                                                                          "train 200 steps"])
    let validations = session.validationHistory
    let lowest = try #require(validations.min { $0.loss < $1.loss })
    let best = try #require(session.watch.best)
    #expect(best.step == lowest.step && best.loss == lowest.loss)
    #expect(best.step < 200, "this run overfits, so the best is not the last step (validations: \(validations))")
    try runner.execute("model")
    #expect(unwrapped(console.stdout).contains("best validation loss \(String(format: "%.4f", lowest.loss)) at step \(best.step)"))

    // The reference: a fresh run trained to exactly the best step.
    let reference = try parametersAfter(best.step, settings: overfitting)
    #expect(session.model!.parameters.array != reference)
    // keepbest wrote that step's parameters, without optimizer state, with the history up to it.
    let written = try Checkpoint.load(from: keep)
    #expect(written.parameters == reference)
    #expect(written.optimizer == nil && written.training?.step == best.step)
    #expect(written.training?.validationHistory.last?.step == best.step)
    // save best PATH writes the same.
    try runner.execute("save best \(folder.appendingPathComponent("saved-best.safetensors").path)")
    #expect(try Checkpoint.load(from: folder.appendingPathComponent("saved-best.safetensors").path).parameters == reference)
    // restore best puts them back; the optimizer restarts and the step count stays.
    console.clear()
    try runner.execute("restore best")
    #expect(session.model!.parameters.array == reference)
    #expect(session.step == 200)
    #expect(unwrapped(console.stderr + console.stdout).contains("the optimizer restarts"))
    try runner.execute("save \(folder.appendingPathComponent("after.safetensors").path)")
    let after = try Checkpoint.load(from: folder.appendingPathComponent("after.safetensors").path)
    #expect(after.optimizer?.stepCount == 0 && after.optimizer?.firstMoment.allSatisfy { $0 == 0 } == true)
}

@Test func restoreAndSaveBestNeedAValidationFirst() throws {
    let (_, runner, _) = try makeShell(running: ["set hidden 16", "load \(fixture("tiny.txt"))"])
    for line in ["restore best", "save best /tmp/never-written.safetensors"] {
        let error = try #require(thrownError(runner, line))
        #expect("\(error)".contains("no best model yet"), "\(line): \(error)")
    }
    #expect(thrownError(runner, "restore") != nil && thrownError(runner, "restore worst") != nil)
    #expect(!FileManager.default.fileExists(atPath: "/tmp/never-written.safetensors"))
}

@Test func overfittingIsNotedOnceWithItsRemedies() throws {
    let (session, runner, console) = try makeShell(running: overfitting + ["load \(fixture("tiny.txt"))", "train 200 steps"])
    let text = unwrapped(console.stderr)
    #expect(text.contains("validation loss rose twice in a row"), "\(text)")
    for remedy in ["`restore best`", "`dropout`", "`hidden`", "`train until 3`"] { #expect(text.contains(remedy)) }
    // Once per model: more training that keeps rising says nothing more.
    console.clear()
    try runner.execute("train 100 steps")
    #expect(!console.stderr.contains("rose twice"))
    #expect(OverfittingSign.detect(validationHistory: session.validationHistory, lossHistory: session.lossHistory) != nil)
}

@Test func theOverfittingSignNeedsTwoRisesWhileTrainingLossFalls() {
    func points(_ losses: [Double]) -> [ValidationPoint] { losses.enumerated().map { ValidationPoint(step: ($0 + 1) * 10, loss: $1) } }
    let falling = (0..<40).map { 3.0 - Double($0) * 0.05 }
    #expect(OverfittingSign.detect(validationHistory: points([2.0, 1.9, 2.0, 2.1]), lossHistory: falling) != nil)
    // One rise is not enough; a rise then a fall is not the sign; nor is a rise while training loss rose too.
    #expect(OverfittingSign.detect(validationHistory: points([2.0, 1.9, 1.8, 1.9]), lossHistory: falling) == nil)
    #expect(OverfittingSign.detect(validationHistory: points([2.0, 2.1, 2.0]), lossHistory: falling) == nil)
    #expect(OverfittingSign.detect(validationHistory: points([2.0, 2.1, 2.2]), lossHistory: falling.reversed()) == nil)
    #expect(OverfittingSign.detect(validationHistory: points([2.0, 2.1]), lossHistory: falling) == nil)
}

@Test func trainUntilStopsWhenValidationStopsImprovingAndRestoresTheBest() throws {
    let (session, runner, console) = try makeShell(running: overfitting + ["load \(fixture("tiny.txt"))"])
    try runner.execute("train until 3")
    let validations = session.validationHistory
    let best = try #require(validations.min { $0.loss < $1.loss })
    // It stopped at the third validation in a row without improvement on the best.
    #expect(validations.last!.step == best.step + 3 * 10, "\(validations)")
    #expect(session.step == validations.last!.step)
    #expect(session.model!.parameters.array == (try parametersAfter(best.step, settings: overfitting)))
    #expect(unwrapped(console.stdout + console.stderr).contains("restored the best, step \(best.step)"))
    // It needs validations.
    try runner.execute("set eval 0")
    #expect("\(try #require(thrownError(runner, "train until 3")))".contains("`eval` is 0"))
    for bad in ["train until 0", "train until x", "train until 1001"] { #expect(thrownError(runner, bad) != nil, "\(bad)") }
}

@Test func theMetricsLogIsReadBackAsCSVAndAsJSONLines() throws {
    let folder = try temporaryFolder()
    let csv = folder.appendingPathComponent("run.csv").path
    let jsonl = folder.appendingPathComponent("run.jsonl").path
    let (session, runner, _) = try makeShell(running: ["set hidden 16", "set seq 20", "set batch 4", "set eval 5",
                                                       "set warmup 4", "set log \(csv)", "load \(fixture("tiny.txt"))",
                                                       "train 12 steps", "set log \(jsonl)", "train 3 steps"])
    // CSV: the header, one line per step (val_loss empty) and one per validation (train_loss empty).
    let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").map(String.init)
    #expect(lines.first == "step,epoch,train_loss,val_loss,lr,tokens_per_s,elapsed_s")
    let rows = lines.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    #expect(rows.allSatisfy { $0.count == 7 })
    let stepRows = rows.filter { $0[3].isEmpty }, validationRows = rows.filter { $0[2].isEmpty }
    #expect(stepRows.map { Int($0[0])! } == Array(1...12))
    #expect(validationRows.map { Int($0[0])! } == [5, 10, 12])
    for (row, loss) in zip(stepRows, session.lossHistory) { #expect(abs(Double(row[2])! - loss) < 1e-6) }
    for (row, point) in zip(validationRows, session.validationHistory) { #expect(abs(Double(row[3])! - point.loss) < 1e-6) }
    // The learning rate of each step (warm-up over 4 steps), and elapsed seconds that never go back.
    #expect(stepRows.prefix(5).map { Double($0[4])! } == [0.0005, 0.001, 0.0015, 0.002, 0.002])
    let elapsed = rows.map { Double($0[6])! }
    #expect(zip(elapsed, elapsed.dropFirst()).allSatisfy { $0 <= $1 })
    // JSON lines: each line one object with the same keys; nulls where a value does not apply.
    let objects = try String(contentsOfFile: jsonl, encoding: .utf8).split(separator: "\n").map {
        try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
    }
    #expect(objects.count == 4)  // 3 steps and the final validation
    #expect(objects.allSatisfy { Set($0.keys) == Set(MetricsLog.columns) })
    #expect(objects.map { $0["step"] as? Int } == [13, 14, 15, 15])
    #expect(objects[0]["val_loss"] is NSNull && objects[3]["train_loss"] is NSNull)
    #expect(((objects[3]["val_loss"] as? Double) ?? 0) > 0 && elapsed.last! <= (objects[0]["elapsed_s"] as? Double)!)
    // Appending to the log again goes on below; a file that is not a log is never appended to.
    try runner.execute("set log \(csv)")
    try runner.execute("train 1 steps")
    #expect(try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").count == lines.count + 2)
    let foreign = folder.appendingPathComponent("notes.csv").path
    try "a,b\n1,2\n".write(toFile: foreign, atomically: true, encoding: .utf8)
    try runner.execute("set log \(foreign)")
    let error = try #require(thrownError(runner, "train 1 steps"))
    #expect("\(error)".contains("not a charlm CSV metrics log"))
    #expect(try String(contentsOfFile: foreign, encoding: .utf8) == "a,b\n1,2\n")
    #expect(session.step == 16, "nothing was trained when the log could not be opened")
}

@Test func weightDecayIsASettingSavedInCheckpoints() throws {
    let folder = try temporaryFolder()
    let path = folder.appendingPathComponent("wd.safetensors").path
    let (_, runner, _) = try makeShell(running: ["set hidden 16", "set wd 0.1", "load \(fixture("tiny.txt"))", "train 2 steps",
                                                 "save \(path)"])
    let saved = try Checkpoint.load(from: path)
    #expect(saved.training?.settings.weightDecay == 0.1 && saved.optimizer?.settings.weightDecay == 0.1)
    try runner.execute("set wd 0")
    let (restored, _, _) = try makeShell(running: ["load \(path)"])
    #expect(restored.settings.wd == 0.1)
    for bad in ["set wd -1", "set wd 11", "set wd x"] { #expect(thrownError(runner, bad) != nil, "\(bad)") }
}

@Test func fileAndDurationSettingsReadAndShow() throws {
    let (session, runner, console) = makeShell()
    try runner.execute("set autosave 10m")
    #expect(session.settings.autosave == 600)
    try runner.execute("show autosave")
    #expect(console.stdout.hasSuffix("autosave 10m\n"))
    try runner.execute("set autosave 90s")
    #expect(session.settings.autosave == 90)
    try runner.execute("set autosave off")
    #expect(session.settings.autosave == nil)
    for bad in ["set autosave 10", "set autosave 0s", "set autosave -5m", "set autosave 2000000h", "set autosave 1e3s",
                "set keepbest dir/"] {
        #expect(thrownError(runner, bad) != nil, "\(bad)")
    }
    try runner.execute("set keepbest best.safetensors")
    #expect(session.settings.keepbest == "best.safetensors")
    try runner.execute("set keepbest off")
    #expect(session.settings.keepbest == nil)
    // None of them travels in a checkpoint: a shared file must not choose where this session writes.
    try runner.execute("set log run.csv")
    #expect(session.settings.checkpointSettings["log"] == nil && session.settings.checkpointSettings["keepbest"] == nil)
}

/// A checkpoint brings back its run's settings (seed, length, eval) but not this session's preferences: `timing`,
/// `pager` and `threads` stay as set, also when an older file still holds them (read without a note).
@Test func loadingACheckpointKeepsTheSessionsPreferences() throws {
    let folder = try folderWithText()
    let (text, saved) = (folder.appendingPathComponent("tiny.txt").path, folder.appendingPathComponent("run.safetensors").path)
    let (session, runner, console) = makeShell()
    try runner.execute("set hidden 8; set seed 7; set length 321; load \(text); save \(saved)")
    try runner.execute("set timing on; set pager off; set threads 1; set seed 9; set length 5")
    console.clear()
    try runner.execute("load \(saved)")
    #expect(session.settings.timing && !session.settings.pager && session.settings.threads == 1)
    #expect(session.settings.seed == 7 && session.settings.length == 321)
    #expect(!console.stderr.contains("left out"), "\(console.stderr)")
    // A file from before: its settings metadata also holds the three preferences.
    var file = try SafeTensorsFile.parse(Array(try Data(contentsOf: URL(fileURLWithPath: saved))), path: saved)
    file.metadata["settings"] = "{\"eval\": \"250\", \"length\": \"300\", \"pager\": \"on\", \"seed\": \"7\", \"threads\": \"2\", \"timing\": \"off\"}"
    let older = folder.appendingPathComponent("older.safetensors").path
    try Data(file.serialized()).write(to: URL(fileURLWithPath: older))
    console.clear()
    try runner.execute("load \(older)")
    #expect(session.settings.timing && !session.settings.pager && session.settings.threads == 1)
    #expect(session.settings.length == 300)
    #expect(!console.stderr.contains("left out"), "\(console.stderr)")
}

@Test func autosaveSurvivesAKilledProcess() throws {
    let folder = try folderWithText()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: charlmBinary)
    process.arguments = ["-c", "set hidden 32", "-c", "set seq 20", "-c", "set batch 8", "-c", "set eval 0",
                         "-c", "set autosave 1s", "-c", "load tiny.txt", "-c", "train 10000000 steps"]
    process.currentDirectoryURL = folder
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    process.environment = ProcessInfo.processInfo.environment.merging(
        ["CHARLM_HISTORY": NSTemporaryDirectory() + "charlm-test-history"]) { $1 }
    try process.run()
    let saved = folder.appendingPathComponent("charlm.safetensors").path
    // Wait for the second autosave (so one replaced another), then kill without warning.
    var firstStep: Int?
    _ = waitUntil(every: 0.2) {
        guard let checkpoint = try? Checkpoint.load(from: saved), let step = checkpoint.training?.step else { return false }
        if let firstStep, step > firstStep { return true }
        if firstStep == nil { firstStep = step }
        return false
    }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    #expect(process.terminationReason == .uncaughtSignal)
    // The file is whole (an atomic write), holds the optimizer, and a new process resumes from it.
    let checkpoint = try Checkpoint.load(from: saved)
    let step = try #require(checkpoint.training?.step)
    #expect(step > (firstStep ?? .max), "a second autosave replaced the first")
    #expect(checkpoint.optimizer?.stepCount == step)
    let resumed = try runCharLM(["-c", "load charlm.safetensors", "-c", "load tiny.txt", "-c", "train 3 steps", "-c", "model"],
                                in: folder)
    #expect(resumed.status == 0, "\(resumed.stderr)")
    #expect(unwrapped(resumed.stdout).contains("step \(grouped(step + 3))"), "\(resumed.stdout)")
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains(".tmp-charlm-") }
    #expect(leftovers.count <= 1, "at most the temporary of the write the kill interrupted: \(leftovers)")
}

@Test func autosaveNeverReplacesAFileThisSessionDidNotWrite() throws {
    let folder = try folderWithText()
    try Data("precious".utf8).write(to: folder.appendingPathComponent("charlm.safetensors"))
    let result = try runCharLM(["-c", "set hidden 16", "-c", "set autosave 1s", "-c", "load tiny.txt", "-c", "train 3 steps"],
                               in: folder)
    #expect(result.status != 0)
    #expect(unwrapped(result.stderr).contains("this session did not write it"), "\(result.stderr)")
    #expect(try String(contentsOf: folder.appendingPathComponent("charlm.safetensors"), encoding: .utf8) == "precious")
}

@Test func keepbestNeverReplacesAFileThisSessionDidNotWrite() throws {
    let folder = try folderWithText()
    let text = folder.appendingPathComponent("tiny.txt").path
    let before = try Data(contentsOf: URL(fileURLWithPath: text))
    let (session, runner, _) = try makeShell(running: ["set hidden 16", "set seq 20", "set batch 4", "set eval 5",
                                                       "load \(text)"])
    // Said when set, and again when training starts (a file may appear in between).
    #expect("\(try #require(thrownError(runner, "set keepbest \(text)")))".contains("this session did not write it"))
    #expect(session.settings.keepbest == nil)
    let later = folder.appendingPathComponent("later.safetensors").path
    try runner.execute("set keepbest \(later)")
    #expect(FileManager.default.createFile(atPath: later, contents: Data([1])))
    #expect("\(try #require(thrownError(runner, "train 10 steps")))".contains("this session did not write it"))
    #expect(try Data(contentsOf: URL(fileURLWithPath: text)) == before && session.step == 0)
    #expect(try Data(contentsOf: URL(fileURLWithPath: later)) == Data([1]))
    let log = folder.appendingPathComponent("run.csv").path
    try runner.execute("set keepbest off")
    try runner.execute("set log \(log)")
    #expect("\(try #require(thrownError(runner, "set keepbest \(log)")))".contains("keepbest and log name the same file"))
    // A file this session wrote (`save best PATH` first) may be replaced.
    try runner.execute("set log off")
    try runner.execute("set keepbest \(folder.appendingPathComponent("best.safetensors").path)")
    try runner.execute("train 10 steps")
    try runner.execute("train 10 steps")
    #expect(try Checkpoint.load(from: folder.appendingPathComponent("best.safetensors").path).training?.step == session.watch.best?.step)
}

@Test func aLogCutShortGetsItsNewLinesOnLinesOfTheirOwn() throws {
    let folder = try temporaryFolder()
    let log = folder.appendingPathComponent("run.csv").path
    try "step,epoch,train_loss,val_loss,lr,tokens_per_s,elapsed_s\n1,0.0588,3.56".write(toFile: log, atomically: true, encoding: .utf8)
    _ = try makeShell(running: ["set hidden 16", "set seq 20", "set batch 4", "set eval 0", "set log \(log)",
                                "load \(fixture("tiny.txt"))", "train 2 steps"])
    let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
    #expect(lines[1] == "1,0.0588,3.56")
    #expect(lines[2].hasPrefix("1,") && lines[2].split(separator: ",", omittingEmptySubsequences: false).count == 7)
}

@Test func aDivergedModelIsNotUsedAndTheWaysBackAreNamed() throws {
    let (_, runner, console) = try makeShell(running: ["set hidden 16", "set seq 20", "set batch 4", "set eval 5",
                                                       "load \(fixture("tiny.txt"))", "set lr 1", "set wd 10"])
    // lr x wd of 1 or more would zero or flip every weight at every step.
    #expect("\(try #require(thrownError(runner, "train 10 steps")))".contains("wd must be below 1/lr"))
    try runner.execute("set wd 0.5")
    try runner.execute("set lr 0.002")
    try runner.execute("train 5 steps")
    // An optimizer state that makes the next update infinite (a damaged file can hold one).
    let path = NSTemporaryDirectory() + "charlm-diverge-\(UUID().uuidString).safetensors"
    try runner.execute("save \(path)")
    var checkpoint = try Checkpoint.load(from: path)
    checkpoint.optimizer!.firstMoment = checkpoint.optimizer!.firstMoment.map { _ in 3e38 }
    checkpoint.optimizer!.secondMoment = checkpoint.optimizer!.secondMoment.map { _ in 0 }
    try Checkpoint.write(checkpoint.serialized(), to: path)
    try runner.execute("load \(path)")
    let diverged = thrownError(runner, "train 1 steps")
    let error = try #require(diverged, "training diverged")
    #expect("\(error)".contains("infinite or NaN"))
    for line in ["gen \"a\" 5", "eval", "next \"a\"", "save \(path)"] {
        let refused = try #require(thrownError(runner, line), "\(line)")
        #expect("\(refused)".contains("training diverged") && "\(refused)".contains("`reset`"), "\(line): \(refused)")
    }
    #expect(try Checkpoint.load(from: path).optimizer?.firstMoment.first == 3e38, "the file was not replaced")
    try runner.execute("reset")
    try runner.execute("gen \"a\" 5")
    _ = console
}

@Test func theLossHistoryStaysBoundedAndTheOverfittingRuleReadsItsEnd() throws {
    let (session, _, _) = try makeShell(running: ["set hidden 8", "set embed 4", "set seq 10", "set batch 2", "set eval 0",
                                                  "load \(fixture("tiny.txt"))", "train 1 steps"])
    let folder = try temporaryFolder()
    let path = folder.appendingPathComponent("long.safetensors").path
    try session.save(to: path)
    // A run of two million steps: the history keeps the latest, within 1.5 million.
    var checkpoint = try Checkpoint.load(from: path)
    checkpoint.training!.step = 2_000_000
    checkpoint.training!.lossHistory = (0..<2_000_000).map { Double($0 % 7) + 1 }
    try Checkpoint.write(checkpoint.serialized(), to: path)
    let (resumed, runner, _) = try makeShell(running: ["load \(path)", "load \(fixture("tiny.txt"))", "train 1 steps"])
    #expect(resumed.step == 2_000_001)
    #expect(resumed.lossHistory.count <= Trainer.maximumLossHistory * 3 / 2 && resumed.lossHistory.count >= Trainer.maximumLossHistory)
    try runner.execute("save \(path)")
    #expect(try Checkpoint.load(from: path).training?.lossHistory.count == resumed.lossHistory.count)
    // The overfitting rule maps the last loss to the last step.
    let losses = (0..<100).map { 3.0 - Double($0) * 0.01 }
    let points = [ValidationPoint(step: 1_000_060, loss: 2.0), ValidationPoint(step: 1_000_080, loss: 2.1),
                  ValidationPoint(step: 1_000_100, loss: 2.2)]
    #expect(OverfittingSign.detect(validationHistory: points, lossHistory: losses, lastStep: 1_000_100) != nil)
    #expect(OverfittingSign.detect(validationHistory: points, lossHistory: losses) == nil, "without the offset no step is known")
}

@Test func autosaveAlsoSavesTheEndOfATrainAndNewBestsAreMarked() throws {
    let folder = try temporaryFolder()
    let path = folder.appendingPathComponent("auto.safetensors").path
    let (session, runner, console) = try makeShell(running: ["set hidden 16", "set seq 20", "set batch 4", "set eval 5",
                                                             "load \(fixture("tiny.txt"))", "save \(path)",
                                                             "set autosave 1h", "train 7 steps"])
    // An hour never passed, yet the end of the run was saved.
    #expect(try Checkpoint.load(from: path).training?.step == 7)
    #expect(session.unsavedSteps == 0)
    #expect(console.stderr.contains("step 5: validation loss") && console.stderr.contains("autosaved \(path) at step 7"))
    // The second validation improved on the first: its line says so.
    #expect(session.watch.best?.step == 7 && console.stderr.contains("bits/char), best\n"))
    try runner.execute("help restore best")
    try runner.execute("help keepbest PATH")
    #expect("\(try #require(thrownError(runner, "train until")))".contains("for example `train until 3`"))
    #expect("\(try #require(thrownError(runner, "save best")))".contains("name the file for the best model"))
    try runner.execute("set log OFF")
    #expect(session.settings.log == nil)
}
