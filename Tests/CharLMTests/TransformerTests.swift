// The transformer against independent references: its forward pass and every gradient against the Double-precision
// twin (TransformerReference.swift) and centred finite differences of it, the cached decoder against full
// recomputation, its tensors against nanoGPT's state_dict names and optimizer groups, its checkpoints, its config
// reader's refusals and its memory model against what a pass allocates.

@testable import CharLM
import Foundation
import Testing

/// A tiny shape for the gradient and forward checks.
struct TinyTransformer: CustomTestStringConvertible, Sendable {
    var V = 6, E = 8, L = 2, heads = 2, context = 5, T = 5, B = 2
    var bias = false
    var dropout: Float = 0
    var config: TransformerConfig {
        TransformerConfig(vocabularySize: V, embeddingSize: E, layerCount: L, headCount: heads, context: context,
                          bias: bias, dropout: dropout)
    }
    var testDescription: String {
        "E \(E), L \(L), heads \(heads), context \(context), T \(T), B \(B), bias \(bias), dropout \(dropout)"
    }
}

/// Runs the engine forward, loss and backward on `inputs`/`targets` ([b][t]); returns (loss, gradients, pass).
private func engineGradients(model: TransformerModel, inputs: [[Int]], targets: [[Int]], mode: ForwardMode,
                             context: ComputeContext = .machine) -> (Double, [Float], TransformerPass) {
    let (B, T) = (inputs.count, inputs[0].count)
    let pass = model.makeTransformerPass(length: model.config.context, batch: B, context: context)
    load(inputs, into: pass.inputs)
    load(targets, into: pass.targets)
    var generator = SeededGenerator(seed: 7)
    pass.forward(length: T, batch: B, mode: mode, generator: &generator)
    let loss = pass.loss(length: T, batch: B, vocabularySize: model.config.vocabularySize, gradient: true)
    model.gradients.zero()
    pass.backward(length: T, batch: B)
    return (loss, model.gradients.array, pass)
}

// Heads 1 and 2 (and 4 at E 8), T below and at the context, B 1 to 3, bias on and off.
@Test(arguments: [
    TinyTransformer(T: 3), TinyTransformer(bias: true), TinyTransformer(E: 4, heads: 1, T: 4, B: 3, bias: true),
    TinyTransformer(V: 9, E: 8, L: 1, heads: 4, context: 7, T: 7, B: 1),
    TinyTransformer(V: 20, E: 32, L: 1, heads: 4, context: 16, T: 16, B: 4, bias: true),
])
func transformerForwardMatchesNaiveDoubleTwin(shape: TinyTransformer) throws {
    // The last shape is large enough for the threads to share the attention, GELU and the larger products.
    let model = try makeTransformer(shape.config, seed: 3)
    let inputs = randomSequences(B: shape.B, T: shape.T, V: shape.V, seed: 4)
    let pass = model.makeTransformerPass(length: shape.context, batch: shape.B)
    load(inputs, into: pass.inputs)
    var generator = SeededGenerator(seed: 0)
    pass.forward(length: shape.T, batch: shape.B, mode: .inference, generator: &generator)
    let reference = NaiveTransformer(model: model).run(inputs: inputs)
    var worst = 0.0
    for t in 0..<shape.T {
        for b in 0..<shape.B {
            for v in 0..<shape.V {
                worst = max(worst, abs(Double(pass.logits[(t * shape.B + b) * shape.V + v]) - reference.logits[b][t][v]))
            }
        }
    }
    // Logits of magnitude ~3 through float32 LayerNorms and products of a few dozen terms: errors of a few 1e-6.
    #expect(worst < 2e-5, "largest difference \(worst)")
}

