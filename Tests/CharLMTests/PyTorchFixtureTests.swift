// Whole training steps against PyTorch: the committed fixture (made by `scripts/torch_reference.py
// fixture-training`) holds a small model's initial parameters, 30 batches with the loss PyTorch computed for each,
// with grad-norm clipping (active on most steps) and Adam, and PyTorch's final parameters. Replaying the same
// batches must reproduce them: gradients, clipping and Adam all agree with PyTorch's, not just with our own maths.
// A second fixture (`fixture-training --wd 0.1`) does the same for AdamW; two more for the GRU and the RNN
// (`--cell gru`, `--cell rnn`).

import CharLM
import Foundation
import Testing

/// The URL of a committed fixture file.
func fixtureURL(_ name: String) -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
}

/// Replays a training fixture with `weightDecay` (nil: the fixture's own): the losses charlm computes on its batches,
/// and the largest difference between charlm's final parameters and PyTorch's.
private func replayTrainingFixture(_ name: String, weightDecay: Float? = nil)
    throws -> (losses: [(charlm: Double, pytorch: Double)], clippedSteps: Int, norms: [(Double, Double)], worst: Double) {
    let data = try Data(contentsOf: fixtureURL(name))
    let fixture = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    let config = try #require(fixture["config"] as? [String: Double])
    let initial = try #require(fixture["initial_parameters"] as? [Double]).map(Float.init)
    let final = try #require(fixture["final_parameters"] as? [Double])
    let steps = try #require(fixture["steps"] as? [[String: Any]])
    let (V, T, B) = (Int(config["vocab"]!), Int(config["seq"]!), Int(config["batch"]!))
    let cell = try #require(LayerKind(rawValue: fixture["cell"] as? String ?? "lstm"))

    let model = try RecurrentModel(
        config: RecurrentConfig(vocabularySize: V, embeddingSize: Int(config["embed"]!), hiddenSize: Int(config["hidden"]!),
                            layerCount: Int(config["layers"]!), layerKind: cell),
        parameters: initial)
    // The dataset only has to hold one window; every batch comes from the fixture.
    let dataset = try Dataset(tokens: TokenBuffer(Array(repeating: 0, count: T + 1), vocabularySize: V), validationFraction: 0)
    let trainer = try Trainer(
        model: model, dataset: dataset,
        settings: TrainingSettings(sequenceLength: T, batch: B, learningRate: Float(config["lr"]!), clip: Float(config["clip"]!),
                                   weightDecay: weightDecay ?? Float(config["weight_decay"] ?? 0)),
        seed: 0)
    var losses: [(Double, Double)] = [], norms: [(Double, Double)] = []
    var clippedSteps = 0
    for step in steps {
        let inputs = try #require(step["inputs"] as? [[Int]])
        let targets = try #require(step["targets"] as? [[Int]])
        losses.append((try trainer.trainStep(inputs: inputs, targets: targets), try #require(step["loss"] as? Double)))
        let expectedNorm = try #require(step["grad_norm"] as? Double)
        norms.append((trainer.lastGradientNorm, expectedNorm))
        if expectedNorm > Double(config["clip"]!) { clippedSteps += 1 }
    }
    let parameters = model.parameters.array
    var worst = 0.0
    for index in 0..<final.count { worst = max(worst, abs(Double(parameters[index]) - final[index])) }
    return (losses, clippedSteps, norms, worst)
}

/// The LSTM's fixture, and the GRU's and the vanilla RNN's (`fixture-training --cell gru|rnn`).
@Test(arguments: ["torch-training-steps.json", "torch-gru-training-steps.json", "torch-rnn-training-steps.json"])
func trainingStepsReproducePyTorch(fixture: String) throws {
    let replay = try replayTrainingFixture(fixture)
    for (index, (loss, expected)) in replay.losses.enumerated() {
        // Float32 throughout on both sides; differences grow slowly through 30 Adam steps (measured ~1e-6).
        #expect(abs(loss - expected) < 2e-5, "step \(index): loss \(loss), PyTorch \(expected)")
    }
    for (index, (norm, expected)) in replay.norms.enumerated() {
        #expect(abs(norm - expected) < 1e-4 * expected, "step \(index): gradient norm")
    }
    #expect(replay.clippedSteps > 20 && replay.clippedSteps < replay.losses.count, "the fixture exercises both clipped and unclipped steps")
    #expect(replay.worst < 1e-4, "largest parameter difference after 30 steps: \(replay.worst)")
}

/// AdamW (`set wd`): PyTorch's torch.optim.AdamW with weight decay 0.1 on the weight matrices only (two parameter
/// groups, as nanoGPT makes them), 12 steps with clipping. Matched to 1e-5; without the decay charlm lands far off, so
/// the fixture does test the decay.
@Test func adamWStepsReproducePyTorch() throws {
    let replay = try replayTrainingFixture("torch-adamw-steps.json")
    for (index, (loss, expected)) in replay.losses.enumerated() {
        #expect(abs(loss - expected) < 1e-5, "step \(index): loss \(loss), PyTorch \(expected)")
    }
    #expect(replay.worst < 1e-5, "largest parameter difference after 12 AdamW steps: \(replay.worst)")
    let withoutDecay = try replayTrainingFixture("torch-adamw-steps.json", weightDecay: 0)
    #expect(withoutDecay.worst > 1e-3, "plain Adam differs from the fixture by \(withoutDecay.worst)")
}

/// The decay touches the weight matrices and nothing else: with zero gradients Adam's step is zero, so after one
/// update each W_ih, W_hh and fc.weight entry is exactly p * (1 - lr * wd) and every bias and embedding entry is as it was.
@Test func weightDecayScalesOnlyTheWeightMatrices() throws {
    let config = RecurrentConfig(vocabularySize: 7, embeddingSize: 3, hiddenSize: 5, layerCount: 2)
    let layout = RecurrentLayout(config: config)
    let before = (0..<layout.totalCount).map { Float($0 % 13) * 0.1 - 0.6 }
    let parameters = FloatBuffer(before), gradients = FloatBuffer(count: layout.totalCount)
    let adam = Adam(parameterCount: layout.totalCount, settings: AdamSettings(learningRate: 0.01, weightDecay: 0.5),
                    decayedRanges: layout.decayedRanges)
    adam.update(parameters: parameters, gradients: gradients)
    let after = parameters.array
    let weightNames = Set(layout.layers.flatMap { [$0.weightIH.name, $0.weightHH.name] } + ["fc.weight"])
    #expect(weightNames.count == 5)
    for view in layout.views {
        let keep: Float = weightNames.contains(view.name) ? 1 - 0.01 * 0.5 : 1
        for index in view.offset..<(view.offset + view.count) {
            #expect(after[index] == before[index] * keep, "\(view.name)[\(index - view.offset)]")
        }
    }
}
