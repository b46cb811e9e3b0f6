// The model's fast paths against the naive Double-precision reference: forward values, gradients (by centred
// finite differences of the reference loss), and the generator's state carrying.

import CharLM
import Foundation
import Testing

/// Runs the engine forward, loss and backward on `inputs`/`targets`; returns (loss, gradients, workspace).
private func engineGradients(
    model: RecurrentModel, inputs: [[Int]], targets: [[Int]], mode: ForwardMode, seed: UInt64 = 7
) -> (Double, [Float], ModelWorkspace) {
    let (B, T) = (inputs.count, inputs[0].count)
    let workspace = model.makeWorkspace(length: T, batch: B)
    load(inputs, into: workspace.inputs)
    load(targets, into: workspace.targets)
    var generator = SeededGenerator(seed: seed)
    model.forward(length: T, batch: B, workspace: workspace, mode: mode, generator: &generator)
    let loss = model.loss(length: T, batch: B, workspace: workspace, gradient: true)
    model.gradients.zero()
    model.backward(length: T, batch: B, workspace: workspace)
    return (loss, model.gradients.array, workspace)
}

// H below 16 runs only the kernels' partial lane group; 16 only full groups; 37 two full groups and a partial one.
@Test(arguments: [(V: 7, E: 5, H: 6, L: 1, T: 5, B: 3), (V: 11, E: 4, H: 8, L: 2, T: 6, B: 2), (V: 5, E: 3, H: 4, L: 3, T: 3, B: 4),
                  (V: 9, E: 6, H: 16, L: 2, T: 4, B: 3), (V: 9, E: 5, H: 37, L: 2, T: 3, B: 2),
                  (V: 6, E: 4, H: 21, L: 2, T: 4, B: 7)],
      LayerKind.allCases)
func forwardMatchesNaivePerGateModel(shape: (V: Int, E: Int, H: Int, L: Int, T: Int, B: Int), cell: LayerKind) throws {
    let model = try makeModel(V: shape.V, E: shape.E, H: shape.H, L: shape.L, seed: 3, cell: cell)
    let inputs = randomSequences(B: shape.B, T: shape.T, V: shape.V, seed: 4)
    let workspace = model.makeWorkspace(length: shape.T, batch: shape.B)
    load(inputs, into: workspace.inputs)
    var generator = SeededGenerator(seed: 0)
    model.forward(length: shape.T, batch: shape.B, workspace: workspace, mode: .inference, generator: &generator)
    let reference = NaiveModel(model: model).run(inputs: inputs)
    var worst = 0.0
    for t in 0..<shape.T {
        for b in 0..<shape.B {
            for v in 0..<shape.V {
                let engine = Double(workspace.logits[(t * shape.B + b) * shape.V + v])
                worst = max(worst, abs(engine - reference.logits[b][t][v]))
            }
        }
    }
    for l in 0..<shape.L {
        let cells = workspace.cellState(layer: l, slot: shape.T, batch: shape.B)
        for b in 0..<shape.B {
            for j in 0..<shape.H { worst = max(worst, abs(Double(cells[b * shape.H + j]) - reference.finalCell[l][b][j])) }
        }
    }
    // Float32 arithmetic over a few dozen terms of magnitude ~1: errors of a few 1e-7; 1e-5 leaves margin.
    #expect(worst < 1e-5, "largest difference \(worst)")
}