/// Checks the engine's gradient of every parameter (or of `sample` parameters per tensor, spread over it) against
/// centred finite differences of the Double-precision twin's loss, with the dropout masks the engine drew; returns
/// per tensor the worst relative error, and the smallest worst error of the same gradients 1% off (to show that the
/// check can fail).
///
/// Precision: the twin's loss is evaluated in Double at exactly the engine's float32 parameters, h = 1e-6: the
/// difference quotient's truncation (~h^2) and rounding (~1e-16 / h) errors are far below the engine's own float32
/// error, so the check measures the engine. That error is about 2e-6 of the largest gradient (measured: at most 4e-6
/// on gradients up to 1.5, through the LayerNorms' and softmaxes' cancelling sums), whatever the gradient's own size;
/// so the relative error |a - n| / max(|a| + |n|, floor) (torch-rnn's gradcheck) takes a floor of 1e-3 times the
/// largest gradient, and gradients below it are compared in absolute terms. The keys' biases, whose true gradient is
/// zero (a softmax ignores a constant added to every score), then measure rounding, not a failure.
private func checkTransformerGradients(model: TransformerModel, inputs: [[Int]], targets: [[Int]], mode: ForwardMode,
                                       sample: Int? = nil) -> (worst: [String: (error: Double, analytic: Double, numeric: Double)],
                                                               wrong: [String: Double]) {
    let (_, analytic, pass) = engineGradients(model: model, inputs: inputs, targets: targets, mode: mode)
    let masks = mode == .training ? TransformerMasks(pass: pass) : nil
    var reference = NaiveTransformer(model: model)
    let h = 1e-6
    var measured: [(name: String, analytic: Double, numeric: Double)] = []
    for view in model.layout.views {
        let count = min(sample ?? view.count, view.count)
        for index in (0..<count).map({ view.offset + $0 * view.count / count }) {
            let numeric = reference.centredDifference(at: index, step: h) { $0.run(inputs: inputs, targets: targets, masks: masks).loss! }
            measured.append((view.name, Double(analytic[index]), numeric))
        }
    }
    let floor = 1e-3 * measured.map { abs($0.numeric) }.max()!
    func error(_ a: Double, _ n: Double) -> Double { abs(a - n) / max(abs(a) + abs(n), floor) }
    var worst: [String: (error: Double, analytic: Double, numeric: Double)] = [:]
    var wrong: [String: Double] = [:]
    for (name, a, n) in measured {
        if error(a, n) >= worst[name]?.error ?? 0 { worst[name] = (error(a, n), a, n) }
        wrong[name] = max(wrong[name] ?? 0, error(1.01 * a, n))
    }
    // Not vacuous: most gradients are above the floor (the position rows past T have none).
    let meaningful = measured.filter { abs($0.numeric) > floor }.count
    #expect(meaningful * 10 > measured.count * 6, "only \(meaningful) of \(measured.count) gradients above \(floor)")
    return (worst, wrong)
}

// Every tensor: bias off and on, heads 1 and 2 and 4, T below and at the context, dropout off and on (the masks the
// engine drew, given to the twin).
@Test(arguments: [
    TinyTransformer(E: 4, heads: 1, context: 5, T: 4),
    TinyTransformer(bias: true),
    TinyTransformer(V: 5, E: 8, L: 1, heads: 4, context: 4, T: 4, B: 3, bias: true),
    TinyTransformer(bias: true, dropout: 0.3),
    TinyTransformer(E: 4, heads: 1, context: 6, T: 4, B: 3, dropout: 0.2),
])
func transformerGradientsMatchFiniteDifferences(shape: TinyTransformer) throws {
    let model = try makeTransformer(shape.config, seed: 11)
    let inputs = randomSequences(B: shape.B, T: shape.T, V: shape.V, seed: 12)
    let targets = randomSequences(B: shape.B, T: shape.T, V: shape.V, seed: 13)
    let (worst, wrong) = checkTransformerGradients(model: model, inputs: inputs, targets: targets,
                                                   mode: shape.dropout > 0 ? .training : .inference)
    #expect(worst.count == model.layout.views.count)
    // A gradient 1% off measures about 5e-3 on every tensor.
    for (name, worst) in worst.sorted(by: { $0.key < $1.key }) {
        #expect(worst.error < 1e-3, "\(name): relative error \(worst.error) (\(worst.analytic) against \(worst.numeric))")
        #expect(wrong[name]! > 1e-3, "\(name): a gradient 1% off would pass (\(wrong[name]!))")
    }
}

