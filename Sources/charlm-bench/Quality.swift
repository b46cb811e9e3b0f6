// What charlm learns: `quality` trains on raw text and prints the validation curve, wall time and throughput;
// `eval` scores a checkpoint on a corpus. Both use the standard validation protocol (Training/Evaluation.swift).
//
//   charlm-bench quality [--corpus PATH] [--steps N] [--seconds S] [--eval-every N] [--seed N] [--embed E] [--hidden H]
//                        [--layers L] [--dropout P] [--seq T] [--batch B] [--lr X] [--clip X] [--warmup N] [--decay N]
//                        [--threads N] [--wd X] [--beta2 X] [--arch transformer --heads NH --context C [--bias]]
//   charlm-bench eval --model FILE [--corpus PATH] [--seq T]

import ArgumentParser
import CharLM
import Foundation

struct Quality: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train on raw text, validating every --eval-every steps; print the curve, wall time and throughput.")

    @OptionGroup var corpus: CorpusOption

    @Option(help: "Training steps (default: 1000, or unlimited with --seconds).")
    var steps: Int?

    @Option(help: "Stop once this much training time (evaluation excluded) has passed.")
    var seconds: Double?

    @Option(help: "Validate every N steps (and after the last).")
    var evalEvery = Setting.eval.defaultInteger

    @Option(help: "Initialisation; batches and dropout use seed + 1.")
    var seed = Setting.seed.defaultUnsigned

    @OptionGroup var model: ModelShape

    @Option(help: "Dropout between layers, in training.")
    var dropout = Setting.dropout.defaultFloat

    @OptionGroup var window: WindowShape

    @Option(help: "Adam's learning rate.")
    var lr = Setting.lr.defaultFloat

    @Option(help: "Global gradient-norm limit; 0 disables clipping.")
    var clip = Setting.clip.defaultFloat

    @Option(help: "Steps of linear learning-rate warm-up.")
    var warmup = Setting.warmup.defaultInteger

    @Option(help: "The step at which a cosine decay brings lr down to lr/10; 0 keeps lr constant.")
    var decay = Setting.decay.defaultInteger

    @Option(help: "AdamW's weight decay on the decayed tensors (the family's table says which).")
    var wd = Setting.wd.defaultFloat

    @Option(help: "Adam's beta2 (nanoGPT's Shakespeare recipe: 0.99).")
    var beta2: Float = AdamSettings().beta2

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if let steps { try requireAtLeast(1, steps, "steps") }
        guard (0..<1).contains(beta2) else { throw ValidationError("--beta2 must be from 0 up to but not including 1; got \(beta2)") }
        try requireAtLeast(1, evalEvery, "eval-every")
    }

    func run() throws {
        // With --seconds, training stops once this much training time (evaluation excluded) has passed, and --steps
        // (1000 by default otherwise) is unlimited unless given.
        let timeBudget = seconds ?? .infinity
        let totalSteps = steps ?? (timeBudget.isFinite ? Int.max - 1 : 1000)
        let settings = TrainingSettings(
            sequenceLength: window.seq, batch: window.batch, learningRate: lr, clip: clip, warmupSteps: warmup,
            decaySteps: decay, weightDecay: wd)
        let context = try compute.makeContext()

        let loadStart = Date()
        let corpus = try Corpus.load(path: self.corpus.corpus, normalization: .raw)
        let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
        let config = model.architecture(vocabularySize: corpus.vocabulary.count, dropout: dropout)
        var initGenerator = SeededGenerator(seed: seed)
        let network = try config.makeModel(generator: &initGenerator)
        let trainer = try Trainer(model: network, dataset: dataset, settings: settings, seed: seed &+ 1, context: context)
        trainer.optimizer.settings.beta2 = beta2
        printLine(String(format: "corpus %@: %ld characters, V %ld, train %ld, validation %ld (loaded in %.2f s)",
                         self.corpus.corpus, corpus.tokens.count, corpus.vocabulary.count, dataset.trainRange.count,
                         dataset.validationRange.count, Date().timeIntervalSince(loadStart)))
        printLine("model \(config.summary); T \(settings.sequenceLength) B \(settings.batch) "
                  + "lr \(settings.learningRate) clip \(settings.clip) warmup \(settings.warmupSteps) "
                  + "decay \(settings.decaySteps) wd \(settings.weightDecay) beta2 \(beta2); threads \(context.threadCount)")
        printLine("step  train_loss  val_loss  val_bpc  elapsed_s  train_tokens_per_s")
        var trainingSeconds = 0.0
        var recentLoss = 0.0
        var recentCount = 0
        let start = Date()
        for step in 1...totalSteps {
            let stepStart = Date()
            recentLoss += try trainer.trainStep()
            recentCount += 1
            trainingSeconds += Date().timeIntervalSince(stepStart)
            let outOfTime = trainingSeconds >= timeBudget
            if step % evalEvery == 0 || step == totalSteps || outOfTime {
                let evaluation = try trainer.evaluate()
                let tokensPerSecond = Double(step * settings.sequenceLength * settings.batch) / trainingSeconds
                printLine(String(format: "%4d  %10.4f  %8.4f  %7.4f  %9.1f  %18.0f", step,
                                 recentLoss / Double(recentCount), evaluation.nats, evaluation.bits,
                                 Date().timeIntervalSince(start), tokensPerSecond))
                recentLoss = 0
                recentCount = 0
            }
            if outOfTime { break }
        }
    }
}

/// Validation loss of a checkpoint on a corpus (normalised as the checkpoint says), with the standard protocol.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validation loss of a checkpoint on a corpus (the last 10%, windows of --seq characters).")

    @Option(help: ArgumentHelp("A charlm checkpoint (.safetensors), from charlm or scripts/torch_reference.py.",
                               valueName: "file"))
    var model: String

    @OptionGroup var corpus: CorpusOption

    @Option(help: "T: characters per validation window.")
    var seq = Setting.seq.defaultInteger

    func validate() throws {
        try asUsageError { try Setting.seq.check(seq) }
    }

    func run() throws {
        let checkpoint = try Checkpoint.load(from: model)
        let network = try checkpoint.architecture.makeModel(parameters: checkpoint.parameters)
        let corpus = try Corpus.load(path: self.corpus.corpus, normalization: checkpoint.vocabulary.normalization)
        guard corpus.vocabulary == checkpoint.vocabulary else {
            throw BenchError(description: "the corpus '\(self.corpus.corpus)' (\(corpus.vocabulary.count) distinct "
                + "characters) does not have the characters of the model '\(model)' (\(checkpoint.vocabulary.count)): "
                + "evaluate on the text the model was trained on")
        }
        let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
        let start = Date()
        let evaluation = try evaluate(model: network, dataset: dataset, length: seq, batch: 64)
        printLine(String(format: "validation loss %.4f nats/char, %.4f bits/char, perplexity %.3f over %ld characters (%.1f s)",
                         evaluation.nats, evaluation.bits, evaluation.perplexity, evaluation.characters,
                         Date().timeIntervalSince(start)))
    }
}
