// Checkpoints shared with PyTorch: a tiny model PyTorch trained and saved (committed fixture), the shared
// tiny-shakespeare model trained on a GPU (when ../shared is present), and charlm's own files read by the PyTorch
// script (when a Python with torch is named in CHARLM_TORCH_PYTHON).

import CharLM
import Foundation
import Testing

/// The model and generator for a checkpoint file.
private func loadModel(_ path: String) throws -> (Checkpoint, RecurrentModel) {
    let checkpoint = try Checkpoint.load(from: path)
    return (checkpoint, try RecurrentModel(config: checkpoint.config, parameters: checkpoint.parameters))
}

/// nn.LSTM, nn.GRU and nn.RNN models PyTorch trained briefly and saved (`fixture-checkpoint [--cell gru|rnn]`).
@Test(arguments: [("torch-tiny", LayerKind.lstm), ("torch-gru-tiny", .gru), ("torch-rnn-tiny", .rnn)])
func aModelPyTorchSavedGivesPyTorchsLogitsAndText(fixture: String, cell: LayerKind) throws {
    let (checkpoint, model) = try loadModel(fixtureURL(fixture + ".safetensors").path)
    #expect(checkpoint.config.layerKind == cell)
    #expect(checkpoint.notes.contains("no optimizer state in the file: training continues with a fresh optimizer"))
    let expected = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: fixtureURL(fixture + "-expected.json"))) as? [String: Any])
    let prompt = try #require(expected["prompt"] as? String)
    let logits = try #require(expected["logits"] as? [Double])
    let encoding = checkpoint.vocabulary.encode(prompt)
    #expect(encoding.dropped.isEmpty)
    let ours = try TextGenerator(model: model).logits(after: encoding.tokens)
    #expect(ours.count == logits.count)
    for (index, value) in logits.enumerated() { #expect(abs(Double(ours[index]) - value) < 1e-4, "logit \(index)") }
    var generator = SeededGenerator(seed: 0)
    let greedy = try TextGenerator(model: model).generate(
        prompt: encoding.tokens, count: 40, settings: SamplingSettings(temperature: 0), primer: 0, generator: &generator)
    #expect(try checkpoint.vocabulary.decode(greedy) == expected["greedy"] as? String)
}

private let sharedModel = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../../shared/models/tinyshakespeare-h256-pytorch.safetensors").standardizedFileURL.path
private let sharedCorpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../../shared/data/tinyshakespeare.txt").standardizedFileURL.path
private let sharedPresent = FileManager.default.fileExists(atPath: sharedModel) && FileManager.default.fileExists(atPath: sharedCorpus)

@Test(.enabled(if: sharedPresent, "../shared/models and ../shared/data are absent: the shared PyTorch model cannot be checked"))
func theSharedPyTorchModelScoresItsPublishedValidationLoss() throws {
    let (checkpoint, model) = try loadModel(sharedModel)
    #expect(checkpoint.config == RecurrentConfig(vocabularySize: 65, embeddingSize: 64, hiddenSize: 256, layerCount: 2))
    let corpus = try Corpus.load(path: sharedCorpus, normalization: checkpoint.vocabulary.normalization)
    #expect(corpus.vocabulary.scalars == checkpoint.vocabulary.scalars)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    let evaluation = try evaluate(model: model, dataset: dataset, length: 100, batch: 64)
    // PyTorch measured 1.6661 nats/char with this protocol (../shared/README.md).
    #expect(abs(evaluation.nats - 1.6661) < 0.002, "validation loss \(evaluation.nats)")
    #expect(evaluation.characters == (dataset.validationRange.count - 1) / 100 * 100)
}

@Test(.enabled(if: sharedPresent, "../shared/models is absent: the shared PyTorch model cannot be checked"))
func theSharedPyTorchModelGeneratesWhatPyTorchGenerates() throws {
    let (checkpoint, model) = try loadModel(sharedModel)
    // Made by: python3 scripts/torch_reference.py generate --model <shared model> --prompt "ROMEO:" --length 300
    let expected = try String(contentsOf: fixtureURL("shared-model-romeo-greedy.txt"), encoding: .utf8)
    var generator = SeededGenerator(seed: 0)
    let prompt = checkpoint.vocabulary.encode("ROMEO:").tokens
    let output = try TextGenerator(model: model).generate(
        prompt: prompt, count: 300, settings: SamplingSettings(temperature: 0), primer: 0, generator: &generator)
    #expect("ROMEO:" + (try checkpoint.vocabulary.decode(output)) == expected)
}

private let torchPython = ProcessInfo.processInfo.environment["CHARLM_TORCH_PYTHON"]

@Test(.enabled(if: torchPython != nil, "set CHARLM_TORCH_PYTHON to a python3 with torch and safetensors to run this check"),
      arguments: LayerKind.allCases)
func pyTorchReadsAFileCharLMWrote(cell: LayerKind) throws {
    // A charlm file with everything in it (optimizer tensors included) must load in the PyTorch script and give
    // the same logits.
    let corpus = try Corpus.make(text: String(repeating: "Now is the winter of our discontent\n", count: 10), normalization: .raw)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    var generator = SeededGenerator(seed: 4)
    let model = try RecurrentModel(config: RecurrentConfig(vocabularySize: corpus.vocabulary.count, embeddingSize: 5, hiddenSize: 9, layerCount: 2, layerKind: cell), generator: &generator)
    let trainer = try Trainer(model: model, dataset: dataset, settings: TrainingSettings(sequenceLength: 10, batch: 4), seed: 5)
    for _ in 0..<5 { try trainer.trainStep() }
    let (training, optimizer) = trainer.state
    let path = try makeTemporaryFolder().appendingPathComponent("charlm.safetensors").path
    try Checkpoint(config: model.config, vocabulary: corpus.vocabulary, parameters: model.parameters.array,
                   optimizer: optimizer, training: training, corpus: corpus.fingerprint).save(to: path)
    let prompt = "Now is the"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: torchPython!)
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../scripts/torch_reference.py").standardizedFileURL.path
    process.arguments = [script, "logits", "--model", path, "--prompt", prompt]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
    let result = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    let theirs = try #require(result["logits"] as? [Double])
    let ours = try TextGenerator(model: model).logits(after: corpus.vocabulary.encode(prompt).tokens)
    #expect(theirs.count == ours.count)
    for index in 0..<min(theirs.count, ours.count) { #expect(abs(theirs[index] - Double(ours[index])) < 1e-4) }
}