// A shape where the threads share the attention, GELU, the larger products, column sums and the embedding's
// backward: a sample of each tensor's elements.
@Test func transformerGradientsMatchFiniteDifferencesOnThreadedPaths() throws {
    let shape = TinyTransformer(V: 12, E: 32, L: 1, heads: 4, context: 16, T: 16, B: 4, bias: true, dropout: 0.1)
    let model = try makeTransformer(shape.config, seed: 21)
    let inputs = randomSequences(B: shape.B, T: shape.T, V: shape.V, seed: 22)
    let targets = randomSequences(B: shape.B, T: shape.T, V: shape.V, seed: 23)
    let (worst, _) = checkTransformerGradients(model: model, inputs: inputs, targets: targets, mode: .training, sample: 6)
    for (name, worst) in worst.sorted(by: { $0.key < $1.key }) {
        #expect(worst.error < 1e-3, "\(name): relative error \(worst.error) (\(worst.analytic) against \(worst.numeric))")
    }
}

/// The index of the largest of V scores.
private func argmax(_ scores: UnsafePointer<Float>, _ V: Int) -> Int {
    var best = 0
    for v in 1..<V where scores[v] > scores[best] { best = v }
    return best
}

/// The scores after the last of `tokens` by a full forward pass over the last C of them (nanoGPT's generate).
private func recomputedLogits(_ model: TransformerModel, _ tokens: [Int]) -> [Float] {
    let window = Array(tokens.suffix(model.config.context))
    let pass = model.makeTransformerPass(length: window.count, batch: 1)
    load([window], into: pass.inputs)
    var unused = SeededGenerator(seed: 0)
    pass.forward(length: window.count, batch: 1, mode: .inference, generator: &unused)
    let V = model.config.vocabularySize
    return Array(UnsafeBufferPointer(start: pass.logits.pointer + (window.count - 1) * V, count: V))
}

// The cached decoder's scores equal a full forward pass over the text so far at every step, while the context fits
// and past it (where it crops and recomputes, as nanoGPT's generate does); each of K sequences advanced together
// equals its own recomputation. A step is one job on the team, each thread owning a share of every product's
// columns: 1, 2 and 3 threads (shares of 7 scores, 16, 48 and 64 columns, 4 or 12 heads that do not split evenly).
@Test(arguments: [(1, false, 1), (1, true, 2), (1, false, 3), (3, false, 2), (3, true, 3), (3, true, 1)])
func transformerDecoderEqualsFullRecomputation(batch K: Int, bias: Bool, threads: Int) throws {
    let config = TransformerConfig(vocabularySize: 7, embeddingSize: 16, layerCount: 2, headCount: 4, context: 8,
                                   bias: bias)
    let model = try makeTransformer(config, seed: 5)
    let context = ComputeContext(threads: threads)
    // on the team however small the model (a model this small would otherwise step on one thread)
    let decoder = try TransformerDecoder(model: model, batch: K, context: context, minimumStepWork: 0)
    #expect(decoder.team.size == threads)
    let V = config.vocabularySize
    let prompt = [1, 4, 2]
    try decoder.start(prompt: prompt, cancellation: .never)
    var sequences = [[Int]](repeating: prompt, count: K)
    var generator = SeededGenerator(seed: 9)
    var worst = 0.0
    for _ in 0..<12 {  // past the context of 8
        for k in 0..<K {
            let expected = recomputedLogits(model, sequences[k])
            for v in 0..<V { worst = max(worst, abs(Double(decoder.logits[k * V + v] - expected[v]))) }
        }
        let next = (0..<K).map { _ in Int32(generator.nextIndex(below: V)) }
        for k in 0..<K { sequences[k].append(Int(next[k])) }
        next.withUnsafeBufferPointer { decoder.advance($0.baseAddress!) }
    }
    // Float32 sums in another order (one row against a whole window): a few 1e-6 on scores of magnitude ~3.
    #expect(worst < 2e-5, "largest difference \(worst)")
}

// A step runs on the team when its products give each thread at least `minimumStepWork` multiply-adds between two
// meetings (12 E^2 B over 5 phases), else on the caller alone: at batch 1 on 2 threads, E 128 alone, E 192 shared.
@Test func transformerDecoderSharesOnlyStepsLargeEnough() throws {
    let context = ComputeContext(threads: 2)
    for (embed, batch, shared) in [(128, 1, false), (192, 1, true), (128, 4, true), (16, 1, false)] {
        let config = TransformerConfig(vocabularySize: 7, embeddingSize: embed, layerCount: 1, headCount: 4,
                                       context: 8, bias: false)
        let decoder = try TransformerDecoder(model: try makeTransformer(config, seed: 1), batch: batch,
                                             context: context)
        #expect((decoder.team === context.team) == shared, "E \(embed), batch \(batch)")
        #expect(decoder.team.size == (shared ? 2 : 1))
    }
}

