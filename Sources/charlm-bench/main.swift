// charlm-bench: measurements that are too slow or too machine-dependent for unit tests. One subcommand per
// measurement; `charlm-bench SUBCOMMAND --help` lists its options and defaults.
//
//   quality         a training run on raw text: the validation curve, wall time and throughput (Quality.swift)
//   eval            validation loss of a checkpoint on a corpus, with the standard protocol (Quality.swift)
//   dump-step       one training step's inputs and results as raw files, for the PyTorch cross-check (DumpStep.swift)
//   train-speed     training tokens/s after warm-up                     \
//   generate-speed  generated characters/s at batch 1                   |  one JSON line each; `scripts/bench`
//   load-speed      load and tokenise time of a corpus, memory held     |  runs the first three (Speed.swift)
//   train-profile   where a training step's time goes, phase by phase   |
//   gemm-speed      GFLOP/s of BLAS on one product shape                /
//
// This file holds the command table, the options several subcommands share, and the exit codes: 0 success,
// 1 a measurement failed ("error: MESSAGE"), 2 bad usage (ArgumentParser's message, e.g. "Unknown option '--hiden'.
// Did you mean '--hidden'?").

import ArgumentParser
import CharLM
import Foundation

struct CharLMBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "charlm-bench",
        abstract: "Measurements of charlm that are too slow or too machine-dependent for unit tests.",
        discussion: "scripts/bench runs the speed subcommands side by side with the PyTorch reference.",
        subcommands: [Quality.self, Eval.self, DumpStep.self, TrainSpeed.self, GenerateSpeed.self, LoadSpeed.self,
                      TrainProfile.self, GemmSpeed.self, FMAPeak.self])
}

/// A measurement that cannot run, and what to do about it.
struct BenchError: Error, CustomStringConvertible {
    let description: String
}

/// The model family `--arch` names: a recurrent cell, or the transformer.
enum Arch: String, ExpressibleByArgument, CaseIterable {
    case lstm, gru, rnn, transformer
}

/// The architecture: E, H, L and the cell of a recurrent model, or E, L, heads, context and bias of a transformer
/// (`--arch transformer`). Every default in this target is the shell's setting's, read from its declaration
/// (SettingDeclarations.swift).
struct ModelShape: ParsableArguments {
    @Option(help: "E: embedding width (the transformer's n_embd).")
    var embed = Setting.embed.defaultInteger

    @Option(help: "H: hidden width of every layer (recurrent).")
    var hidden = Setting.hidden.defaultInteger

    @Option(help: "L: stacked recurrent layers, or transformer blocks.")
    var layers = Setting.layers.defaultInteger

    @Option(help: "The recurrent cell: lstm, gru or rnn.")
    var cell: LayerKind = Setting.cell.defaultChoice()

    @Option(help: "The model: lstm, gru or rnn (as --cell) or transformer (default: the cell's).")
    var arch: Arch?

    @Option(help: "The transformer's attention heads (divide --embed).")
    var heads = Setting.heads.defaultInteger

    @Option(help: "The transformer's context (block size).")
    var context = Setting.context.defaultInteger

    @Flag(help: "Biases in the transformer's linear layers and LayerNorms.")
    var bias = Setting.bias.defaultFlag

    /// Whether --arch names the transformer.
    var isTransformer: Bool { arch == .transformer }

    /// The recurrent model's config (--arch, when it names a cell, overrides --cell).
    func config(vocabularySize V: Int, dropout: Float = Setting.dropout.defaultFloat) -> RecurrentConfig {
        let kind = arch.flatMap { LayerKind(rawValue: $0.rawValue) } ?? cell
        return RecurrentConfig(vocabularySize: V, embeddingSize: embed, hiddenSize: hidden, layerCount: layers,
                               dropout: dropout, layerKind: kind)
    }

    /// The transformer's config.
    func transformerConfig(vocabularySize V: Int, dropout: Float = Setting.dropout.defaultFloat) -> TransformerConfig {
        TransformerConfig(vocabularySize: V, embeddingSize: embed, layerCount: layers, headCount: heads,
                          context: context, bias: bias, dropout: dropout)
    }

