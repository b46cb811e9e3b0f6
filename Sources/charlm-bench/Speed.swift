// The speed figures `scripts/bench` collects, one measurement per process so each reports its own peak memory.
// Each subcommand prints one JSON object on one line; `scripts/bench` runs them, and PyTorch's twins, and makes the
// table.
//
//   charlm-bench train-speed [--embed E] [--hidden H] [--layers L] [--seq T] [--batch B] [--steps N] [--warmup N]
//                            [--corpus PATH] [--threads N] [--arch transformer --heads NH --context C [--bias]]
//   charlm-bench generate-speed [--embed E] [--hidden H] [--layers L] [--length N] [--warmup N] [--corpus PATH]
//                               [--threads N] [--arch transformer --heads NH --context C [--bias]]
//   charlm-bench load-speed --corpus PATH
//   charlm-bench train-profile [--embed E] [--hidden H] [--layers L] [--seq T] [--batch B] [--steps N]
//                              [--corpus PATH] [--threads N]
//   charlm-bench gemm-speed [--m M] [--n N] [--k K] [--ta 0|1] [--tb 0|1] [--repeats N] [--threads N]
//                           [--products auto|packed|blas] [--vector-bits 512|256|128]

import ArgumentParser
import CharLM
import Foundation

/// Prints the fields as one JSON object on one line.
func printJSON(_ fields: [(String, Any)]) {
    let body = fields.map { key, value -> String in
        switch value {
        case let text as String: return "\"\(key)\": \"\(text)\""
        case let number as Double: return "\"\(key)\": \(String(format: "%.6g", number))"
        default: return "\"\(key)\": \(value)"
        }
    }
    printLine("{" + body.joined(separator: ", ") + "}")
}

/// Peak resident memory so far, in MB.
func peakResidentMegabytes() -> Double { Double(peakResidentBytes()) / 1_048_576 }

/// The text a speed figure trains or generates on: only its vocabulary size matters.
struct BenchmarkCorpus: ParsableArguments {
    @Option(help: ArgumentHelp(
        "A text file, read raw; when it is missing, a synthetic text of the same vocabulary size (65).",
        valueName: "path"))
    var corpus = "../shared/data/tinyshakespeare.txt"

    /// The file when it is present, else the synthetic text, so speed never depends on the file.
    func load() throws -> Corpus {
        if FileManager.default.fileExists(atPath: corpus) { return try Corpus.load(path: corpus, normalization: .raw) }
        var generator = SeededGenerator(seed: 5)
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \n.,;:!?'-&$3")
        let text = String((0..<200_000).map { _ in letters[generator.nextIndex(below: letters.count)] })
        return try Corpus.make(text: text, normalization: .raw)
    }
}

/// The trainer both training figures measure: the benchmark corpus, a model initialised from seed 1, batches from
/// seed 2, on the threads `compute` asks for.
private func benchmarkTrainer(model shape: ModelShape, window: WindowShape, corpus: BenchmarkCorpus,
                              compute: ComputeOptions) throws -> (Trainer, any ModelArchitecture, TrainingSettings) {
    let text = try corpus.load()
    let dataset = try Dataset(tokens: text.tokens, validationFraction: 0.1)
    let config = shape.architecture(vocabularySize: text.vocabulary.count)
    let settings = TrainingSettings(sequenceLength: window.seq, batch: window.batch)
    var generator = SeededGenerator(seed: 1)
    let model = try config.makeModel(generator: &generator)
    let trainer = try Trainer(model: model, dataset: dataset, settings: settings, seed: 2, context: try compute.makeContext())
    return (trainer, config, settings)
}

