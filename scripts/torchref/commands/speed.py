"""The speed commands, twins of `charlm-bench train-speed | generate-speed | load-speed` (same options): each prints
one JSON line that `scripts/bench` sets beside charlm's. Timings start after a warm-up. With `--arch transformer` the
model is nanoGPT's GPT (nanogpt.py), trained with AdamW in nanoGPT's groups, and generation runs in windows of the
context as charlm's does (one prompt character, C - 1 generated), by nanoGPT's `generate` (recomputing the context
every token) or, with `--generator kvcache`, by kvcache.py's loop."""
import json
import os
import resource
import time

import torch

from ..kvcache import generate_cached
from ..models import CELLS, continuation, make_model
from ..settings import TRANSFORMER
from ..text import load_corpus
from ..training import make_optimizer, random_windows, training_step


def arguments(warmup):
    """The options of train-speed and generate-speed; `warmup` is the command's default warm-up."""
    def add(parser):
        parser.add_argument("--cell", choices=CELLS, default="lstm", help="recurrent cell (default lstm)")
        parser.add_argument("--corpus", default="../shared/data/tinyshakespeare.txt")
        parser.add_argument("--embed", type=int, default=64)
        parser.add_argument("--hidden", type=int, default=256)
        parser.add_argument("--layers", type=int, default=2)
        parser.add_argument("--seq", type=int, default=100)
        parser.add_argument("--batch", type=int, default=64)
        parser.add_argument("--steps", type=int, default=20)
        parser.add_argument("--warmup", type=int, default=warmup)
        parser.add_argument("--length", type=int, default=2000)
        parser.add_argument("--threads", type=int, default=2)
        parser.add_argument("--arch", choices=CELLS + (TRANSFORMER,), help="the model (default: --cell's)")
        parser.add_argument("--heads", type=int, default=4)
        parser.add_argument("--context", type=int, default=256)
        parser.add_argument("--bias", action="store_true")
        parser.add_argument("--generator", choices=("nanogpt", "kvcache"), default="nanogpt",
                            help="the transformer's generation: nanoGPT's generate (recompute) or a KV cache")
    return add


def load_arguments(parser):
    parser.add_argument("--corpus", required=True)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def report(figure, fields):
    """The one JSON line: which implementation, which figure, then `fields` in their order."""
    print(json.dumps({"impl": "pytorch", "figure": figure, **fields}), flush=True)


def speed_corpus(path):
    """The corpus file, or 200,000 seeded random tokens over 65 characters when there is none."""
    if os.path.exists(path):
        return load_corpus(path)
    generator = torch.Generator().manual_seed(5)
    return [chr(32 + i) for i in range(65)], torch.randint(0, 65, (200_000,), generator=generator)


def speed_model(args):
    """The seeded model and corpus both speed measurements start from, on `--threads` threads."""
    torch.manual_seed(1)
    torch.set_num_threads(args.threads)
    vocab, ids = speed_corpus(args.corpus)
    kind = args.arch or args.cell
    config = {"embed": args.embed, "hidden": args.hidden, "layers": args.layers, "heads": args.heads,
              "context": args.context, "bias": args.bias}
    return make_model(kind, len(vocab), config), vocab, ids


def shape_fields(args):
    """The JSON fields naming the model measured."""
    if args.arch == TRANSFORMER:
        return {"arch": TRANSFORMER, "embed": args.embed, "layers": args.layers, "heads": args.heads,
                "context": args.context}
    return {"cell": args.arch or args.cell, "hidden": args.hidden}


def train_speed(args):
    """Tokens per second of full training steps (batch, forward, loss, backward, clipping, Adam) after warm-up."""
    model, vocab, ids = speed_model(args)
    train_ids = ids[:int(0.9 * len(ids))]
    # The transformer: AdamW in nanoGPT's two groups (with weight decay 0 it costs what Adam costs).
    optimizer = (make_optimizer(model, 2e-3, 0.0) if args.arch == TRANSFORMER
                 else torch.optim.Adam(model.parameters(), lr=2e-3))

    def step():
        x, y = random_windows(train_ids, args.seq, args.batch)
        loss, _ = training_step(model, optimizer, x, y, clip=5.0)
        return loss.item()

    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        last = step()
    seconds = time.perf_counter() - start
    report("train", {**shape_fields(args), "seq": args.seq, "batch": args.batch,
                     "steps": args.steps, "seconds": seconds,
                     "tokens_per_s": args.steps * args.seq * args.batch / seconds, "last_loss": last,
                     "peak_rss_mb": peak_rss_mb(), "threads": torch.get_num_threads()})


@torch.no_grad()
def generate_speed(args):
    """Characters per second generated at batch 1 with temperature sampling, after a warm-up prompt."""
    model, _, ids = speed_model(args)
    model.eval()
    if args.arch == TRANSFORMER:
        return generate_transformer_speed(args, model, ids)

    def sample(logits):
        return int(torch.multinomial(torch.softmax(logits / 0.8, dim=-1), 1))

    def run(length):
        return continuation(model, ids[:args.warmup].reshape(1, -1), length, sample)

    run(10)
    start = time.perf_counter()
    out = run(args.length)
    seconds = time.perf_counter() - start
    report("generate", {**shape_fields(args), "characters": len(out), "seconds": seconds,
                        "chars_per_s": len(out) / seconds, "peak_rss_mb": peak_rss_mb(),
                        "threads": torch.get_num_threads()})


def generate_transformer_speed(args, model, ids):
    """Characters per second in windows of the context (one prompt character, the corpus's next, then C - 1
    generated, at temperature 0.8), until --length are made: nanoGPT's generate, or the KV-cache loop."""
    window = args.context - 1
    generate = model.generate if args.generator == "nanogpt" else lambda idx, n, temperature: generate_cached(
        model, idx, n, temperature)

    def run(length):
        made = windows = 0
        while made < length:
            count = min(window, length - made)
            generate(ids[windows % len(ids)].reshape(1, 1), count, temperature=0.8)
            made, windows = made + count, windows + 1
        return made, windows

    run(min(10, window))
    start = time.perf_counter()
    made, windows = run(args.length)
    seconds = time.perf_counter() - start
    report("generate", {**shape_fields(args), "generator": args.generator, "characters": made, "windows": windows,
                        "seconds": seconds, "chars_per_s": made / seconds, "peak_rss_mb": peak_rss_mb(),
                        "threads": torch.get_num_threads()})


def load_speed(args):
    """Load and tokenise time of a corpus file as the reference does it (the same steps as `train`)."""
    start = time.perf_counter()
    vocab, ids = load_corpus(args.corpus)
    seconds = time.perf_counter() - start
    report("load", {"characters": len(ids), "seconds": seconds, "held_bytes_per_char": ids.element_size(),
                    "peak_rss_mb": peak_rss_mb(), "vocabulary": len(vocab)})
