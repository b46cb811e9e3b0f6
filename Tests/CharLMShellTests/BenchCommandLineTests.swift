// The built charlm-bench binary's command line: a misspelt option is bad usage (exit 2, with ArgumentParser's
// suggestion), and a tiny speed measurement prints its one JSON line.

import Foundation
import Testing

/// Runs charlm-bench with `arguments` in a fresh temporary folder (so the default corpus path finds nothing and
/// the speed figures use their synthetic text), stdin from /dev/null.
private func runBench(_ arguments: [String]) throws -> ProcessResult {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    return try runProgram(benchBinary, arguments, in: folder)
}

@Test func aMisspeltOptionIsBadUsageWithASuggestion() throws {
    let result = try runBench(["train-speed", "--hiden", "128"])
    #expect(result.status == 2)
    #expect(result.stderr.contains("--hiden"))
    #expect(result.stderr.contains("--hidden"))
    #expect(result.stdout.isEmpty)
}

@Test func aTinyTrainSpeedPrintsOneJSONLine() throws {
    let result = try runBench(["train-speed", "--hidden", "8", "--embed", "4", "--seq", "5", "--batch", "2",
                               "--steps", "1", "--warmup", "0"])
    #expect(result.status == 0, "stderr: \(result.stderr)")
    let lines = result.stdout.split(separator: "\n")
    #expect(lines.count == 1)
    let line = try #require(lines.first)
    #expect(line.contains("\"tokens_per_s\""))
    let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    #expect((object?["tokens_per_s"] as? Double).map { $0 > 0 } == true)
}
