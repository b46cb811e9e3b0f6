// Handing a run over to PyTorch's DistributedDataParallel and back (docs/checkpoints.md: "When one machine is not
// enough"): charlm trains and saves, `torchrun ... torch_reference.py train --init-from` continues on two CPU
// processes (gloo) and saves, and charlm loads that and trains on. Needs a python3 with torch and safetensors
// (CHARLM_TORCH_PYTHON, or python3 on the PATH); skipped with a message without one.

import CharLM
@testable import CharLMShell
import Foundation
import Testing

/// A python3 that imports torch and safetensors: $CHARLM_TORCH_PYTHON, else python3 on the PATH; nil when neither.
/// (TransformerInteropTests.swift uses it too.)
let torchPython: String? = {
    var candidates = ["/usr/bin/env"]
    if let chosen = ProcessInfo.processInfo.environment["CHARLM_TORCH_PYTHON"], !chosen.isEmpty { candidates = [chosen] }
    for program in candidates {
        let arguments = (program == "/usr/bin/env" ? ["python3"] : []) + ["-c", "import torch, safetensors"]
        guard let result = try? runProgram(program, arguments), result.status == 0 else { continue }
        return program
    }
    return nil
}()

/// The path of a file of the project, from its root.
func projectPath(_ relative: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../" + relative).standardized.path
}

/// Runs torchPython with `arguments` (a script and its arguments, or `-m module ...`) on one thread.
func runTorchPython(_ arguments: [String], in folder: URL) throws -> ProcessResult {
    let python = try #require(torchPython)
    return try runProgram(python, (python == "/usr/bin/env" ? ["python3"] : []) + arguments, in: folder,
                          environment: ["OMP_NUM_THREADS": "1"])
}

/// Runs torch_reference.py under torchrun (two processes, gloo) with `arguments`.
func torchrun(_ arguments: [String], in folder: URL) throws -> ProcessResult {
    try runTorchPython(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        projectPath("scripts/torch_reference.py"), "train"] + arguments + ["--threads", "1"], in: folder)
}

/// The mean of `values`.
private func mean(_ values: some Collection<Double>) -> Double { values.reduce(0, +) / Double(values.count) }

@Test(.enabled(if: torchPython != nil, "skipped: no python3 with torch and safetensors (set CHARLM_TORCH_PYTHON to one)"))
func aRunHandsOverToPyTorchDistributedAndBack() throws {
    let folder = try temporaryFolder()
    let text = folder.appendingPathComponent("tiny.txt").path
    try FileManager.default.copyItem(atPath: fixture("tiny.txt"), toPath: text)
    let settings = ["set hidden 48", "set embed 16", "set seq 40", "set batch 64", "set lr 0.003", "set warmup 5",
                    "set decay 80", "set wd 0.05", "set dropout 0.1", "set eval 10", "set seed 3"]
    // charlm: 20 steps, saved with the optimizer.
    let first = folder.appendingPathComponent("charlm-20.safetensors").path
    let (session, _, _) = try makeShell(running: settings + ["load \(text)", "train 20 steps", "save \(first)"])
    let saved = try Checkpoint.load(from: first)

    // PyTorch takes it and gives it straight back (0 steps): every tensor, Adam's moments included, arrives intact.
    let roundTrip = folder.appendingPathComponent("torch-0.safetensors").path
    let zero = try torchrun(["--corpus", text, "--init-from", first, "--steps", "0", "--save", roundTrip], in: folder)
    #expect(zero.status == 0, "\(zero.stderr)")
    let back = try Checkpoint.load(from: roundTrip)
    #expect(back.parameters == saved.parameters)
    let (a, b) = (try #require(saved.optimizer), try #require(back.optimizer))
    let layout = RecurrentLayout(config: saved.config)
    for view in layout.views {
        let range = view.offset..<(view.offset + view.count)
        #expect(Array(a.firstMoment[range]) == Array(b.firstMoment[range]), "exp_avg of \(view.name)")
        #expect(Array(a.secondMoment[range]) == Array(b.secondMoment[range]), "exp_avg_sq of \(view.name)")
    }
    #expect(a.stepCount == b.stepCount && a.settings == b.settings)
    #expect(back.training?.settings == saved.training?.settings && back.training?.step == 20)
    #expect(back.config == saved.config && back.vocabulary == saved.vocabulary && back.corpus == saved.corpus)

    // PyTorch continues 20 steps on two processes (the batch of 64 split 32 + 32) and saves.
    let second = folder.appendingPathComponent("torch-40.safetensors").path
    let torch = try torchrun(["--corpus", text, "--init-from", first, "--steps", "20", "--eval-every", "10",
                              "--save", second], in: folder)
    #expect(torch.status == 0, "\(torch.stderr)")
    let continued = try Checkpoint.load(from: second)
    let history = try #require(continued.training?.lossHistory)
    #expect(continued.training?.step == 40 && continued.optimizer?.stepCount == 40 && history.count == 40)
    #expect(Array(history.prefix(20)) == session.lossHistory, "charlm's history travels on")

    // charlm loads it, with its optimizer, and trains on.
    let (resumed, _, _) = try makeShell(running: ["load \(second)", "load \(text)", "train 20 steps"])
    #expect(resumed.settings.wd == 0.05 && resumed.settings.decay == 80 && resumed.settings.dropout == 0.1)
    #expect(resumed.step == 60)
    expectSmoothHandOvers(torch: history, charlm: resumed.lossHistory)
}

/// A run of 20 steps in charlm, 20 in PyTorch (`torch`: the loss history PyTorch saved, 40 losses) and 20 in charlm
/// again (`charlm`: 60): no restart spike at either hand-over, and both kept learning. A spike is a rise (a lost
/// optimizer state or schedule shows as one; a curve still falling steeply may fall faster than any fixed band): the
/// first loss after is at most 0.05 above the last before, and so is the mean of three steps after against the
/// three before.
func expectSmoothHandOvers(torch history: [Double], charlm losses: [Double],
                           sourceLocation: SourceLocation = #_sourceLocation) {
    guard history.count == 40, losses.count == 60 else {
        Issue.record("\(history.count) and \(losses.count) losses; expected 40 and 60", sourceLocation: sourceLocation)
        return
    }
    #expect(history[20] - history[19] < 0.05, "charlm -> PyTorch: \(history[19]) then \(history[20])",
            sourceLocation: sourceLocation)
    #expect(losses[40] - losses[39] < 0.05, "PyTorch -> charlm: \(losses[39]) then \(losses[40])",
            sourceLocation: sourceLocation)
    #expect(mean(history[20..<23]) - mean(history[17..<20]) < 0.05, sourceLocation: sourceLocation)
    #expect(mean(losses[40..<43]) - mean(losses[37..<40]) < 0.05, sourceLocation: sourceLocation)
    #expect(losses[59] < losses[39] && history[39] < history[19], "both kept learning", sourceLocation: sourceLocation)
}
