// Whole training steps against PyTorch: the committed fixture (made by `scripts/torch_reference.py
// fixture-training`) holds a small model's initial parameters, 30 batches with the loss PyTorch computed for each,
// with grad-norm clipping (active on most steps) and Adam, and PyTorch's final parameters. Replaying the same
// batches must reproduce them: gradients, clipping and Adam all agree with PyTorch's, not just with our own maths.

import CharLM
import Foundation
import Testing

/// The URL of a committed fixture file.
func fixtureURL(_ name: String) -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
}

@Test func trainingStepsReproducePyTorch() throws {
    let data = try Data(contentsOf: fixtureURL("torch-training-steps.json"))
    let fixture = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    let config = try #require(fixture["config"] as? [String: Double])
    let initial = try #require(fixture["initial_parameters"] as? [Double]).map(Float.init)
    let final = try #require(fixture["final_parameters"] as? [Double])
    let steps = try #require(fixture["steps"] as? [[String: Any]])
    let (V, T, B) = (Int(config["vocab"]!), Int(config["seq"]!), Int(config["batch"]!))

    let model = try CharModel(
        config: ModelConfig(vocabularySize: V, embeddingSize: Int(config["embed"]!), hiddenSize: Int(config["hidden"]!),
                            layerCount: Int(config["layers"]!)),
        parameters: initial)
    // The dataset only has to hold one window; every batch comes from the fixture.
    let dataset = try Dataset(tokens: TokenBuffer(Array(repeating: 0, count: T + 1), vocabularySize: V), validationFraction: 0)
    let trainer = try Trainer(
        model: model, dataset: dataset,
        settings: TrainingSettings(sequenceLength: T, batch: B, learningRate: Float(config["lr"]!), clip: Float(config["clip"]!)),
        seed: 0)
    var clippedSteps = 0
    for (index, step) in steps.enumerated() {
        let inputs = try #require(step["inputs"] as? [[Int]])
        let targets = try #require(step["targets"] as? [[Int]])
        let loss = try trainer.trainStep(inputs: inputs, targets: targets)
        let expected = try #require(step["loss"] as? Double)
        let expectedNorm = try #require(step["grad_norm"] as? Double)
        // Float32 throughout on both sides; differences grow slowly through 30 Adam steps (measured ~1e-6).
        #expect(abs(loss - expected) < 2e-5, "step \(index): loss \(loss), PyTorch \(expected)")
        #expect(abs(trainer.lastGradientNorm - expectedNorm) < 1e-4 * expectedNorm, "step \(index): gradient norm")
        if expectedNorm > Double(config["clip"]!) { clippedSteps += 1 }
    }
    #expect(clippedSteps > 20 && clippedSteps < steps.count, "the fixture exercises both clipped and unclipped steps")
    let parameters = model.parameters.array
    var worst = 0.0
    for index in 0..<final.count { worst = max(worst, abs(Double(parameters[index]) - final[index])) }
    #expect(worst < 1e-4, "largest parameter difference after 30 steps: \(worst)")
}