// A prompt longer than the context is cropped to its last C characters, as nanoGPT's generate crops; greedy text
// through the generator is the argmax of a full recomputation at every character.
@Test func transformerGreedyGenerationIsNanoGPTsGenerate() throws {
    let config = TransformerConfig(vocabularySize: 9, embeddingSize: 8, layerCount: 1, headCount: 2, context: 6)
    let model = try makeTransformer(config, seed: 8)
    let prompt = [3, 1, 4, 1, 5, 0, 2, 6, 5]
    var unused = SeededGenerator(seed: 0)
    let generated = try TextGenerator(model: model).generate(
        prompt: prompt, count: 15, settings: SamplingSettings(temperature: 0), primer: 0, generator: &unused)
    var sequence = prompt
    for token in generated {
        let expected = recomputedLogits(model, sequence)
        #expect(token == expected.withUnsafeBufferPointer { argmax($0.baseAddress!, config.vocabularySize) })
        sequence.append(token)
    }
}

// nanoGPT's state_dict names, in its order, and its optimizer groups: every tensor of two or more dimensions decayed
// (the embeddings too; the tied weight once), no bias or LayerNorm weight.
@Test(arguments: [false, true])
func transformerTensorsCarryNanoGPTsNamesAndGroups(bias: Bool) {
    let config = TransformerConfig(vocabularySize: 10, embeddingSize: 8, layerCount: 2, headCount: 2, context: 4, bias: bias)
    let table = config.parameters
    var expected = ["transformer.wte.weight", "transformer.wpe.weight"]
    for i in 0..<2 {
        let h = "transformer.h.\(i)."
        for module in ["ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj"] {
            expected.append(h + module + ".weight")
            if bias { expected.append(h + module + ".bias") }
        }
    }
    expected += ["transformer.ln_f.weight"] + (bias ? ["transformer.ln_f.bias"] : [])
    #expect(table.views.map(\.name) == expected)
    #expect(table.views.first?.aliases == ["lm_head.weight"] && table.views.dropFirst().allSatisfy(\.aliases.isEmpty))
    #expect(table.view(named: "lm_head.weight")?.name == "transformer.wte.weight")
    for view in table.views { #expect(view.decayed == (view.shape.count >= 2), "\(view.name)") }
    let shapes = Dictionary(uniqueKeysWithValues: table.views.map { ($0.name, $0.shape) })
    #expect(shapes["transformer.h.1.attn.c_attn.weight"] == [24, 8] && shapes["transformer.h.1.mlp.c_proj.weight"] == [8, 32])
    #expect(shapes["transformer.wpe.weight"] == [4, 8])
    #expect(Double(table.totalCount) == config.parameterCount)
}

// nanoGPT's initialisation: N(0, 0.02), every c_proj.weight N(0, 0.02 / sqrt(2L)), biases zero, LayerNorm weights one.
@Test func transformerInitialisesAsNanoGPT() throws {
    let config = TransformerConfig(vocabularySize: 65, embeddingSize: 64, layerCount: 4, headCount: 4, context: 64, bias: true)
    var generator = SeededGenerator(seed: 1)
    let model = try TransformerModel(config: config, generator: &generator)
    for view in model.layout.views {
        let values = Array(model.parameters.array[view.range]).map(Double.init)
        if view.shape.count >= 2 {
            let deviation = (values.reduce(0) { $0 + $1 * $1 } / Double(values.count)).squareRoot()
            let expected = view.name.hasSuffix("c_proj.weight") ? 0.02 / 8.0.squareRoot() : 0.02
            #expect(abs(deviation / expected - 1) < 0.1, "\(view.name): deviation \(deviation), expected \(expected)")
        } else if view.name.hasSuffix(".weight") {
            #expect(values.allSatisfy { $0 == 1 }, "\(view.name)")
        } else {
            #expect(values.allSatisfy { $0 == 0 }, "\(view.name)")
        }
    }
}

// The memory model counts exactly what a pass allocates, attention's (B, NH, T, T) per block included.
@Test(arguments: [false, true], [Float(0), 0.2])
func transformerPassBytesCountWhatAPassAllocates(bias: Bool, dropout: Float) throws {
    let config = TransformerConfig(vocabularySize: 11, embeddingSize: 12, layerCount: 3, headCount: 3, context: 9,
                                   bias: bias, dropout: dropout)
    let model = try TransformerModel(config: config, parameters: nil)
    let pass = model.makeTransformerPass(length: 9, batch: 4)
    #expect(config.passBytes(length: 9, batch: 4) == Double(4 * pass.floatCount + 2 * 4 * 9 * 4))
    // Generation's pass for inference: the blocks share one (B, NH, T, T) buffer; no masks, no gradients.
    let inference = model.makeTransformerPass(length: 9, batch: 4, forInference: true)
    #expect(config.inferencePassBytes(length: 9, batch: 4) == Double(4 * inference.floatCount + 2 * 4 * 9 * 4))
    let attention = 4.0 * 4 * 3 * 9 * 9
    #expect(config.passBytes(length: 9, batch: 4) - config.inferencePassBytes(length: 9, batch: 4)
            >= (dropout > 0 ? 2 * 3 : 3) * attention, "at least the other blocks' weights, the scratch and the masks")
    #expect(config.modelBytes == Double(2 * 4 * model.parameters.count))
    // Attention's T^2 term: doubling T more than doubles the pass.
    #expect(config.passBytes(length: 8, batch: 4) > 2 * config.passBytes(length: 4, batch: 4))
}

