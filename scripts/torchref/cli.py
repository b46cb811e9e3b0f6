"""The command line: the table of commands (name, one-line help, options, run), the argparse parser made from it,
the dispatch, and the one place that turns what went wrong into a line on stderr and an exit status. What each
command does is in commands/; the usage text is torch_reference.py's docstring."""
import argparse
import sys
from collections import namedtuple

from .commands import convert, fixtures, inference, speed, train
from .errors import PROGRAM, CommandError, missing_module, visible

Command = namedtuple("Command", "name help arguments run")
Command.__doc__ = """One command: `arguments(parser)` declares its options, `run(args)` runs it."""

# In the order --help lists them.
COMMANDS = (
    Command("train", "train on a text file and print the validation curve", train.arguments, train.train),
    Command("logits", "print the logits after a prompt as JSON", inference.model_and_prompt_arguments,
            inference.logits),
    Command("eval", "validation loss of a charlm file on a corpus", inference.eval_arguments, inference.evaluation),
    Command("generate", "greedy continuation of a prompt", inference.generate_arguments, inference.generate),
    Command("convert-nanogpt", "a nanoGPT ckpt.pt and its meta.pkl as a charlm file", convert.arguments,
            convert.convert_nanogpt),
    Command("fixture-checkpoint", "write charlm's tiny PyTorch model fixture (any --cell)",
            fixtures.checkpoint_arguments, fixtures.fixture_checkpoint),
    Command("train-speed", "speed benchmark (one JSON line)", speed.arguments(warmup=3), speed.train_speed),
    Command("generate-speed", "speed benchmark (one JSON line)", speed.arguments(warmup=50), speed.generate_speed),
    Command("load-speed", "corpus load benchmark (one JSON line)", speed.load_arguments, speed.load_speed),
    Command("fixture-training", "write the JSON training fixture charlm's tests replay (any --cell)",
            fixtures.training_arguments, fixtures.fixture_training),
    Command("fixture-transformer", "write the JSON fixture of nanoGPT's GPT charlm's transformer tests replay",
            fixtures.transformer_arguments, fixtures.fixture_transformer),
)


def parser(description):
    """The parser of the whole command line, one subcommand a row of COMMANDS; `description` heads --help."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.arguments(commands.add_parser(command.name, help=command.help))
    return parser


def main(argv, description):
    """Parses `argv` (without the program name) and runs the command; `args.argv` keeps the words as given."""
    args = parser(description).parse_args(argv)
    args.argv = list(argv)
    next(command for command in COMMANDS if command.name == args.command).run(args)


def run(argv, description):
    """Runs the command line `argv` and returns the exit status: 0, or 1 after one line on stderr when what the
    command was given cannot be used (a CommandError: a damaged checkpoint, a corpus, an option, the memory), a file
    cannot be read, or torch, numpy or safetensors is missing. argparse's own usage errors exit 2, as always."""
    try:
        main(argv, description)
    except CommandError as error:
        return fail(str(error))
    except OSError as error:
        if error.filename is None:
            raise
        return fail(f"cannot read '{visible(str(error.filename), limit=None)}': {error.strerror or error}")
    except ModuleNotFoundError as error:
        message = missing_module(error)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 1
    return 0


def fail(message):
    print(f"{PROGRAM}: error: {message}", file=sys.stderr)
    return 1