    /// The architecture --arch names.
    func architecture(vocabularySize V: Int, dropout: Float = Setting.dropout.defaultFloat) -> any ModelArchitecture {
        isTransformer ? transformerConfig(vocabularySize: V, dropout: dropout) : config(vocabularySize: V, dropout: dropout)
    }
}

/// T, B: the training windows.
struct WindowShape: ParsableArguments {
    @Option(help: "T: characters per training window.")
    var seq = Setting.seq.defaultInteger

    @Option(help: "B: windows per batch.")
    var batch = Setting.batch.defaultInteger
}

/// The text to train on or to evaluate on.
struct CorpusOption: ParsableArguments {
    @Option(help: ArgumentHelp("A text file, read raw (no lowercasing, no ASCII folding).", valueName: "path"))
    var corpus = "../shared/data/tinyshakespeare.txt"
}

/// How many threads compute: one `ComputeContext` for the whole measurement.
struct ComputeOptions: ParsableArguments {
    @Option(help: "Compute threads, which share the recurrent layers' time loops and the matrix products (default: one per core).")
    var threads = Setting.threads.defaultInteger

    @Option(help: "Which code computes the large products: auto (the measured table for the CPU class), packed (charlm's kernel) or blas (default: \(ProductKernel.preferred.rawValue)).")
    var products = ProductKernel.preferred

    @Option(help: ArgumentHelp(
        "Compute as a CPU with vectors this wide: 256 measures the AVX2 kernels on an AVX-512 CPU (default: this CPU's, or $\(CPUClass.environmentVariable)).",
        valueName: "bits"))
    var vectorBits: String?

    @Option(help: "How the recurrent layers' time loops share a step between threads: fused (each thread its units' product and cell, one barrier per step) or split (product by columns, cell by rows, two barriers; the loop before). Same results.")
    var timeLoop = TimeLoop.fused

    func validate() throws {
        try asUsageError { try Setting.threads.check(threads) }
        _ = try cpu()
    }

    /// The CPU class to compute as: --vector-bits, else $CHARLM_VECTOR_BITS, else this CPU's.
    func cpu() throws -> CPUClass {
        try asUsageError {
            if let vectorBits { try CPUClass.narrowed(toBits: vectorBits, source: "--vector-bits") }
            else { try CPUClass.fromEnvironment() }
        }
    }

    func makeContext() throws -> ComputeContext {
        ComputeContext(threads: threads, products: products, cpu: try cpu(), timeLoop: timeLoop)
    }
}

extension ProductKernel: ExpressibleByArgument {}
extension TimeLoop: ExpressibleByArgument {}

/// Runs a check (a setting's range check, SettingDeclarations.swift), its failure a usage error.
@discardableResult
func asUsageError<Result>(_ check: () throws -> Result) throws -> Result {
    do {
        return try check()
    } catch let error as CharLMError {
        throw ValidationError(error.description)
    }
}

/// Throws a usage error unless `value` is at least `minimum`: counts that would trap or divide by zero.
func requireAtLeast(_ minimum: Int, _ value: Int, _ option: String) throws {
    if value < minimum { throw ValidationError("--\(option) must be at least \(minimum); got \(value)") }
}

/// Writes one line to stdout at once (not buffered), so whoever watches a long run sees each line when it is made.
func printLine(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

// Bad usage exits with 2 (ArgumentParser's own default is 64), help exits 0, and a measurement that fails exits 1.
var command: ParsableCommand
do {
    command = try CharLMBench.parseAsRoot()
} catch {
    let message = CharLMBench.fullMessage(for: error)
    if CharLMBench.exitCode(for: error) == .success {
        print(message)
        exit(0)
    }
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}
do {
    try command.run()
} catch {
    // `charlm-bench` alone asks for help; everything else thrown here is a measurement that failed.
    if CharLMBench.exitCode(for: error) == .success {
        print(CharLMBench.fullMessage(for: error))
        exit(0)
    }
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}

extension LayerKind: ExpressibleByArgument {}