/// Checks every parameter's analytical gradient against centred finite differences of the Double-precision
/// reference loss, and returns the worst relative error per tensor.
///
/// Precision and tolerance: the analytical gradient is computed in Float32 at the Float32 parameters; the reference
/// loss is evaluated at exactly those parameters in Double, so with h = 1e-6 the difference quotient's truncation
/// error (~h^2 times the third derivative, ~1e-12) and rounding error (~1e-16 / h = 1e-10) are far below what we
/// measure, and the check measures the engine's own error. Float32 accumulation over these shapes leaves absolute
/// errors around 1e-9 (measured: at most 2e-8, on the largest gradients, ~0.3), so a relative error is meaningful
/// only when |a| + |n| is well above that: the denominator is floored at 1e-6 (torch-rnn's gradcheck formula,
/// |a - n| / max(|a| + |n|, tiny), with tiny = 1e-6). A wrong gradient term shows up as 1e-2 or worse; the
/// tolerance is 1e-3, and `gradientCheckDetectsAWrongGradient` shows that a 1% error fails it.
private func checkGradients(model: RecurrentModel, inputs: [[Int]], targets: [[Int]], masks: [[Float]]) -> [String: Double] {
    let mode: ForwardMode = masks.isEmpty ? .inference : .training
    let (_, analytic, _) = engineGradients(model: model, inputs: inputs, targets: targets, mode: mode)
    var reference = NaiveModel(model: model)
    let h = 1e-6
    var worstByTensor: [String: Double] = [:]
    var meaningful = 0
    for view in model.layout.views {
        var worst = 0.0
        for index in view.offset..<(view.offset + view.count) {
            let numeric = reference.centredDifference(at: index, step: h) { $0.run(inputs: inputs, targets: targets, masks: masks).loss! }
            let a = Double(analytic[index])
            if abs(a) + abs(numeric) > 1e-5 { meaningful += 1 }
            worst = max(worst, abs(a - numeric) / max(abs(a) + abs(numeric), 1e-6))
        }
        worstByTensor[view.name] = worst
    }
    // Not vacuous: most gradients are far above the floor.
    #expect(meaningful * 10 > model.layout.totalCount * 7, "only \(meaningful) of \(model.layout.totalCount) gradients above 1e-5")
    return worstByTensor
}

