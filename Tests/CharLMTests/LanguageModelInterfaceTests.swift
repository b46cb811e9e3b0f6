// Every family through the model interface alone (Models/LanguageModel.swift): made from its architecture, trained
// by the trainer, evaluated by the one protocol, generating through the one loop, saved and read back by
// checkpoints that name no family. The recurrent cells, the transformer and the n-grams; each result is checked
// against a path that does not go through the interface (the training pass recomputing the whole text, the n-gram's
// own one-pass evaluation and its distribution).

@testable import CharLM
import Foundation
import Testing

private let text = String(repeating: "the cat sat on the mat. the dog sat on the log.\n", count: 30)

/// The index of the largest of V scores (the lowest index among ties), as temperature 0 picks.
private func argmax(_ scores: UnsafePointer<Float>, _ V: Int) -> Int {
    var best = 0
    for v in 1..<V where scores[v] > scores[best] { best = v }
    return best
}

/// A small model of the trainable kind `kind` ("lstm", "gru", "rnn" or "transformer") over V characters; the
/// transformer's context holds the whole text the generation check below recomputes.
private func trainableArchitecture(_ kind: String, vocabularySize V: Int) -> any ModelArchitecture {
    guard let cell = LayerKind(rawValue: kind) else {
        return TransformerConfig(vocabularySize: V, embeddingSize: 16, layerCount: 2, headCount: 2, context: 32)
    }
    return RecurrentConfig(vocabularySize: V, embeddingSize: 8, hiddenSize: 16, layerCount: 2, layerKind: cell)
}

@Test(arguments: LayerKind.allCases.map(\.rawValue) + ["transformer"])
func aTrainableFamilyTrainsEvaluatesGeneratesAndSavesThroughTheInterface(kind: String) throws {
    let corpus = try Corpus.make(text: text, normalization: NormalizationOptions())
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    let V = corpus.vocabulary.count
    let architecture = trainableArchitecture(kind, vocabularySize: V)
    var generator = SeededGenerator(seed: 3)
    let model: any TrainableLanguageModel = try architecture.makeModel(generator: &generator)
    #expect(model.parameters.count == architecture.parameters.totalCount)

    // Training: the trainer sees only the interface.
    let trainer = try Trainer(model: model, dataset: dataset,
                              settings: TrainingSettings(sequenceLength: 16, batch: 8, learningRate: 1e-2), seed: 4)
    let before = try evaluate(model: model, dataset: dataset, length: 16, batch: 8)
    for _ in 0..<60 { try trainer.trainStep() }
    let after = try evaluate(model: model, dataset: dataset, length: 16, batch: 8)
    #expect(after.nats < before.nats - 0.5, "\(before.nats) -> \(after.nats)")
    // The one protocol on a scorer of its own agrees with the trainer's own pass, window for window.
    #expect(abs(after.nats - (try trainer.evaluate()).nats) < 1e-9)

    // Generation: greedy characters through the decoder equal the argmax of a full forward pass over the text so
    // far (the training pass, recomputing everything each character).
    let prompt = corpus.vocabulary.encode("the c").tokens
    var unused = SeededGenerator(seed: 0)
    let generated = try TextGenerator(model: model).generate(
        prompt: prompt, count: 12, settings: SamplingSettings(temperature: 0), primer: 0, generator: &unused)
    var sequence = prompt
    for token in generated {
        let pass = model.makePass(length: sequence.count, batch: 1, context: .machine)
        for (t, previous) in sequence.enumerated() { pass.inputs[t] = Int32(previous) }
        pass.forward(length: sequence.count, batch: 1, mode: .inference, generator: &unused)
        #expect(token == argmax(pass.logits.pointer + (sequence.count - 1) * V, V))
        sequence.append(token)
    }

    // Checkpoints: the family names its tensors and config, and reads them back.
    let bytes = Checkpoint(architecture: model.architecture, vocabulary: corpus.vocabulary,
                           parameters: model.parameters.array).serialized()
    let loaded = try Checkpoint.parse(bytes, path: "interface.safetensors")
    #expect(loaded.architecture.isEqual(to: architecture) && loaded.architecture.kindName == kind)
    #expect(loaded.parameters == model.parameters.array)
    let reloaded = try loaded.architecture.makeModel(parameters: loaded.parameters)
    #expect(abs((try evaluate(model: reloaded, dataset: dataset, length: 16, batch: 8)).nats - after.nats) < 1e-12)
}

@Test func theNGramsEvaluateAndGenerateThroughTheInterface() throws {
    let corpus = try Corpus.make(text: text, normalization: NormalizationOptions())
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    let V = corpus.vocabulary.count
    let counts = try NGramModel(dataset: dataset, vocabularySize: V, order: 4, maximumBytes: 1e9)
    let direct = try counts.evaluateOrders(dataset: dataset, length: 20)
    for order in 1...4 {
        let model: any LanguageModel = try NGramLanguageModel(counts, order: order)
        // The shared protocol, window by window, against the count's own one-pass sums.
        let evaluation = try evaluate(model: model, dataset: dataset, length: 20, batch: 7)
        #expect(abs(evaluation.nats - direct[order - 1].nats) < 1e-9 && evaluation.characters == direct[order - 1].characters)

        // Greedy generation through the decoder against the distribution after each history.
        var unused = SeededGenerator(seed: 0)
        let prompt = corpus.vocabulary.encode("the ").tokens
        let generated = try TextGenerator(model: model).generate(
            prompt: prompt, count: 15, settings: SamplingSettings(temperature: 0), primer: 0, generator: &unused)
        var history = prompt
        var probabilities = [Double](repeating: 0, count: V)
        for token in generated {
            try probabilities.withUnsafeMutableBufferPointer {
                try counts.distribution(after: history, order: order, into: $0)
            }
            let best = probabilities.indices.max { probabilities[$0] < probabilities[$1] || (probabilities[$0] == probabilities[$1] && $0 > $1) }
            #expect(token == best)
            history.append(token)
        }
    }
    // Samples decoded together are the samples decoded one after another with the same generators.
    let model = try NGramLanguageModel(counts)
    let prompt = corpus.vocabulary.encode("the").tokens
    var together = (0..<3).map { SeededGenerator(seed: UInt64(10 + $0)) }
    var texts = [[Int]](repeating: [], count: 3)
    try TextGenerator(model: model).streamSamples(prompt: prompt, count: 30, settings: SamplingSettings(), primer: 0,
                                                  generators: &together) { step in
        for (k, token) in step.enumerated() { texts[k].append(token) }
        return true
    }
    for k in 0..<3 {
        var alone = SeededGenerator(seed: UInt64(10 + k))
        let single = try TextGenerator(model: model).generate(prompt: prompt, count: 30, settings: SamplingSettings(),
                                                              primer: 0, generator: &alone)
        #expect(single == texts[k])
    }
}