/// Training tokens per second (B*T per full step: batch, forward, loss, backward, clipping, Adam) after warm-up.
struct TrainSpeed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-speed",
        abstract: "Training tokens/s of full steps after warm-up (one JSON line).")

    @OptionGroup var model: ModelShape

    @OptionGroup var window: WindowShape

    @Option(help: "Timed steps.")
    var steps = 20

    @Option(help: "Untimed steps first.")
    var warmup = 3

    @OptionGroup var corpus: BenchmarkCorpus

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        try requireAtLeast(1, steps, "steps")
        try requireAtLeast(0, warmup, "warmup")
    }

    func run() throws {
        let (trainer, config, settings) = try benchmarkTrainer(model: model, window: window, corpus: corpus, compute: compute)
        for _ in 0..<warmup { try trainer.trainStep() }
        let start = Date()
        var lastLoss = 0.0
        for _ in 0..<steps { lastLoss = try trainer.trainStep() }
        let seconds = Date().timeIntervalSince(start)
        let (T, B) = (settings.sequenceLength, settings.batch)
        let shape: [(String, Any)]
        switch config {
        case let transformer as TransformerConfig:
            shape = [("gflop_per_step", trainingStepFlops(transformer, length: T, batch: B) / 1e9),
                     ("vocabulary", transformer.vocabularySize), ("embed", transformer.embeddingSize),
                     ("layers", transformer.layerCount), ("heads", transformer.headCount),
                     ("context", transformer.context), ("arch", "transformer")]
        case let recurrent as RecurrentConfig:
            shape = [("hidden", recurrent.hiddenSize), ("gflop_per_step", trainingStepFlops(recurrent, length: T, batch: B) / 1e9),
                     ("vocabulary", recurrent.vocabularySize), ("embed", recurrent.embeddingSize),
                     ("layers", recurrent.layerCount), ("cell", recurrent.layerKind.rawValue)]
        default:
            shape = []
        }
        printJSON([("impl", "charlm"), ("figure", "train"), ("seq", T), ("batch", B), ("steps", steps),
                   ("seconds", seconds), ("tokens_per_s", Double(steps * T * B) / seconds),
                   ("last_loss", lastLoss), ("peak_rss_mb", peakResidentMegabytes()),
                   ("threads", trainer.context.threadCount), ("openblas_core", BLAS.coreName),
                   ("products", trainer.context.productKernel.rawValue), ("vector_bits", trainer.context.cpu.vectorBits)]
                  + shape)
    }
}

/// Floating-point operations of one transformer training step's matrix products (2 per multiply-add), with N = T*B
/// rows: per block the forward's c_attn (N*E*3E), c_proj (N*E*E), c_fc and the MLP's c_proj (2*N*E*4E), and the
/// attention's scores and weighted sum over every (query, key) pair, the causal half included (2*B*T*T*E); the
/// head (N*E*V). The backward does twice the forward's. nanoGPT's CPU recipe (V 65, E 128, L 4, T 64, B 12):
/// 4.0 GFLOP.
func trainingStepFlops(_ config: TransformerConfig, length T: Int, batch B: Int) -> Double {
    let (V, E, L) = (Double(config.vocabularySize), Double(config.embeddingSize), Double(config.layerCount))
    let N = Double(T * B)
    let forward = L * (12 * N * E * E + 2 * Double(B) * Double(T) * Double(T) * E) + N * E * V
    return 2 * 3 * forward
}

/// Floating-point operations of one training step's matrix products (2 per multiply-add), the work a step cannot
/// avoid; the element-wise cell, loss and Adam are O(T*B*H) and left out. With N = T*B rows and P = gates * H (4H
/// for the LSTM, 3H for the GRU, H for the RNN):
///   forward:  layer 0's table V*E*P, then per layer the recurrent product N*H*P, above layer 0 the input
///             projection N*H*P, and the output layer N*H*V;
///   backward: per layer dh (N*H*P) and dW_hh (N*H*P), above layer 0 dW_ih and dinput (2*N*H*P), layer 0's table
///             (2*V*E*P), and the output layer's dW and dh (2*N*H*V).
/// The default model (V 65, E 64, H 256, L 2, T 100, B 64): 30.9 GFLOP.
func trainingStepFlops(_ config: RecurrentConfig, length T: Int, batch B: Int) -> Double {
    let (V, E, H, L) = (Double(config.vocabularySize), Double(config.embeddingSize), Double(config.hiddenSize),
                        Double(config.layerCount))
    let (N, P) = (Double(T * B), Double(config.layerKind.gateCount * config.hiddenSize))
    let forward = V * E * P + L * N * H * P + (L - 1) * N * H * P + N * H * V
    let backward = 2 * L * N * H * P + 2 * (L - 1) * N * H * P + 2 * V * E * P + 2 * N * H * V
    return 2 * (forward + backward)
}