private let text = String(repeating: "the cat sat on the mat. the dog sat on the log.\n", count: 30)

// `seq` longer than the context is refused naming both, by the trainer (made or changed) and by evaluation, and the
// trainer keeps its settings. (Training, evaluation and generation through the interface: LanguageModelInterfaceTests.)
@Test func transformerRefusesSeqBeyondItsContext() throws {
    let corpus = try Corpus.make(text: text, normalization: NormalizationOptions())
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    let config = TransformerConfig(vocabularySize: corpus.vocabulary.count, embeddingSize: 8, layerCount: 1, headCount: 2,
                                   context: 16)
    let model = try TransformerModel(config: config, parameters: nil)
    let trainer = try Trainer(model: model, dataset: dataset, settings: TrainingSettings(sequenceLength: 16, batch: 8), seed: 4)
    let refusal = CharLMError.sequenceLongerThanContext(seq: 17, context: 16)
    #expect(refusal.description.contains("seq 17") && refusal.description.contains("context 16"))
    #expect(throws: refusal) {
        try Trainer(model: model, dataset: dataset, settings: TrainingSettings(sequenceLength: 17, batch: 8), seed: 1)
    }
    #expect(throws: refusal) { try trainer.apply(TrainingSettings(sequenceLength: 17, batch: 8)) }
    #expect(throws: refusal) { try evaluate(model: model, dataset: dataset, length: 17, batch: 8) }
    #expect(trainer.settings.sequenceLength == 16)
}

/// A trainer of a small transformer with a few AdamW steps done, and its checkpoint.
private func trainedTransformerCheckpoint(bias: Bool) throws -> (Checkpoint, TransformerModel) {
    let corpus = try Corpus.make(text: text, normalization: NormalizationOptions())
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    let config = TransformerConfig(vocabularySize: corpus.vocabulary.count, embeddingSize: 8, layerCount: 2, headCount: 2,
                                   context: 12, bias: bias, dropout: 0.1)
    var generator = SeededGenerator(seed: 5)
    let model = try TransformerModel(config: config, generator: &generator)
    let trainer = try Trainer(model: model, dataset: dataset,
                              settings: TrainingSettings(sequenceLength: 12, batch: 4, learningRate: 1e-2, weightDecay: 0.1),
                              seed: 6)
    for _ in 0..<3 { try trainer.trainStep() }
    let (training, optimizer) = trainer.state
    return (Checkpoint(architecture: config, vocabulary: corpus.vocabulary, parameters: model.parameters.array,
                       optimizer: optimizer, training: training, corpus: corpus.fingerprint), model)
}

