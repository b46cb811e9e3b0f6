"""The commands that use a charlm file, with the cell its config names: `logits` (after a prompt, as JSON), `eval`
(validation loss on a corpus's last 10%) and `generate` (greedy continuation). The file is checked as charlm checks
it (checkpoint_reading.py); a prompt or corpus the model cannot read is said in one line."""
import json
import math

from ..checkpoint import load_charlm
from ..errors import CommandError, visible
from ..models import greedy, logits_after
from ..text import encode, read_text, token_ids
from ..training import evaluate


def model_and_prompt_arguments(parser):
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompt", required=True)


def prompt_ids(args, vocab, config):
    """The prompt's token ids under the model's vocabulary; a prompt with none of its characters is refused."""
    ids = encode(args.prompt, vocab, config)
    if not ids:
        raise CommandError(f"the prompt '{visible(args.prompt)}' has no character of the vocabulary of {args.model}: "
                           "feed at least one character it knows")
    return ids


def logits(args):
    model, vocab, config = load_charlm(args.model)
    values = logits_after(model, prompt_ids(args, vocab, config)).tolist()
    print(json.dumps({"prompt": args.prompt, "logits": values}))


def eval_arguments(parser):
    parser.add_argument("--model", required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--seq", type=int, default=100)
    parser.add_argument("--batch", type=int, default=64)


def evaluation(args):
    if args.seq < 1 or args.batch < 1:
        raise CommandError(f"--seq and --batch must be at least 1; got {args.seq} and {args.batch}")
    model, vocab, config = load_charlm(args.model)
    text = read_text(args.corpus, config.get("lowercase", False), config.get("ascii", False))
    unknown = sorted(set(text) - set(vocab))
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise CommandError(f"{args.corpus} has characters the vocabulary of {args.model} lacks ({visible(shown, 80)}): "
                           "evaluate on the text it was trained on")
    ids = token_ids(text, vocab)
    val = ids[int(0.9 * len(ids)):]
    if len(val) < args.seq + 1:
        raise CommandError(f"the validation split of {args.corpus} has {len(val)} characters; it needs at least "
                           f"seq+1 = {args.seq + 1}: lower --seq or use more text")
    loss = evaluate(model, val, args.seq, args.batch, "cpu")
    print(f"validation loss {loss:.4f} nats/char, {loss / math.log(2):.4f} bits/char, perplexity {math.exp(loss):.3f}")


def generate_arguments(parser):
    model_and_prompt_arguments(parser)
    parser.add_argument("--length", type=int, default=200)


def generate(args):
    model, vocab, config = load_charlm(args.model)
    ids = prompt_ids(args, vocab, config)
    print(args.prompt + "".join(vocab[i] for i in greedy(model, ids, args.length)), end="")