/// Generated characters per second at batch 1 with temperature sampling, after a warm-up prompt.
struct GenerateSpeed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate-speed",
        abstract: "Generated characters/s at batch 1 (or --samples K at once), temperature 0.8, after a prompt (one JSON line).")

    @OptionGroup var model: ModelShape

    @Option(help: "Characters to generate (timed), per sample.")
    var length = 2000

    @Option(help: "Independent samples generated together (`samples` in the shell); chars_per_s counts them all.")
    var samples = Setting.samples.defaultInteger

    @Flag(help: "Generate from bfloat16 copies of the weights (`bf16 on` in the shell; one sample only).")
    var bf16 = Setting.bf16.defaultFlag

    @Option(help: "Prompt characters fed first (from the corpus).")
    var warmup = 50

    @OptionGroup var corpus: BenchmarkCorpus

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        try asUsageError { try Setting.length.check(length) }
        try asUsageError { try Setting.samples.check(samples) }
        try requireAtLeast(0, warmup, "warmup")
    }

    func run() throws {
        if model.isTransformer { return try runTransformer() }
        let context = try compute.makeContext()
        let corpus = try self.corpus.load()
        let config = model.config(vocabularySize: corpus.vocabulary.count)
        var generator = SeededGenerator(seed: 1)
        let model = try RecurrentModel(config: config, generator: &generator)
        let textGenerator = TextGenerator(model: model, context: context, weights: bf16 ? .bfloat16 : .float32)
        let prompt = (0..<warmup).map { corpus.tokens[$0 % corpus.tokens.count] }
        _ = try textGenerator.generate(prompt: prompt, count: 10, settings: SamplingSettings(temperature: 0.8),
                                       primer: corpus.primer, generator: &generator)
        let settings = SamplingSettings(temperature: 0.8)
        let start = Date()
        // Streamed, as `gen` streams: nothing is kept per character, so the peak memory does not grow with --length.
        let steps: Int
        if samples == 1 {
            steps = try textGenerator.stream(prompt: prompt, count: length, settings: settings, primer: corpus.primer,
                                             generator: &generator) { _ in true }
        } else {
            var generators = (0..<samples).map { SeededGenerator(seed: UInt64(100 + $0)) }
            steps = try textGenerator.streamSamples(prompt: prompt, count: length, settings: settings,
                                                    primer: corpus.primer, generators: &generators) { _ in true }
        }
        let seconds = Date().timeIntervalSince(start)
        // The weight matrices each step reads (W_hh of every layer, W_ih above layer 0, fc.weight), float32: G gate
        // blocks of (H, H) each (the LSTM 4, the GRU 3, the RNN 1).
        let (V, H, L, G) = (config.vocabularySize, config.hiddenSize, config.layerCount, config.layerKind.gateCount)
        let weightBytes = (bf16 && samples == 1 ? 2 : 4) * Double((2 * L - 1) * G * H * H + V * H)
        printJSON([("impl", "charlm"), ("figure", "generate"), ("hidden", config.hiddenSize), ("samples", samples),
                   ("weights", bf16 && samples == 1 ? "bf16" : "fp32"),
                   ("characters", steps * samples), ("seconds", seconds),
                   ("chars_per_s", Double(steps * samples) / seconds),
                   ("weight_gb_per_s", weightBytes * Double(steps) / seconds / 1e9),
                   ("peak_rss_mb", peakResidentMegabytes()), ("threads", context.threadCount)])
    }

    /// The transformer's figure, within its context, where the KV cache serves: windows of one prompt character (the
    /// corpus's next) and C - 1 generated ones, again until --length characters are made. (Past the context, every
    /// character costs a whole window's forward pass, as in nanoGPT's `generate`.)
    private func runTransformer() throws {
        let context = try compute.makeContext()
        let corpus = try self.corpus.load()
        let config = model.transformerConfig(vocabularySize: corpus.vocabulary.count)
        var generator = SeededGenerator(seed: 1)
        let network = try config.makeModel(generator: &generator)
        let textGenerator = TextGenerator(model: network, context: context)
        let settings = SamplingSettings(temperature: 0.8)
        let window = config.context - 1
        _ = try textGenerator.generate(prompt: [corpus.tokens[0]], count: min(10, window), settings: settings,
                                       primer: corpus.primer, generator: &generator)
        let start = Date()
        var made = 0, windows = 0
        while made < length {
            let prompt = [corpus.tokens[windows % corpus.tokens.count]]
            made += try textGenerator.stream(prompt: prompt, count: min(window, length - made), settings: settings,
                                             primer: corpus.primer, generator: &generator) { _ in true }
            windows += 1
        }
        let seconds = Date().timeIntervalSince(start)
        printJSON([("impl", "charlm"), ("figure", "generate"), ("arch", "transformer"), ("embed", config.embeddingSize),
                   ("layers", config.layerCount), ("context", config.context), ("characters", made),
                   ("windows", windows), ("seconds", seconds), ("chars_per_s", Double(made) / seconds),
                   ("peak_rss_mb", peakResidentMegabytes()), ("threads", context.threadCount)])
    }
}