// A checkpoint round trip: config, tensors under nanoGPT's names with the tied weight written under both (equal),
// the optimizer's moments; a file with either name or both loads, two that differ are refused.
@Test(arguments: [false, true])
func transformerCheckpointRoundTripsWithTheTiedWeightUnderBothNames(bias: Bool) throws {
    let (saved, _) = try trainedTransformerCheckpoint(bias: bias)
    let bytes = saved.serialized()
    let file = try SafeTensorsFile.parse(bytes, path: "t")
    let byName = Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, $0) })
    #expect(byName["lm_head.weight"]?.values == byName["transformer.wte.weight"]?.values)
    #expect(byName["optim.exp_avg.lm_head.weight"] != nil && (byName["transformer.h.1.attn.c_attn.bias"] != nil) == bias)
    let config = try JSONValue.parse(try #require(file.metadata["config"]))
    #expect(config["arch"]?.string == "transformer" && config["heads"]?.integer == 2 && config["context"]?.integer == 12)
    #expect(config["bias"]?.bool == bias && config["dropout"]?.double == Double(Float(0.1)))
    #expect(config["embed"]?.integer == 8 && config["layers"]?.integer == 2)

    let loaded = try Checkpoint.parse(bytes, path: "t")
    #expect(loaded.architecture.isEqual(to: saved.architecture) && loaded.architecture.kindName == "transformer")
    #expect(loaded.parameters == saved.parameters && loaded.optimizer == saved.optimizer && loaded.training == saved.training)
    #expect(loaded.notes.isEmpty)

    func rewritten(_ edit: (inout [NamedTensor]) -> Void) -> [UInt8] {
        var tensors = file.tensors
        edit(&tensors)
        return SafeTensorsFile(metadata: file.metadata, tensors: tensors).serialized()
    }
    for dropped in ["transformer.wte.weight", "lm_head.weight"] {
        let one = rewritten { $0.removeAll { $0.name == dropped || $0.name.hasSuffix("." + dropped) } }
        #expect(try Checkpoint.parse(one, path: "t").parameters == saved.parameters, "without \(dropped)")
    }
    let differing = rewritten { tensors in
        let index = tensors.firstIndex { $0.name == "lm_head.weight" }!
        var values = tensors[index].values
        values[0] += 1
        tensors[index] = NamedTensor(name: "lm_head.weight", shape: tensors[index].shape, values: values)
    }
    #expect(throws: CharLMError.badCheckpoint(
        path: "t", problem: "tensors 'transformer.wte.weight' and 'lm_head.weight' are one tied tensor but differ")) {
        try Checkpoint.parse(differing, path: "t")
    }
}

// The loaded model is the saved one: the same scores, so the same text.
@Test func aLoadedTransformerGeneratesWhatTheSavedOneDid() throws {
    let (saved, model) = try trainedTransformerCheckpoint(bias: true)
    let loaded = try Checkpoint.parse(saved.serialized(), path: "t")
    let copy = try loaded.architecture.makeModel(parameters: loaded.parameters)
    func text(_ model: any LanguageModel) throws -> [Int] {
        var generator = SeededGenerator(seed: 9)
        return try TextGenerator(model: model).generate(prompt: [1, 2, 3], count: 30, settings: SamplingSettings(),
                                                        primer: 0, generator: &generator)
    }
    #expect(try text(copy) == text(model))
}

/// The problem the config reader names for `config` (the recurrent family's reader after it, as in a real load).
private func configProblem(_ config: String, tensors: Set<String> = []) -> String? {
    let json = try! JSONValue.parse(config)
    do {
        _ = try ModelFamilies.architecture(from: CheckpointConfig(json: json, vocabularySize: 10, tensorNames: tensors))
        return nil
    } catch let problem as CheckpointProblem {
        return problem.text
    } catch {
        return "\(error)"
    }
}

