// The transformer and nanoGPT itself (docs/testing.md, docs/checkpoints.md): a file charlm writes loads into
// nanoGPT's `GPT` (scripts/torchref/nanogpt.py, written anew from karpathy/nanoGPT model.py) by a strict
// load_state_dict and gives charlm's logits; a checkpoint as nanoGPT's train.py leaves it (ckpt.pt and meta.pkl)
// converts with `torch_reference.py convert-nanogpt` into a file charlm loads with nanoGPT's logits, AdamW state and
// step; and a transformer run hands over to PyTorch's DistributedDataParallel (torchrun, two CPU processes, gloo) and
// back, as the recurrent families' does (HandOverTests.swift). Tests/python/nanogpt_interop.py is nanoGPT's side.
// Needs a python3 with torch and safetensors (CHARLM_TORCH_PYTHON, or python3 on the PATH); skipped with a message
// without one.

import CharLM
import Foundation
import Testing

private let skipped = "skipped: no python3 with torch and safetensors (set CHARLM_TORCH_PYTHON to one)"

/// Runs Tests/python/nanogpt_interop.py with `arguments` and returns the JSON object it printed.
private func nanoGPT(_ arguments: [String], in folder: URL) throws -> [String: Any] {
    let result = try runTorchPython([projectPath("Tests/python/nanogpt_interop.py")] + arguments, in: folder)
    try #require(result.status == 0, "nanogpt_interop.py \(arguments.first ?? ""): \(result.stderr)")
    return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
}

/// charlm's (T, V) logits of the token ids `ids`, one sequence fed from position 0.
private func charlmLogits(_ model: TransformerModel, _ ids: [Int]) -> [[Float]] {
    let (T, V) = (ids.count, model.config.vocabularySize)
    let pass = model.makeTransformerPass(length: T, batch: 1)
    for (t, id) in ids.enumerated() { pass.inputs[t] = Int32(id) }
    var unused = SeededGenerator(seed: 0)
    pass.forward(length: T, batch: 1, mode: .inference, generator: &unused)
    return (0..<T).map { t in (0..<V).map { pass.logits[t * V + $0] } }
}

/// The largest difference between PyTorch's (T, V) logits and charlm's.
private func largestDifference(_ theirs: Any?, _ ours: [[Float]]) throws -> Double {
    let theirs = try #require(theirs as? [[Double]])
    try #require(theirs.count == ours.count && zip(theirs, ours).allSatisfy { $0.count == $1.count })
    return zip(theirs, ours).flatMap { zip($0, $1).map { abs($0 - Double($1)) } }.max() ?? .infinity
}

private let text = String(repeating: "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n", count: 20)

// A charlm file, trained a few steps (so LayerNorm weights and biases are no longer their initial ones) and saved with
// Adam's moments, loads into nanoGPT's GPT with strict=True once the `optim.*` tensors are dropped: its state_dict's
// keys are exactly the file's model tensors (the tied head under both names). Every position's logits agree to 1e-5.
@Test(.enabled(if: torchPython != nil, "\(skipped)"), arguments: [false, true])
func nanoGPTLoadsACharLMTransformerStrictly(bias: Bool) throws {
    let folder = try temporaryFolder()
    let corpus = try Corpus.make(text: text, normalization: .raw)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    let config = TransformerConfig(vocabularySize: corpus.vocabulary.count, embeddingSize: 16, layerCount: 2,
                                   headCount: 4, context: 24, bias: bias)
    var generator = SeededGenerator(seed: 8)
    let model = try TransformerModel(config: config, generator: &generator)
    let trainer = try Trainer(model: model, dataset: dataset, settings: TrainingSettings(
        sequenceLength: 24, batch: 4, learningRate: 0.01, weightDecay: 0.1), seed: 9)
    for _ in 0..<6 { try trainer.trainStep() }
    let path = folder.appendingPathComponent("charlm.safetensors").path
    let (training, optimizer) = trainer.state
    try Checkpoint(architecture: config, vocabulary: corpus.vocabulary, parameters: model.parameters.array,
                   optimizer: optimizer, training: training, corpus: corpus.fingerprint).save(to: path)

    let ids = corpus.vocabulary.encode("Before we proceed any fu").tokens  // 24 characters: the whole context
    let result = try nanoGPT(["read-charlm", path, ids.map(String.init).joined(separator: ",")], in: folder)
    #expect(result["keys"] as? [String] == model.layout.views.map(\.name) + ["lm_head.weight"])
    let worst = try largestDifference(result["logits"], charlmLogits(model, ids))
    #expect(worst < 1e-5, "largest logit difference \(worst)")
}

