// The command table. Each command is one value: name, usage, summary, details with an example, what it runs and
// how its arguments complete. `help`, "did you mean" and completion are generated from this table. Adding a command
// adds a row here. A row runs a session operation (Session.swift) with its arguments read (Arguments.swift), or a
// function named for the command, beside others of its kind: reports in Inspection/InspectionCommands.swift, `show`
// in Help.swift, what acts on the session or the script (save, restore, history, echo, pause) in Actions.swift.

import CharLM
import Foundation

/// What a running command can reach: the session and the runner that called it.
public struct CommandContext {
    public let session: Session
    public let runner: Runner
}

/// One shell command.
public struct Command: Sendable {
    public let name: String
    public let aliases: [String]
    public let usage: String
    public let summary: String
    /// Shown by `help NAME`: what it does, then an example.
    public let details: String
    let run: @Sendable (CommandContext, [Word]) throws -> Void
    /// Candidates for the argument being typed, given the arguments before it.
    let complete: @Sendable (Session?, [String], String) -> [String]

    init(_ name: String, aliases: [String] = [], usage: String, summary: String, details: String,
         complete: @escaping @Sendable (Session?, [String], String) -> [String] = { _, _, _ in [] },
         run: @escaping @Sendable (CommandContext, [Word]) throws -> Void) {
        self.name = name
        self.aliases = aliases
        self.usage = usage
        self.summary = summary
        self.details = details
        self.run = run
        self.complete = complete
    }
}

/// A setting shorthand such as `temp 0.8`: sets it, or shows it with no value.
private func shorthand(_ name: String, _ key: String, _ example: String) -> Command {
    let setting = Settings.key(named: key)!
    return Command(name, usage: "\(name) [VALUE]", summary: "set \(key): \(setting.summary)",
                   details: "With a value, sets \(key); without, shows it.\nExample: \(example)",
                   complete: { _, previous, prefix in previous.isEmpty ? setting.suggestions.filter { $0.hasPrefix(prefix) } : [] }) { context, words in
        try expectArguments(words, 0, 1, "\(name) [VALUE]")
        if let value = words.first {
            try context.session.set(key, value.text)
        } else {
            context.session.console.info("\(key) \(setting.get(context.session.settings))\n")
        }
    }
}