@Test(arguments: LayerKind.allCases)
func gradientsMatchFiniteDifferences(cell: LayerKind) throws {
    // V 7, E 5, H 6, L 2, T 4, B 3: every tensor of a two-layer model, including the embedding, whose gradient is
    // the input path of layer 0 scattered to the rows of the tokens used.
    let model = try makeModel(V: 7, E: 5, H: 6, L: 2, seed: 11, cell: cell)
    let inputs = randomSequences(B: 3, T: 4, V: 7, seed: 12)
    let targets = randomSequences(B: 3, T: 4, V: 7, seed: 13)
    let worst = checkGradients(model: model, inputs: inputs, targets: targets, masks: [])
    #expect(worst.count == model.layout.views.count)
    for (name, error) in worst { #expect(error < 1e-3, "\(name): relative error \(error)") }
}

// H 18: the gate kernels run one full group of 16 units and a partial group of 2 (the check above uses H < 16,
// partial groups only). B 7: the forward time loop takes the packed kernel (B >= 6; the other checks, B < 6, take
// BLAS's matrix-vector path forward), one full block of six rows and an edge row; backward always takes it.
@Test(arguments: [(V: 5, E: 3, H: 18, L: 1, T: 3, B: 2, seed: UInt64(14)), (V: 5, E: 3, H: 6, L: 2, T: 3, B: 7, seed: 17)],
      LayerKind.allCases)
func gradientsMatchFiniteDifferencesAcrossKernelPaths(
    shape: (V: Int, E: Int, H: Int, L: Int, T: Int, B: Int, seed: UInt64), cell: LayerKind
) throws {
    let model = try makeModel(V: shape.V, E: shape.E, H: shape.H, L: shape.L, seed: shape.seed, cell: cell)
    let inputs = randomSequences(B: shape.B, T: shape.T, V: shape.V, seed: shape.seed + 1)
    let targets = randomSequences(B: shape.B, T: shape.T, V: shape.V, seed: shape.seed + 2)
    let worst = checkGradients(model: model, inputs: inputs, targets: targets, masks: [])
    for (name, error) in worst { #expect(error < 1e-3, "\(name): relative error \(error)") }
}

@Test(arguments: LayerKind.allCases)
func gradientsMatchFiniteDifferencesWithDropout(cell: LayerKind) throws {
    // Three layers, so two dropout boundaries. The engine draws the masks; the reference reuses exactly those.
    let model = try makeModel(V: 6, E: 4, H: 5, L: 3, dropout: 0.4, seed: 21, cell: cell)
    let inputs = randomSequences(B: 3, T: 4, V: 6, seed: 22)
    let targets = randomSequences(B: 3, T: 4, V: 6, seed: 23)
    let (_, _, workspace) = engineGradients(model: model, inputs: inputs, targets: targets, mode: .training)
    let masks = workspace.dropoutMasks.map { $0.array }
    #expect(masks.count == 2)
    // The masks really drop something and scale the rest by 1/(1-p).
    let values = Set(masks.flatMap { $0 })
    #expect(values == [0, Float(1) / Float(0.6)])
    let worst = checkGradients(model: model, inputs: inputs, targets: targets, masks: masks)
    for (name, error) in worst { #expect(error < 1e-3, "\(name): relative error \(error)") }
}

@Test func gradientCheckDetectsAWrongGradient() throws {
    // The check above must be able to fail: perturb one analytical gradient and see the error jump.
    let model = try makeModel(V: 5, E: 3, H: 4, L: 1, seed: 31)
    let inputs = randomSequences(B: 2, T: 3, V: 5, seed: 32)
    let targets = randomSequences(B: 2, T: 3, V: 5, seed: 33)
    var (_, analytic, _) = engineGradients(model: model, inputs: inputs, targets: targets, mode: .inference)
    let index = model.layout.layers[0].weightHH.offset + 2
    analytic[index] *= 1.01
    var reference = NaiveModel(model: model)
    let h = 1e-6
    reference.parameters[index] += h
    let plus = reference.run(inputs: inputs, targets: targets).loss!
    reference.parameters[index] -= 2 * h
    let minus = reference.run(inputs: inputs, targets: targets).loss!
    let numeric = (plus - minus) / (2 * h)
    let relative = abs(Double(analytic[index]) - numeric) / max(abs(Double(analytic[index])) + abs(numeric), 1e-6)
    #expect(relative > 1e-3)
}

@Test func inferenceModeAppliesNoDropout() throws {
    let model = try makeModel(V: 6, E: 4, H: 5, L: 2, dropout: 0.5, seed: 41)
    let inputs = randomSequences(B: 2, T: 3, V: 6, seed: 42)
    let workspace = model.makeWorkspace(length: 3, batch: 2)
    load(inputs, into: workspace.inputs)
    var generator = SeededGenerator(seed: 0)
    model.forward(length: 3, batch: 2, workspace: workspace, mode: .inference, generator: &generator)
    #expect(generator == SeededGenerator(seed: 0), "inference drew random numbers")
    let reference = NaiveModel(model: model).run(inputs: inputs)
    for t in 0..<3 {
        for b in 0..<2 {
            for v in 0..<6 {
                #expect(abs(Double(workspace.logits[(t * 2 + b) * 6 + v]) - reference.logits[b][t][v]) < 1e-5)
            }
        }
    }
}

@Test func generatorCarriesStateAcrossChunks() throws {
    // A prompt longer than the generator's 256-character chunk must give the same prediction as one pass.
    let model = try makeModel(V: 9, E: 4, H: 6, L: 2, seed: 51)
    let prompt = randomSequences(B: 1, T: 600, V: 9, seed: 52)[0]
    let logits = try TextGenerator(model: model).logits(after: prompt)
    let reference = NaiveModel(model: model).run(inputs: [prompt]).logits[0][599]
    for v in 0..<9 { #expect(abs(Double(logits[v]) - reference[v]) < 1e-4) }
}

@Test(arguments: LayerKind.allCases)
func generationStepsMatchTheReferenceOnTheGrownSequence(cell: LayerKind) throws {
    // Greedy generation (on the stepper, Stepper.swift, for every cell): each chosen token must be the argmax of the
    // reference run over prompt + tokens so far.
    let model = try makeModel(V: 8, E: 4, H: 10, L: 2, seed: 61, cell: cell)
    let prompt = [1, 2, 3]
    var generator = SeededGenerator(seed: 1)
    let output = try TextGenerator(model: model).generate(
        prompt: prompt, count: 12, settings: SamplingSettings(temperature: 0), primer: 0, generator: &generator)
    #expect(output.count == 12)
    let reference = NaiveModel(model: model)
    for n in 0..<output.count {
        let sequence = prompt + output[..<n]
        let scores = reference.run(inputs: [Array(sequence)]).logits[0].last!
        #expect(output[n] == scores.indices.max { scores[$0] < scores[$1] }!)
    }
}

@Test func generatorSeesParameterChangesBetweenCalls() throws {
    // Generation reuses the input table and transposed weights within one call; a new call must rebuild them.
    let model = try makeModel(V: 8, E: 4, H: 18, L: 2, seed: 71)
    let textGenerator = TextGenerator(model: model)
    var generator = SeededGenerator(seed: 1)
    _ = try textGenerator.generate(prompt: [1, 2], count: 5, settings: SamplingSettings(temperature: 0), primer: 0,
                                   generator: &generator)
    for index in 0..<model.parameters.count { model.parameters[index] *= 0.9 }
    let logits = try textGenerator.logits(after: [3, 4, 5])
    let reference = NaiveModel(model: model).run(inputs: [[3, 4, 5]]).logits[0][2]
    for v in 0..<8 { #expect(abs(Double(logits[v]) - reference[v]) < 1e-5) }
}
