// Checkpoints name no family: a family brings its tensors' names and flags (decayed, tied) and reads its own
// config. A toy family, known only to this test, shows that a new family adds its own table and nothing in
// Checkpoint.swift: its config is written and read back, its tied tensor is written under both names (equal) and
// read from either or both, two differing copies are refused, and AdamW decays what it flags.

@testable import CharLM
import Foundation
import Testing

/// A toy architecture: `tok.weight` (V, 3), tied to `head.weight`, and `head.bias` (V).
private struct TiedToy: ModelArchitecture {
    let vocabularySize: Int
    var kindName: String { "toy" }
    var parameters: ParameterTable {
        var builder = ParameterTable.Builder()
        _ = builder.add("tok.weight", [vocabularySize, 3], decayed: true, aliases: ["head.weight"])
        _ = builder.add("head.bias", [vocabularySize])
        return builder.table
    }
    var summary: String { "toy" }
    func validate() throws {}
    var parameterCount: Double { Double(4 * vocabularySize) }
    var modelBytes: Double { 8 * parameterCount }
    func passBytes(length T: Int, batch B: Int) -> Double { 0 }
    var sizeNames: ModelSizeNames { ModelSizeNames(full: "toy", short: "toy", allSettings: "nothing", mainSettings: "nothing") }
    func missingTensorHint(tensorNames: Set<String>) -> String? { nil }
    var checkpointConfig: [(key: String, json: String)] { [("arch", jsonString("toy"))] }
    func makeModel(parameters: [Float]?) throws -> any TrainableLanguageModel { throw CharLMError.refused("a toy") }
    func makeModel(generator: inout SeededGenerator) throws -> any TrainableLanguageModel { throw CharLMError.refused("a toy") }
    func isEqual(to other: any ModelArchitecture) -> Bool { (other as? TiedToy)?.vocabularySize == vocabularySize }

    static func read(_ config: CheckpointConfig) throws -> (any ModelArchitecture)? {
        config.json["arch"]?.string == "toy" ? TiedToy(vocabularySize: config.vocabularySize) : nil
    }
}

private let families: [ModelFamilies.Reader] = [{ try TiedToy.read($0) }] + ModelFamilies.readers

@Test func aFamilyBringsItsOwnTableAndTiedTensorsAreWrittenUnderEachName() throws {
    let vocabulary = try Vocabulary(scalars: ["a", "b"], normalization: NormalizationOptions())
    let toy = TiedToy(vocabularySize: 2)
    let values: [Float] = [1, 2, 3, 4, 5, 6, 7, 8]
    let bytes = Checkpoint(architecture: toy, vocabulary: vocabulary, parameters: values).serialized()
    let file = try SafeTensorsFile.parse(bytes, path: "toy")
    let byName = Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, $0.values) })
    #expect(byName["tok.weight"] == [1, 2, 3, 4, 5, 6] && byName["head.weight"] == byName["tok.weight"])
    #expect(file.metadata["config"]?.contains("\"arch\": \"toy\"") == true)

    let loaded = try Checkpoint.parse(bytes, path: "toy", families: families)
    #expect(loaded.architecture.isEqual(to: toy) && loaded.parameters == values)
    // Without the family, the same file reads as the recurrent family's and is refused for what it lacks.
    #expect(throws: CharLMError.self) { try Checkpoint.parse(bytes, path: "toy") }

    // Either name alone loads; two copies that differ are refused.
    func rewritten(_ edit: (inout [NamedTensor]) -> Void) -> [UInt8] {
        var tensors = file.tensors
        edit(&tensors)
        return SafeTensorsFile(metadata: file.metadata, tensors: tensors).serialized()
    }
    for dropped in ["tok.weight", "head.weight"] {
        let one = rewritten { $0.removeAll { $0.name == dropped } }
        #expect(try Checkpoint.parse(one, path: "toy", families: families).parameters == values, "without \(dropped)")
    }
    let differing = rewritten { tensors in
        let index = tensors.firstIndex { $0.name == "head.weight" }!
        tensors[index] = NamedTensor(name: "head.weight", shape: [2, 3], values: [1, 2, 3, 4, 5, 7])
    }
    #expect(throws: CharLMError.badCheckpoint(path: "toy", problem: "tensors 'tok.weight' and 'head.weight' are one tied tensor but differ")) {
        try Checkpoint.parse(differing, path: "toy", families: families)
    }
    // The flags: AdamW decays the tied weight (once: it is one range), not the bias.
    #expect(toy.parameters.decayedRanges == [0..<6])
    #expect(toy.parameters.view(named: "head.weight")?.name == "tok.weight")
}
