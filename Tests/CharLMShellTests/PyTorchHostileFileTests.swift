// The PyTorch reference against hostile files: Tests/python/hostile_checkpoints.py makes every kind of damaged or
// crafted checkpoint that charlm's own tests make (CharLMTests/CheckpointTests.swift) and the kinds an attack on the
// reference found, runs each through scripts/torch_reference.py (`logits`, `eval`, `generate`, `train --init-from`)
// with a time limit, and checks that each is refused with status 1 and one line on stderr, without a traceback, and
// that valid files still load and give their results. Needs CHARLM_TORCH_PYTHON naming a python3 with torch, numpy
// and safetensors; skipped with a message without one. It takes minutes: each of its 200-odd runs imports torch.

import Foundation
import Testing

/// $CHARLM_TORCH_PYTHON when it names a python that imports torch and safetensors; nil otherwise.
private let hostileTestPython: String? = {
    guard let python = ProcessInfo.processInfo.environment["CHARLM_TORCH_PYTHON"], !python.isEmpty,
          let probe = try? runProgram(python, ["-c", "import torch, safetensors"]), probe.status == 0 else { return nil }
    return python
}()

@Test(.enabled(if: hostileTestPython != nil,
               "skipped: set CHARLM_TORCH_PYTHON to a python3 with torch, numpy and safetensors to run torch_reference.py on hostile files"))
func pyTorchRefusesEveryHostileCheckpointInOneLine() throws {
    let python = try #require(hostileTestPython)
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../python/hostile_checkpoints.py").standardized.path
    let result = try runProgram(python, [script, "--python", python])
    let summary = try #require(result.stdout.split(separator: "\n").last.map(String.init), "no output: \(result.stderr)")
    let counts = try #require(summary.wholeMatch(of: /hostile: (\d+) passed, (\d+) failed/),
                              "the last line is not the summary: \(summary)\n\(result.stderr)")
    #expect(result.status == 0 && counts.2 == "0", "\(result.stdout)\(result.stderr)")
    // Every kind runs: the script cannot pass by running nothing.
    #expect((Int(counts.1) ?? 0) >= 200, "\(summary)")
}