/// The command table.
public enum Commands {
    public static let table: [Command] = [
        Command("load", usage: "load PATH|URL|NAME", summary: "load a text corpus or a checkpoint",
                details: """
                Loads a text file (normalised by the `lowercase` and `ascii` settings, split by `val`) or a checkpoint \
                (recognised by its content, whatever its name), restoring everything the checkpoint holds. NAME is a \
                built-in dataset (\(Downloads.builtIn.keys.sorted().joined(separator: ", "))), downloaded once into \
                $CHARLM_CACHE (default ~/.cache/charlm) and checked against its sha256; a URL downloads any http(s) \
                text the same way.
                Example: load tinyshakespeare
                """,
                complete: { _, previous, prefix in
                    previous.isEmpty ? Downloads.builtIn.keys.sorted().filter { $0.hasPrefix(prefix) } + completePath(prefix) : []
                }) { context, words in
            try expectArguments(words, 1, 1, "load PATH|URL|NAME")
            try context.session.load(words[0].text)
        },
        Command("set", usage: "set KEY VALUE", summary: "change a setting",
                details: "Changes one setting; `show` lists them all with their values.\nExample: set hidden 512",
                complete: { _, previous, prefix in
                    if previous.isEmpty { return Settings.keys.map(\.name).filter { $0.hasPrefix(prefix) } }
                    if previous.count == 1, let key = Settings.key(named: previous[0]) {
                        return key.suggestions.filter { $0.hasPrefix(prefix) } + (key.declaration.domain == .file ? completePath(prefix) : [])
                    }
                    return []
                }) { context, words in
            try expectArguments(words, 2, 2, "set KEY VALUE")
            try context.session.set(words[0].text, words[1].text)
        },
        Command("show", usage: "show [KEY]", summary: "show settings",
                details: "Without a key, lists every setting with its value and meaning.\nExample: show lr",
                complete: { _, previous, prefix in previous.isEmpty ? Settings.keys.map(\.name).filter { $0.hasPrefix(prefix) } : [] },
                run: runShow),
        shorthand("temp", "temp", "temp 0.8"),
        shorthand("seed", "seed", "seed 42"),
        shorthand("topk", "topk", "topk 40"),
        shorthand("topp", "topp", "topp 0.9"),
        shorthand("len", "length", "len 500"),
        shorthand("samples", "samples", "samples 4"),
        Command("model", aliases: ["info"], usage: "model", summary: "describe the model, the corpus and progress",
                details: "Architecture, parameter count, corpus, step, epoch, last training and validation loss, memory, and what computes (threads, the products' kernel and vector width, the BLAS and its kernel family).\nExample: model",
                run: runModel),
        Command("reset", usage: "reset", summary: "start a fresh model from the current settings",
                details: "Builds a new, untrained model from the current model settings (arch, embed, layers, dropout; hidden for a recurrent network; heads, context and bias for a transformer) on the loaded text's characters; forgets the optimizer and histories. Change those settings first (`set hidden 128`), then reset.\nExample: reset") { context, words in
            try expectArguments(words, 0, 0, "reset")
            try context.session.reset()
        },
        Command("restore", usage: "restore best", summary: "put back the best parameters validation has seen",
                details: "Copies back the parameters of the lowest validation loss of this model's training (`model` shows its step). Adam's moments were not kept, so the optimizer restarts; the step count and histories stay. `train until N` does this by itself.\nExample: restore best",
                complete: { _, previous, prefix in previous.isEmpty ? ["best"].filter { $0.hasPrefix(prefix) } : [] },
                run: runRestore),
        Command("train", usage: "train [N | N steps | 90s | 5m | until N]", summary: "train for N epochs, N steps, a time, or until validation stops improving",
                details: """
                Trains the model on the loaded text: N epochs (one epoch = one pass over the training split's \
                characters; default 1), N steps, or for a time (90s, 5m, 1h). Validates every `eval` steps and at the \
                end, keeping the best parameters so far (`restore best`, `save best PATH`; `keepbest` also writes them \
                to a file). `train until N` trains until N validations in a row have not improved on the best \
                (early stopping), then restores the best. A note says when validation rises while training loss \
                falls (overfitting). `log` records every step, `autosave` saves on an interval. Ctrl-C stops after \
                the current step; keys typed while it trains are dropped, so that none runs a command when it ends.
                Example: train 500 steps
                """,
                complete: { _, previous, prefix in
                    if previous.isEmpty { return ["until"].filter { $0.hasPrefix(prefix) } }
                    return previous.count == 1 && previous[0] != "until" ? ["steps"].filter { $0.hasPrefix(prefix) } : []
                }) { context, words in
            try context.session.train(parseTrainingAmount(words.map(\.text)))
        },
        Command("eval", usage: "eval", summary: "validation loss in nats/char, bits/char and perplexity",
                details: "Mean cross-entropy over the validation split in windows of `seq` characters, each read from scratch (no memory or context carried over from the window before).\nExample: eval",
                run: runEval),
        Command("gen", aliases: ["generate"], usage: "gen [\"PROMPT\"] [N]", summary: "generate N characters after a prompt",
                details: """
                Streams N characters (default `len`) after PROMPT, using temp, topk, topp and the seed. The prompt takes \
                escapes (\\n, \\t, \\", \\\\); @FILE reads it from a file. Characters the model does not know are \
                reported and left out. With `samples K` (K > 1), writes K independent samples of N characters, \
                generated together and written one after the other under `--- sample k of K ---` once done (a \
                progress line meanwhile). `set bf16 on` reads bfloat16 copies of the weights (faster). Ctrl-C stops.
                Example: gen "ROMEO:" 300
                """,
                complete: { _, previous, prefix in previous.isEmpty && prefix.hasPrefix("@") ? completePath(String(prefix.dropFirst())).map { "@" + $0 } : [] }) { context, words in
            let (prompt, count) = try promptAndCount(words, command: "gen", session: context.session)
            try context.session.generate(prompt: prompt, count: count)
        },
        Command("vocab", usage: "vocab", summary: "the characters the model knows, with index and count",
                details: "Every vocabulary entry: its index (the number the model sees), the character spelled visibly ('\\n', ' '), and how often it occurs in the loaded text.\nExample: vocab") { context, words in
            try expectArguments(words, 0, 0, "vocab")
            context.session.console.info(try context.session.inspector().vocabularyTable())
        },
        Command("encode", usage: "encode \"TEXT\"", summary: "turn text into the indices the model sees",
                details: "Normalises TEXT as the corpus was (lowercase, ascii), maps each character to its index, and says what normalisation changed and which characters were left out.\nExample: encode \"Hello, World!\"") { context, words in
            try expectArguments(words, 1, 1, "encode \"TEXT\"")
            context.session.console.info(try context.session.inspector().encodeReport(words[0].text))
        },
        Command("decode", usage: "decode INDEX...", summary: "turn indices back into text",
                details: "The characters of vocabulary indices (`vocab` lists them), spelled visibly and then as text.\nExample: decode 20 17 24 24 27") { context, words in
            guard !words.isEmpty else { throw ShellError.usage("decode INDEX...") }
            context.session.console.info(try context.session.inspector().decodeReport(words.map(\.text)))
        },
        Command("windows", usage: "windows [N]", summary: "training examples: input characters over the ones to predict",
                details: "Draws N (default 3) windows of `seq` characters at random from the training split, as training does (the same ones each time for the same seed, so looking changes nothing), and shows each input character above the character the model must predict there.\nExample: windows 2",
                run: runWindows),
        Command("next", usage: "next \"PROMPT\" [K]", summary: "the K most likely next characters, at temp 1 and now",
                details: "Feeds PROMPT and shows the K (default 10) most likely next characters as bars: the model's own distribution (temperature 1) beside the one sampling draws from now (temp, topk, topp).\nExample: next \"ROMEO:\" 5",
                run: runNext),
        Command("trace", usage: "trace \"PROMPT\" [N]", summary: "sample N characters slowly: choice, probability, rank, alternatives",
                details: "Generates N (default 20) characters after PROMPT with the current temp, topk, topp and seed, one line each: the character drawn, its probability, its rank, how many characters the cut-offs kept, and the most likely alternatives (| marks the top-k/top-p cut-off).\nExample: trace \"To be\" 10",
                run: runTrace),
        Command("cells", usage: "cells [top | find] \"TEXT\" [LAYER] [CELL] [--html FILE]", summary: "what the memory cells do over a text",
                details: """
                cells "TEXT" [LAYER] [CELL]: colours each character by one memory cell after reading it: tanh(c) \
                for the LSTM, h for the GRU and the RNN (blue -1, white 0, red +1; numbers when not on a terminal). \
                LAYER defaults to the top layer, CELL to the cell that changes most over TEXT, or names a feature \
                `cells find` looked for (quotes, line-position, ...). cells top "TEXT" [LAYER]: the cells that \
                change most. cells find "TEXT" [LAYER]: the cell that follows each feature of the text most \
                closely (position in the line, inside quotes, inside brackets, inside a word, a newline, a capital), \
                with its correlation. --html FILE: a page with every cell of the layer, one line each, values on \
                hover. TEXT may be @FILE.
                Example: cells find "First Citizen:\\nBefore we proceed any further, hear me speak."
                """,
                complete: { _, previous, prefix in
                    if previous.isEmpty { return ["top", "find"].filter { $0.hasPrefix(prefix) } }
                    if previous.last == "--html" { return completePath(prefix) }
                    if prefix.hasPrefix("-") { return ["--html"].filter { $0.hasPrefix(prefix) } }
                    return TextFeature.allCases.map(\.rawValue).filter { !prefix.isEmpty && $0.hasPrefix(prefix) }
                }, run: runCells),
        Command("gates", usage: "gates \"TEXT\" [LAYER] [--svg FILE]", summary: "how often each gate is shut or wide open",
                details: """
                Feeds TEXT and counts, for every unit of LAYER (default: the top one), the share of characters after \
                which each gate is below 0.1 (closed, left-saturated) and above 0.9 (open, right-saturated), drawn as \
                the scatter of Karpathy et al. (2015): one dot per unit, x closed, y open. LSTM: gates i, f, o; GRU: \
                r, z; the vanilla RNN has none. --svg FILE writes the scatter as a picture. TEXT may be @FILE.
                Example: gates @input.txt 1 --svg gates.svg
                """,
                complete: { _, previous, prefix in
                    if previous.last == "--svg" { return completePath(prefix) }
                    return prefix.hasPrefix("-") ? ["--svg"].filter { $0.hasPrefix(prefix) } : []
                }, run: runGates),
        Command("attn", usage: "attn \"TEXT\" [LAYER] [HEAD] [--html FILE]", summary: "where a transformer's heads look in a text",
                details: """
                Feeds TEXT to the transformer and draws one head's attention as a heatmap: a row per character as it \
                reads (the query), a column per character so far (the key), shaded by the weight (· below 0.1 ... █ \
                0.8 and above). Without HEAD, the most distinctive head (the most concentrated: lowest mean entropy of \
                its weights) of LAYER, or of every layer; then a line per head: mean distance looked back, the shares \
                on the previous character, the first, itself, spaces and newlines, its spread (0 one character, 1 all \
                alike) and what it mostly looks at. --html FILE: every layer and head on one page, weights on hover. \
                TEXT may be @FILE, at most the model's context. For a recurrent network, see `cells` and `gates`.
                Example: attn "to be or not to be" 0
                """,
                complete: { _, previous, prefix in
                    if previous.last == "--html" { return completePath(prefix) }
                    return prefix.hasPrefix("-") ? ["--html"].filter { $0.hasPrefix(prefix) } : []
                }, run: runAttn),
        Command("ngram", usage: "ngram [N | N1 N2 ...] | ngram gen [\"PROMPT\"] [N]", summary: "count-based n-gram baselines: what counting alone predicts",
                details: """
                Counts the character n-grams of the loaded text's training split and reports each order's validation \
                loss, measured as `eval` measures the network's (windows of `seq`, nats/char), beside the network's. \
                Smoothing: interpolated Kneser-Ney. ngram N reports orders 1 to N (default 5, at most 10); \
                ngram 3 5 7 those orders. ngram gen ["PROMPT"] [N] samples N characters (default `len`) from the \
                highest order counted, with temp, topk and topp: read what counting alone writes. The rows join \
                `compare`'s table.
                Example: ngram 7
                """,
                complete: { _, previous, prefix in previous.isEmpty ? ["gen"].filter { $0.hasPrefix(prefix) } : [] },
                run: runNgram),
        Command("compare", usage: "compare [add [\"LABEL\"] | clear]", summary: "a table of trained networks beside n-gram baselines",
                details: """
                compare add ["LABEL"] measures the current network (validation loss, as `eval`) and adds a row with \
                its parameters, steps and the tokens/s of its last `train`; `ngram` adds its orders. compare prints \
                the table; compare clear empties it. scripts/compare.clm uses it to race networks against the n-grams.
                Example: compare add "GRU, 10 minutes"
                """,
                complete: { _, previous, prefix in previous.isEmpty ? ["add", "clear"].filter { $0.hasPrefix(prefix) } : [] },
                run: runCompare),
        Command("plot", usage: "plot [FILE.svg]", summary: "training and validation loss against steps",
                details: "Draws the loss curves in the terminal (braille dots, fitted to its width), or writes them as an SVG file.\nExample: plot curves.svg",
                complete: { _, previous, prefix in previous.isEmpty ? completePath(prefix) : [] }, run: runPlot),
        Command("novelty", usage: "novelty [N]", summary: "generate N characters: how much is copied from the training text?",
                details: "Generates N (default 500) characters with the current sampling settings and reports the share of their words and of their 8-character sequences found in the training text, marking the longest stretch copied verbatim.\nExample: novelty 1000",
                run: runNovelty),
        Command("pause", usage: "pause [\"MESSAGE\"]", summary: "wait for Enter (in a script run at a terminal)",
                details: "Prints MESSAGE (default: press Enter to go on) and waits for Enter when charlm runs at a terminal, so a script can stop between sections; elsewhere (a pipe, -c, tests) it goes straight on.\nExample: pause \"Next: sampling.\"",
                run: runPause),
        Command("clear", usage: "clear", summary: "clear the terminal's screen",
                details: "Clears the screen and its scrollback at a terminal, as the shell's `clear` does (Ctrl-L clears it while typing); elsewhere it prints nothing.\nExample: clear",
                run: runClear),
        Command("echo", usage: "echo TEXT", summary: "print TEXT (for explanations in scripts)",
                details: "Prints its words separated by spaces; quotes keep spacing and allow \\n.\nExample: echo \"Next: the model's predictions.\"",
                run: runEcho),
        Command("save", usage: "save [PATH] | save best PATH", summary: "save the session (or the best model) to a checkpoint",
                details: "Writes model, optimizer, settings and histories to a safetensors checkpoint, atomically. Without PATH: the file this session last saved to, else charlm.safetensors; a bare `save` never replaces a file this session did not write (name it to replace it). A read-only file is never replaced. `save best PATH` writes the best parameters validation has seen (`model` names their step), with the history up to that step and no optimizer state (it was not kept); a file called best is `save ./best`.\nExample: save shakespeare.safetensors",
                complete: { _, previous, prefix in previous.isEmpty || previous == ["best"] ? completePath(prefix) : [] },
                run: runSave),
        Command("source", usage: "source FILE.clm", summary: "run the commands in a script",
                details: "Runs a .clm script inside this session. A `source` inside a script names its script relative to that script's folder; every other path (load, save, plot, @FILE) is relative to the current folder, as at the prompt.\nExample: source experiment.clm",
                complete: { _, previous, prefix in previous.isEmpty ? completePath(prefix) : [] }) { context, words in
            try expectArguments(words, 1, 1, "source FILE.clm")
            try context.runner.source(words[0].text)
        },
        Command("history", usage: "history [N]", summary: "the commands typed so far, numbered",
                details: "The last N commands (default 20), oldest first, numbered: at the prompt, this session's and those kept from earlier sessions (in $CHARLM_HISTORY, default ~/.charlm_history, written after every command); in a script, the commands run so far. (For the training losses, see `plot`.)\nExample: history 5",
                run: runHistory),
        Command("help", aliases: ["?"], usage: "help [COMMAND|SETTING]", summary: "list the commands, or explain one",
                details: "Without a command, lists every command with its usage; with one, explains it and gives an example.\nExample: help train",
                complete: { _, previous, prefix in previous.isEmpty ? helpTopics.filter { $0.hasPrefix(prefix) } : [] }) { context, words in
            // `help restore best`, `help keepbest PATH`: the usage's own words after the name are allowed.
            try expectArguments(words, 0, 3, "help [COMMAND|SETTING]")
            context.session.console.info(try helpText(for: words.first?.text, width: context.session.console.width))
        },
        Command("quit", aliases: ["exit"], usage: "quit", summary: "leave charlm (also Ctrl-D)",
                details: "Ends the session (also Ctrl-D). At the prompt, leaving with training that was never saved is refused once, with a note: `save`, or quit again.\nExample: quit") { context, words in
            try expectArguments(words, 0, 0, "quit")
            context.runner.requestQuit()
        },
    ]

    /// The command called `name` (or with that alias).
    public static func command(named name: String) -> Command? {
        table.first { $0.name == name || $0.aliases.contains(name) }
    }
}