// nanoGPT's train.py's checkpoint (a compiled model's `_orig_mod.` names, configure_optimizers' AdamW after 7 steps,
// iter_num, config) and prepare.py's meta.pkl convert into a charlm file: nanoGPT's logits to 1e-5, its sizes, its
// vocabulary in index order, Adam's state and step, and train.py's settings; charlm then trains on from it.
@Test(.enabled(if: torchPython != nil, "\(skipped)"))
func aNanoGPTCheckpointConvertsIntoCharLM() throws {
    let folder = try temporaryFolder()
    let made = try nanoGPT(["make-ckpt", folder.path], in: folder)
    let out = folder.appendingPathComponent("converted.safetensors").path
    let converted = try runTorchPython([projectPath("scripts/torch_reference.py"), "convert-nanogpt",
                                        folder.appendingPathComponent("ckpt.pt").path,
                                        folder.appendingPathComponent("meta.pkl").path, out], in: folder)
    #expect(converted.status == 0, "\(converted.stderr)")
    let checkpoint = try Checkpoint.load(from: out)
    let config = try #require(checkpoint.architecture as? TransformerConfig)
    #expect(config == TransformerConfig(vocabularySize: checkpoint.vocabulary.count, embeddingSize: 16, layerCount: 2,
                                        headCount: 2, context: 24, bias: true, dropout: 0))
    let characters = Array(Set(text.unicodeScalars)).sorted { $0.value < $1.value }
    #expect(checkpoint.vocabulary.count == characters.count)
    #expect(try checkpoint.vocabulary.decode(Array(0..<characters.count)) == String(String.UnicodeScalarView(characters)))
    let model = try TransformerModel(config: config, parameters: checkpoint.parameters)
    let ids = try #require(made["ids"] as? [Int])
    let worst = try largestDifference(made["logits"], charlmLogits(model, ids))
    #expect(worst < 1e-5, "largest logit difference \(worst)")

    let iterations = try #require(made["iter_num"] as? Int)
    let optimizer = try #require(checkpoint.optimizer)
    #expect(optimizer.stepCount == iterations && optimizer.settings.beta2 == 0.99 && optimizer.settings.weightDecay == 0.1)
    #expect(optimizer.secondMoment.allSatisfy { $0 >= 0 } && optimizer.secondMoment.contains { $0 > 0 })
    let training = try #require(checkpoint.training)
    #expect(training.step == iterations && training.settings.sequenceLength == 24 && training.settings.batch == 4)
    #expect(training.settings.warmupSteps == 2 && training.settings.decaySteps == 50 && training.settings.clip == 1)

    let corpus = try Corpus.make(text: text, normalization: .raw)
    let trainer = try Trainer(model: model, dataset: try Dataset(tokens: corpus.tokens, validationFraction: 0.1),
                              settings: training.settings, seed: 1)
    try trainer.restore(training: training, optimizer: optimizer)
    let loss = try trainer.trainStep()
    #expect(loss.isFinite && trainer.step == iterations + 1)
}

