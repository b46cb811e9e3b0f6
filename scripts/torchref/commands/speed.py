"""The speed commands, twins of `charlm-bench train-speed | generate-speed | load-speed` (same options): each prints
one JSON line that `scripts/bench` sets beside charlm's. Timings start after a warm-up."""
import json
import os
import resource
import time

import torch

from ..models import CELLS, CharRNN, continuation
from ..text import load_corpus
from ..training import random_windows, training_step


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
    return CharRNN(len(vocab), args.embed, args.hidden, args.layers, cell=args.cell), vocab, ids


def train_speed(args):
    """Tokens per second of full training steps (batch, forward, loss, backward, clipping, Adam) after warm-up."""
    model, vocab, ids = speed_model(args)
    train_ids = ids[:int(0.9 * len(ids))]
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)

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
    report("train", {"cell": args.cell, "hidden": args.hidden, "seq": args.seq, "batch": args.batch,
                     "steps": args.steps, "seconds": seconds,
                     "tokens_per_s": args.steps * args.seq * args.batch / seconds, "last_loss": last,
                     "peak_rss_mb": peak_rss_mb(), "threads": torch.get_num_threads()})


@torch.no_grad()
def generate_speed(args):
    """Characters per second generated at batch 1 with temperature sampling, after a warm-up prompt."""
    model, _, ids = speed_model(args)
    model.eval()

    def sample(logits):
        return int(torch.multinomial(torch.softmax(logits / 0.8, dim=-1), 1))

    def run(length):
        return continuation(model, ids[:args.warmup].reshape(1, -1), length, sample)

    run(10)
    start = time.perf_counter()
    out = run(args.length)
    seconds = time.perf_counter() - start
    report("generate", {"cell": args.cell, "hidden": args.hidden, "characters": len(out), "seconds": seconds,
                        "chars_per_s": len(out) / seconds, "peak_rss_mb": peak_rss_mb(),
                        "threads": torch.get_num_threads()})


def load_speed(args):
    """Load and tokenise time of a corpus file as the reference does it (the same steps as `train`)."""
    start = time.perf_counter()
    vocab, ids = load_corpus(args.corpus)
    seconds = time.perf_counter() - start
    report("load", {"characters": len(ids), "seconds": seconds, "held_bytes_per_char": ids.element_size(),
                    "peak_rss_mb": peak_rss_mb(), "vocabulary": len(vocab)})
