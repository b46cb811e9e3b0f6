// One training step's inputs and results as raw little-endian files, for a side-by-side check with PyTorch, made
// by the engine's own `Trainer` so the check covers what training really runs.
//
//   charlm-bench dump-step [--corpus PATH] [--out FOLDER] [--embed E] [--hidden H] [--layers L] [--seq T] [--batch B]
//                          [--train-steps N]
//
// Files (shapes in the package's letters; token indices int32, values float32):
//   parameters.f32           the initial parameters, flat, in state_dict order (RecurrentLayout)
//   inputs.i32, targets.i32  the first step's batch, (B, T) batch-major
//   gradients.f32            the first step's raw gradients, after backward and before clipping
//   loss.txt                 "LOSS V E H L T B"
//   with --train-steps N: N full steps from the same initial parameters, each step's batch and its loss:
//   batches.i32              (N, 2, B, T): per step, its inputs then its targets
//   losses.txt               N losses, one a line
//
// Random draws, which a replay must follow: the model is initialised from SeededGenerator(seed: 1) and the first
// batch is drawn from that same generator right after; the N steps are a Trainer with seed 2 on the initial model.

import ArgumentParser
import CharLM
import Foundation

struct DumpStep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump-step",
        abstract: "Write one training step's parameters, batch, gradients and loss as raw files, for the PyTorch check.")

    @OptionGroup var corpus: CorpusOption

    @Option(help: ArgumentHelp("The folder to write into (made when missing).", valueName: "folder"))
    var out = "/tmp/charlm-dump"

    @OptionGroup var model: ModelShape

    @OptionGroup var window: WindowShape

    @Option(help: "Then this many full training steps from the same start: batches.i32 and losses.txt.")
    var trainSteps = 0

    func validate() throws {
        try requireAtLeast(0, trainSteps, "train-steps")
    }

    func run() throws {
        let corpus = try Corpus.load(path: self.corpus.corpus, normalization: .raw)
        let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let (T, B) = (window.seq, window.batch)
        let config = model.config(vocabularySize: corpus.vocabulary.count)
        let settings = TrainingSettings(sequenceLength: T, batch: B)
        var generator = SeededGenerator(seed: 1)
        let initial = try RecurrentModel(config: config, generator: &generator)

        // The first step runs on a copy of the model, so the --train-steps run below starts from the same parameters.
        let copy = try RecurrentModel(config: config, parameters: initial.parameters.array)
        let firstStep = try Trainer(model: copy, dataset: dataset, settings: settings, seed: 1)
        var gradients: [Float] = []
        firstStep.onPhase = { phase in
            if phase == .backward { gradients = copy.gradients.array }
        }
        let batch = drawBatch(dataset, length: T, batch: B, generator: &generator)
        firstStep.generator = generator  // the forward pass draws from where the batch left off (dropout, if any)
        let loss = try firstStep.trainStep(inputs: batch.inputs, targets: batch.targets)

        try write(initial.parameters.array, "parameters.f32")
        try write(int32Tokens(batch.inputs), "inputs.i32")
        try write(int32Tokens(batch.targets), "targets.i32")
        try write(gradients, "gradients.f32")
        try write("\(loss) \(config.vocabularySize) \(config.embeddingSize) \(config.hiddenSize) \(config.layerCount) \(T) \(B)",
                  "loss.txt")
        if trainSteps > 0 {
            let trainer = try Trainer(model: initial, dataset: dataset, settings: settings, seed: 2)
            var batches: [Int32] = [], losses: [String] = []
            for _ in 0..<trainSteps {
                // The batch this step will draw: a copy of the trainer's generator draws the same offsets.
                var peek = trainer.generator
                let next = drawBatch(dataset, length: T, batch: B, generator: &peek)
                batches += int32Tokens(next.inputs) + int32Tokens(next.targets)
                losses.append(String(try trainer.trainStep()))
            }
            try write(batches, "batches.i32")
            try write(losses.joined(separator: "\n"), "losses.txt")
        }
        printLine("wrote \(out): loss \(loss)")
    }

    /// Writes `values`' bytes as they are in memory (little-endian on every machine charlm runs on) to `name` in `out`.
    private func write<Element>(_ values: [Element], _ name: String) throws {
        try writeFileAtomically(values.withUnsafeBytes { Array($0) }, to: out + "/" + name)
    }

    private func write(_ text: String, _ name: String) throws {
        try writeFileAtomically(Array(text.utf8), to: out + "/" + name)
    }
}

/// B windows drawn as `Trainer.trainStep()` draws them, as B sequences of T token indices.
private func drawBatch(
    _ dataset: Dataset, length T: Int, batch B: Int, generator: inout SeededGenerator
) -> (inputs: [[Int]], targets: [[Int]]) {
    let inputs = UnsafeMutablePointer<Int32>.allocate(capacity: T * B)
    let targets = UnsafeMutablePointer<Int32>.allocate(capacity: T * B)
    defer {
        inputs.deallocate()
        targets.deallocate()
    }
    dataset.sampleBatch(length: T, batch: B, generator: &generator, inputs: inputs, targets: targets)
    // (T, B) time-major -> B sequences
    func sequences(_ timeMajor: UnsafeMutablePointer<Int32>) -> [[Int]] {
        (0..<B).map { b in (0..<T).map { t in Int(timeMajor[t * B + b]) } }
    }
    return (sequences(inputs), sequences(targets))
}

/// (B, T) sequences of token indices, flat, as int32 (indices are below the vocabulary's 65,535).
private func int32Tokens(_ sequences: [[Int]]) -> [Int32] {
    sequences.flatMap { $0.map { Int32(truncatingIfNeeded: $0) } }
}