/// Load and tokenise time of a (large) corpus file, and the memory the loaded corpus holds per character.
struct LoadSpeed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load-speed",
        abstract: "Load and tokenise time of a text file, and the bytes held per character (one JSON line).")

    @Option(help: ArgumentHelp("The text file to load, read raw.", valueName: "path"))
    var corpus: String

    func run() throws {
        let before = currentResidentBytes()
        let start = Date()
        let corpus = try Corpus.load(path: corpus, normalization: .raw)
        let seconds = Date().timeIntervalSince(start)
        let held = currentResidentBytes() - before
        let characters = corpus.tokens.count
        printJSON([("impl", "charlm"), ("figure", "load"), ("characters", characters), ("seconds", seconds),
                   ("held_bytes_per_char", Double(held) / Double(characters)),
                   ("peak_rss_mb", peakResidentMegabytes()), ("vocabulary", corpus.vocabulary.count)])
        withExtendedLifetime(corpus) {}
    }
}

/// Where a training step's time goes: the Trainer's own steps, timed phase by phase through `onPhase`.
struct TrainProfile: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-profile",
        abstract: "Milliseconds per training step in each phase (batch, forward, loss, backward, clip, Adam), "
            + "after 2 warm-up steps (one JSON line).")

    @OptionGroup var model: ModelShape

    @OptionGroup var window: WindowShape

    @Option(help: "Timed steps.")
    var steps = 10

    @OptionGroup var corpus: BenchmarkCorpus

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        try requireAtLeast(1, steps, "steps")
    }

    func run() throws {
        let (trainer, _, settings) = try benchmarkTrainer(model: model, window: window, corpus: corpus, compute: compute)
        let clock = PhaseClock()
        trainer.onPhase = { clock.phaseEnded($0) }
        let warmup = 2
        for step in 0..<(warmup + steps) {
            clock.counting = step >= warmup
            clock.last = Date()
            try trainer.trainStep()
        }
        let total = clock.seconds.values.reduce(0, +)
        printJSON(TrainingPhase.allCases.map { ("\(reportName($0))_ms", clock.seconds[$0, default: 0] * 1000 / Double(steps)) }
                  + [("tokens_per_s", Double(steps * settings.sequenceLength * settings.batch) / total)])
    }

    /// The phase's name in the report (`adam` for the update, as before the Trainer had phases).
    private func reportName(_ phase: TrainingPhase) -> String {
        switch phase {
        case .batch: "batch"
        case .forward: "forward"
        case .loss: "loss"
        case .backward: "backward"
        case .clip: "clip"
        case .update: "adam"
        }
    }
}

/// Wall-clock seconds spent in each training phase: the time since the previous phase ended (or since the step
/// began, for the first), summed over the steps that count.
private final class PhaseClock {
    var seconds: [TrainingPhase: Double] = [:]
    /// When the latest phase ended; set to the step's start before each step.
    var last = Date()
    var counting = false