// The reader refuses what it cannot make, with the offending key or value named, before anything is allocated.
@Test func transformerConfigReaderRefusesBadValues() {
    let good = #"{"arch": "transformer", "embed": 8, "layers": 2, "heads": 2, "context": 16, "bias": false, "dropout": 0}"#
    #expect(configProblem(good) == nil)
    let cases: [(String, String)] = [
        (#"{"arch": "transfomer", "embed": 8}"#, #"config `arch` is "transfomer"; charlm knows "transformer", "lstm", "gru", "rnn""#),
        (#"{"arch": 3}"#, "config `arch` is not a string; charlm knows \"transformer\", \"lstm\", \"gru\", \"rnn\""),
        (#"{"arch": "transformer", "layers": 2, "heads": 2, "context": 16, "bias": false}"#, "config `embed` is missing or not an integer"),
        (#"{"arch": "transformer", "embed": 8.5, "layers": 2, "heads": 2, "context": 16, "bias": false}"#,
         "config `embed` is missing or not an integer"),
        (#"{"arch": "transformer", "embed": 8, "layers": 2, "heads": 2, "context": 16}"#, "config `bias` is missing or not true/false"),
        (#"{"arch": "transformer", "embed": 8, "layers": 2, "heads": 2, "context": 16, "bias": "no"}"#,
         "config `bias` is missing or not true/false"),
        (#"{"arch": "transformer", "embed": 8, "layers": 2, "heads": 2, "context": 16, "bias": false, "dropout": "x"}"#,
         "config `dropout` is not a number"),
        (#"{"arch": "transformer", "embed": 8, "layers": 2, "heads": 3, "context": 16, "bias": false}"#,
         "its config is unusable: heads must be a divisor of embed (8), as each head takes an equal share of the embedding; got '3'"),
        (#"{"arch": "transformer", "embed": 8, "layers": 0, "heads": 2, "context": 16, "bias": false}"#,
         "its config is unusable: layers must be a whole number from 1 to 16; got '0'"),
        (#"{"arch": "transformer", "embed": 8, "layers": 2, "heads": 2, "context": 100000000000, "bias": false}"#,
         "its config is unusable: context must be a whole number from 1 to 10000; got '100000000000'"),
        (#"{"arch": "transformer", "embed": 8, "layers": 2, "heads": 2, "context": 16, "bias": false, "dropout": 1}"#,
         "its config is unusable: dropout must be a number from 0 up to but not including 1; got '1'"),
    ]
    for (config, problem) in cases { #expect(configProblem(config) == problem, "\(config)") }
    // A recurrent config (no arch, or a cell's name) is the recurrent family's.
    #expect(configProblem(#"{"arch": "gru", "embed": 8, "hidden": 8, "layers": 1, "cell": "gru"}"#) == nil)
}

// A run resumed from its checkpoint (weights, AdamW's moments, step, the generator that draws batches and dropout
// masks) takes the steps the unbroken run took, bit for bit.
@Test func aResumedTransformerRunIsBitIdenticalToNeverStopping() throws {
    let corpus = try Corpus.make(text: text, normalization: NormalizationOptions())
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    let config = TransformerConfig(vocabularySize: corpus.vocabulary.count, embeddingSize: 8, layerCount: 2, headCount: 2,
                                   context: 12, bias: true, dropout: 0.2)
    let settings = TrainingSettings(sequenceLength: 12, batch: 4, learningRate: 1e-2, clip: 1, warmupSteps: 2,
                                    decaySteps: 9, weightDecay: 0.1)
    func trainer(steps: Int) throws -> Trainer {
        var generator = SeededGenerator(seed: 5)
        let trainer = try Trainer(model: try TransformerModel(config: config, generator: &generator), dataset: dataset,
                                  settings: settings, seed: 6)
        for _ in 0..<steps { try trainer.trainStep() }
        return trainer
    }
    let straight = try trainer(steps: 10)
    let first = try trainer(steps: 6)
    let (training, optimizer) = first.state
    let bytes = Checkpoint(architecture: config, vocabulary: corpus.vocabulary, parameters: first.model.parameters.array,
                           optimizer: optimizer, training: training).serialized()
    let loaded = try Checkpoint.parse(bytes, path: "run")
    let resumed = try Trainer(model: try loaded.architecture.makeModel(parameters: loaded.parameters), dataset: dataset,
                              settings: loaded.training!.settings, seed: 12345)
    try resumed.restore(training: loaded.training!, optimizer: loaded.optimizer)
    for _ in 0..<4 { try resumed.trainStep() }
    #expect(resumed.lossHistory == straight.lossHistory)
    #expect(resumed.model.parameters.array == straight.model.parameters.array)
    #expect(resumed.optimizer.secondMoment.array == straight.optimizer.secondMoment.array)
}