// The hand-over of HandOverTests.swift for the transformer: charlm trains 20 steps and saves; PyTorch (nanoGPT's GPT
// with nanoGPT's AdamW groups) gives it back untouched, then continues 20 steps on two processes and saves; charlm
// loads that and trains 20 more. No restart spike at either hand-over.
@Test(.enabled(if: torchPython != nil, "\(skipped)"))
func aTransformerRunHandsOverToPyTorchDistributedAndBack() throws {
    let folder = try temporaryFolder()
    let textPath = folder.appendingPathComponent("tiny.txt").path
    try FileManager.default.copyItem(atPath: fixture("tiny.txt"), toPath: textPath)
    let corpus = try Corpus.load(path: textPath, normalization: .raw)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    let config = TransformerConfig(vocabularySize: corpus.vocabulary.count, embeddingSize: 32, layerCount: 2,
                                   headCount: 4, context: 32, bias: false, dropout: 0.1)
    var generator = SeededGenerator(seed: 3)
    let model = try TransformerModel(config: config, generator: &generator)
    let settings = TrainingSettings(sequenceLength: 32, batch: 64, learningRate: 0.003, clip: 1, warmupSteps: 5,
                                    decaySteps: 80, weightDecay: 0.1)
    let trainer = try Trainer(model: model, dataset: dataset, settings: settings, seed: 4)
    trainer.optimizer.settings.beta2 = 0.99
    for _ in 0..<20 { try trainer.trainStep() }
    let first = folder.appendingPathComponent("charlm-20.safetensors").path
    let (training, optimizer) = trainer.state
    let saved = Checkpoint(architecture: config, vocabulary: corpus.vocabulary, parameters: model.parameters.array,
                           optimizer: optimizer, training: training, corpus: corpus.fingerprint)
    try saved.save(to: first)

    // PyTorch takes it and gives it straight back (0 steps): every tensor and Adam moment arrives intact.
    let roundTrip = folder.appendingPathComponent("torch-0.safetensors").path
    let zero = try torchrun(["--corpus", textPath, "--init-from", first, "--steps", "0", "--save", roundTrip], in: folder)
    #expect(zero.status == 0, "\(zero.stderr)")
    let back = try Checkpoint.load(from: roundTrip)
    #expect(back.parameters == saved.parameters)
    let (a, b) = (try #require(saved.optimizer), try #require(back.optimizer))
    for view in model.layout.views {
        #expect(Array(a.firstMoment[view.range]) == Array(b.firstMoment[view.range]), "exp_avg of \(view.name)")
        #expect(Array(a.secondMoment[view.range]) == Array(b.secondMoment[view.range]), "exp_avg_sq of \(view.name)")
    }
    #expect(a.stepCount == b.stepCount && a.settings == b.settings)
    #expect(back.training?.settings == saved.training?.settings && back.training?.step == 20)
    #expect((back.architecture as? TransformerConfig) == config && back.vocabulary == saved.vocabulary)

    // PyTorch continues 20 steps on two processes (the batch of 64 split 32 + 32) and saves.
    let second = folder.appendingPathComponent("torch-40.safetensors").path
    let torch = try torchrun(["--corpus", textPath, "--init-from", first, "--steps", "20", "--eval-every", "10",
                              "--save", second], in: folder)
    #expect(torch.status == 0, "\(torch.stderr)")
    let continued = try Checkpoint.load(from: second)
    let history = try #require(continued.training?.lossHistory)
    #expect(continued.training?.step == 40 && continued.optimizer?.stepCount == 40 && history.count == 40)
    #expect(Array(history.prefix(20)) == trainer.lossHistory, "charlm's history travels on")

    // charlm loads it, with its optimizer, and trains on.
    let resumedModel = try TransformerModel(config: config, parameters: continued.parameters)
    let resumed = try Trainer(model: resumedModel, dataset: dataset, settings: settings, seed: 5)
    try resumed.restore(training: try #require(continued.training), optimizer: continued.optimizer)
    #expect(resumed.optimizer.settings.beta2 == 0.99 && resumed.settings == settings)
    for _ in 0..<20 { try resumed.trainStep() }
    #expect(resumed.step == 60)
    expectSmoothHandOvers(torch: history, charlm: resumed.lossHistory)
}