    func phaseEnded(_ phase: TrainingPhase) {
        let now = Date()
        if counting { seconds[phase, default: 0] += now.timeIntervalSince(last) }
        last = now
    }
}

/// GFLOP/s of one product shape, C(m, n) = op(A) op(B), op(B) transposed unless --tb 0, op(A) unless --ta 1, on the
/// kernel --products names.
struct GemmSpeed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm-speed",
        abstract: "GFLOP/s and microseconds per call of one product shape, C(m, n) = op(A) op(B) (one JSON line).")

    @Option(help: "Rows of C.")
    var m = 64

    @Option(help: "Columns of C.")
    var n = 1024

    @Option(help: "The inner dimension.")
    var k = 256

    @Option(help: "1: A is stored (k, m) and used transposed; 0: stored (m, k).")
    var ta = 0

    @Option(help: "1: B is stored (n, k) and used transposed; 0: stored (k, n).")
    var tb = 1

    @Option(help: "Timed calls (after 10 untimed).")
    var repeats = 200

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        for (value, name) in [(m, "m"), (n, "n"), (k, "k"), (repeats, "repeats")] { try requireAtLeast(1, value, name) }
        // The three operands, checked before anything is allocated from them.
        for (value, name) in [(m, "m"), (n, "n"), (k, "k")] where value > 1 << 20 {
            throw ValidationError("--\(name) must be at most \(1 << 20); got \(value)")
        }
        let bytes = 4 * (Double(m) * Double(k) + Double(n) * Double(k) + Double(m) * Double(n))
        try asUsageError {
            try MemoryBudget.check(bytes, for: "a \(m) x \(n) x \(k) product", hint: "lower --m, --n or --k")
        }
        for (value, name) in [(ta, "ta"), (tb, "tb")] where value != 0 && value != 1 {
            throw ValidationError("--\(name) must be 0 or 1; got \(value)")
        }
    }

    func run() throws {
        let context = try compute.makeContext()
        let transA: Transpose = ta == 1 ? .transposed : .none
        let transB: Transpose = tb == 1 ? .transposed : .none
        let a = FloatBuffer(count: m * k), b = FloatBuffer(count: n * k), c = FloatBuffer(count: m * n)
        for index in 0..<a.count { a.pointer[index] = Float(index % 7) * 0.1 }
        for index in 0..<b.count { b.pointer[index] = Float(index % 5) * 0.1 }
        func run() {
            Products.gemm(transA, transB, m: m, n: n, k: k, a: a.pointer, lda: transA == .none ? k : m,
                      b: b.pointer, ldb: transB == .none ? n : k, beta: 1, c: c.pointer, ldc: n, context: context)
        }
        for _ in 0..<10 { run() }
        let start = Date()
        for _ in 0..<repeats { run() }
        let seconds = Date().timeIntervalSince(start)
        printJSON([("m", m), ("n", n), ("k", k), ("threads", context.threadCount),
                   ("products", context.productKernel.rawValue),
                   ("kernel", context.productKernel.choice(for: ProductRole(transA, transB), cpu: context.cpu).rawValue),
                   ("vector_bits", context.cpu.vectorBits), ("openblas_core", BLAS.coreName),
                   ("us_per_call", seconds * 1e6 / Double(repeats)),
                   ("gflops", 2 * Double(m * n * k * repeats) / seconds / 1e9)])
    }
}

struct FMAPeak: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fma-peak",
        abstract: "GFLOP/s of independent multiply-adds on registers: the ceiling under every product (one JSON line).")

    @Option(help: "Rounds of 12 multiply-adds per thread.")
    var iterations = 200_000_000

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        try requireAtLeast(1, iterations, "iterations")
        if iterations > 100_000_000_000 { throw ValidationError("--iterations must be at most 100000000000; got \(iterations)") }
    }

    func run() throws {
        let context = try compute.makeContext()
        let bits = context.cpu.vectorBits
        let rate = fusedMultiplyAddRate(threads: context.threadCount, vectorBits: bits, iterations: iterations)
        printJSON([("threads", context.threadCount), ("vector_bits", bits), ("gflops", rate)])
    }
}
