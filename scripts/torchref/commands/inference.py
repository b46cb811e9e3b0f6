"""The commands that use a charlm file, with the cell its config names: `logits` (after a prompt, as JSON), `eval`
(validation loss on a corpus's last 10%) and `generate` (greedy continuation)."""
import json
import math

from ..checkpoint import load_charlm
from ..models import greedy, logits_after
from ..text import encode, read_text, token_ids
from ..training import evaluate


def model_and_prompt_arguments(parser):
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompt", required=True)


def logits(args):
    model, vocab, config = load_charlm(args.model)
    values = logits_after(model, encode(args.prompt, vocab, config)).tolist()
    print(json.dumps({"prompt": args.prompt, "logits": values}))


def eval_arguments(parser):
    parser.add_argument("--model", required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--seq", type=int, default=100)
    parser.add_argument("--batch", type=int, default=64)


def evaluation(args):
    model, vocab, config = load_charlm(args.model)
    ids = token_ids(read_text(args.corpus, config.get("lowercase", False), config.get("ascii", False)), vocab)
    val = ids[int(0.9 * len(ids)):]
    loss = evaluate(model, val, args.seq, args.batch, "cpu")
    print(f"validation loss {loss:.4f} nats/char, {loss / math.log(2):.4f} bits/char, perplexity {math.exp(loss):.3f}")


def generate_arguments(parser):
    model_and_prompt_arguments(parser)
    parser.add_argument("--length", type=int, default=200)


def generate(args):
    model, vocab, config = load_charlm(args.model)
    ids = encode(args.prompt, vocab, config)
    print(args.prompt + "".join(vocab[i] for i in greedy(model, ids, args.length)), end="")
