// The transformer against PyTorch: the committed fixture (made by `scripts/torch_reference.py fixture-transformer`
// from nanoGPT's GPT, scripts/torchref/nanogpt.py) holds a tiny model with bias off and on, one batch with the logits,
// loss and gradients PyTorch computed, and twelve AdamW steps in nanoGPT's groups with clipping. charlm reads the
// same parameters by their state_dict names and must reproduce all of it.

@testable import CharLM
import Foundation
import Testing

private struct TransformerFixture {
    let config: [String: Double]
    let cases: [[String: Any]]

    init() throws {
        let data = try Data(contentsOf: fixtureURL("torch-transformer.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        config = try #require(json["config"] as? [String: Double])
        cases = try #require(json["cases"] as? [[String: Any]])
    }

    func architecture(bias: Bool) -> TransformerConfig {
        TransformerConfig(vocabularySize: Int(config["vocab"]!), embeddingSize: Int(config["embed"]!),
                          layerCount: Int(config["layers"]!), headCount: Int(config["heads"]!),
                          context: Int(config["context"]!), bias: bias)
    }
}

/// Tensors by state_dict name, laid out flat by `layout`.
private func flat(_ named: [String: [Double]], _ layout: TransformerLayout) throws -> [Float] {
    var values = [Float](repeating: .nan, count: layout.totalCount)
    for view in layout.views {
        let tensor = try #require(named[view.name], "no \(view.name) in the fixture")
        try #require(tensor.count == view.count)
        values.replaceSubrange(view.range, with: tensor.map(Float.init))
    }
    return values
}

// The state_dict's names are charlm's, in the same order (the tied head last, as nanoGPT's module lists it); the
// logits, the loss and every gradient agree with PyTorch's to 1e-5.
@Test(arguments: [false, true])
func transformerForwardAndBackwardReproducePyTorch(bias: Bool) throws {
    let fixture = try TransformerFixture()
    let data = try #require(fixture.cases.first { ($0["bias"] as? Bool) == bias })
    let config = fixture.architecture(bias: bias)
    let layout = TransformerLayout(config: config)
    let keys = try #require(data["state_dict_keys"] as? [String])
    #expect(keys == layout.views.map(\.name) + ["lm_head.weight"])

    let model = try TransformerModel(config: config, parameters: try flat(try #require(data["parameters"] as? [String: [Double]]), layout))
    let inputs = try #require(data["inputs"] as? [[Int]]), targets = try #require(data["targets"] as? [[Int]])
    let (B, T, V) = (inputs.count, inputs[0].count, config.vocabularySize)
    let pass = model.makeTransformerPass(length: T, batch: B)
    load(inputs, into: pass.inputs)
    load(targets, into: pass.targets)
    var unused = SeededGenerator(seed: 0)
    pass.forward(length: T, batch: B, mode: .training, generator: &unused)  // dropout 0: training draws nothing
    let logits = try #require(data["logits"] as? [[[Double]]])
    var worst = 0.0
    for b in 0..<B {
        for t in 0..<T {
            for v in 0..<V { worst = max(worst, abs(Double(pass.logits[(t * B + b) * V + v]) - logits[b][t][v])) }
        }
    }
    #expect(worst < 1e-5, "largest logit difference \(worst)")
    let loss = pass.loss(length: T, batch: B, vocabularySize: V, gradient: true)
    #expect(abs(loss - (try #require(data["loss"] as? Double))) < 1e-5)
    model.gradients.zero()
    pass.backward(length: T, batch: B)
    let expected = try flat(try #require(data["gradients"] as? [String: [Double]]), layout)
    for view in layout.views {
        let difference = view.range.map { abs(model.gradients[$0] - expected[$0]) }.max()!
        #expect(difference < 1e-5, "\(view.name): largest gradient difference \(difference)")
    }
}

// Twelve AdamW steps in nanoGPT's groups (every 2-D tensor decayed, the embeddings and the tied weight included),
// betas 0.9 and 0.99, weight decay 0.1, clipped at norm 1 (most steps): the losses and norms agree, and so do the
// final parameters to 1e-5, but for the keys' biases. Their true gradient is zero (a softmax ignores a constant
// added to every score), so Adam moves them by the sign of float32 rounding noise, differently on each side, without
// changing anything the model computes.
@Test(arguments: [false, true])
func transformerAdamWStepsReproducePyTorch(bias: Bool) throws {
    let fixture = try TransformerFixture()
    let data = try #require(fixture.cases.first { ($0["bias"] as? Bool) == bias })
    let config = fixture.architecture(bias: bias)
    let layout = TransformerLayout(config: config)
    let model = try TransformerModel(config: config, parameters: try flat(try #require(data["parameters"] as? [String: [Double]]), layout))
    let (T, B, V) = (Int(fixture.config["seq"]!), Int(fixture.config["batch"]!), config.vocabularySize)
    let dataset = try Dataset(tokens: TokenBuffer(Array(repeating: 0, count: T + 1), vocabularySize: V), validationFraction: 0)
    let trainer = try Trainer(
        model: model, dataset: dataset,
        settings: TrainingSettings(sequenceLength: T, batch: B, learningRate: Float(fixture.config["lr"]!),
                                   clip: Float(fixture.config["clip"]!), weightDecay: Float(fixture.config["weight_decay"]!)),
        seed: 0)
    trainer.optimizer.settings.beta2 = Float(fixture.config["beta2"]!)
    let steps = try #require(data["steps"] as? [[String: Any]])
    var clipped = 0
    for (index, step) in steps.enumerated() {
        let loss = try trainer.trainStep(inputs: try #require(step["inputs"] as? [[Int]]),
                                         targets: try #require(step["targets"] as? [[Int]]))
        #expect(abs(loss - (try #require(step["loss"] as? Double))) < 1e-5, "step \(index): loss \(loss)")
        let norm = try #require(step["grad_norm"] as? Double)
        #expect(abs(trainer.lastGradientNorm - norm) < 1e-4 * norm, "step \(index): gradient norm")
        if norm > Double(fixture.config["clip"]!) { clipped += 1 }
    }
    #expect(clipped > 0 && clipped < steps.count, "the fixture exercises both clipped and unclipped steps")
    let final = try flat(try #require(data["final_parameters"] as? [String: [Double]]), layout)
    let E = config.embeddingSize
    let keyBiases = Set(layout.blocks.compactMap(\.attentionBias).flatMap { ($0.offset + E)..<($0.offset + 2 * E) })
    var worst = 0.0
    for index in 0..<layout.totalCount where !keyBiases.contains(index) {
        worst = max(worst, abs(Double(model.parameters[index]) - Double(final[index])))
    }
    #expect(worst < 1e-5, "largest parameter difference after \(steps.count) steps: \(worst)")
}
