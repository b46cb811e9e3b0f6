#!/usr/bin/env python3
"""The reference design in PyTorch: Embedding -> nn.LSTM(batch_first=True) -> Linear, cross-entropy, Adam.

A tool for side-by-side checks with charlm; never a dependency of the Swift build or of `swift test`.

  python3 scripts/torch_reference.py train --corpus FILE [--steps 1000] [--eval-every 250] [--seed 1337]
        [--embed 64] [--hidden 256] [--layers 2] [--dropout 0] [--seq 100] [--batch 64] [--lr 2e-3] [--clip 5]
        [--device cpu|cuda] [--threads N]

Training follows charlm's protocol: batches of B windows at uniformly random offsets in the first 90% of the
corpus, every position a target; validation on the last 10% in non-overlapping windows of T inputs, zero state each.
Text is used raw (no lowercasing, no ASCII folding).
"""
import argparse
import math
import sys
import time

import torch
import torch.nn as nn


class CharLSTM(nn.Module):
    """Same tensor names as charlm: embedding.weight, lstm.weight_ih_l{k}, ..., fc.weight, fc.bias."""

    def __init__(self, vocab, embed, hidden, layers, dropout=0.0):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.fc = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        out, state = self.lstm(self.embedding(x), state)
        return self.fc(out), state


def load_corpus(path):
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    return vocab, ids


@torch.no_grad()
def evaluate(model, val, seq, batch, device):
    """Mean cross-entropy over floor((n-1)/T) non-overlapping windows, zero state each."""
    model.eval()
    windows = (len(val) - 1) // seq
    total = 0.0
    for first in range(0, windows, batch):
        count = min(batch, windows - first)
        starts = torch.arange(first, first + count) * seq
        offsets = torch.arange(seq)
        x = val[starts[:, None] + offsets[None, :]].to(device)
        y = val[starts[:, None] + offsets[None, :] + 1].to(device)
        logits, _ = model(x)
        total += nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
    model.train()
    return total / (windows * seq)


def train(args):
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    vocab, ids = load_corpus(args.corpus)
    split = int(0.9 * len(ids))
    train_ids, val_ids = ids[:split], ids[split:]
    model = CharLSTM(len(vocab), args.embed, args.hidden, args.layers, args.dropout).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    print(f"corpus {args.corpus}: {len(ids)} characters, V {len(vocab)}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {device}")
    print("step  train_loss  val_loss  val_bpc  elapsed_s  train_tokens_per_s")
    offsets = torch.arange(args.seq)
    training_seconds = 0.0
    recent, recent_count = 0.0, 0
    start = time.time()
    for step in range(1, args.steps + 1):
        step_start = time.time()
        starts = torch.randint(0, len(train_ids) - args.seq, (args.batch,))
        x = train_ids[starts[:, None] + offsets[None, :]].to(device)
        y = train_ids[starts[:, None] + offsets[None, :] + 1].to(device)
        logits, _ = model(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, len(vocab)), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        recent += loss.item()
        recent_count += 1
        training_seconds += time.time() - step_start
        if step % args.eval_every == 0 or step == args.steps:
            val = evaluate(model, val_ids, args.seq, args.batch, device)
            rate = step * args.seq * args.batch / training_seconds
            print(f"{step:4d}  {recent / recent_count:10.4f}  {val:8.4f}  {val / math.log(2):7.4f}  "
                  f"{time.time() - start:9.1f}  {rate:18.0f}", flush=True)
            recent, recent_count = 0.0, 0


def fixture_training(args):
    """Writes a JSON fixture: a small model's initial parameters (state_dict order, flattened), a run of training
    steps (each batch and the loss PyTorch computed before its update, with grad-norm clipping and Adam), and the
    final parameters. charlm's tests replay the same batches and must match."""
    import json
    torch.manual_seed(args.seed)
    text = "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.\n"
    vocab = sorted(set(text))
    ids = torch.tensor([vocab.index(c) for c in text])
    V, E, H, L, T, B = len(vocab), 8, 16, 2, 10, 4
    model = CharLSTM(V, E, H, L)
    flat = lambda: [float(v) for p in model.parameters() for v in p.detach().reshape(-1).tolist()]
    initial = flat()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps = []
    for _ in range(args.steps):
        starts = torch.randint(0, len(ids) - T, (B,))
        x = ids[starts[:, None] + torch.arange(T)[None, :]]
        y = ids[starts[:, None] + torch.arange(T)[None, :] + 1]
        logits, _ = model(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        steps.append({"inputs": x.tolist(), "targets": y.tolist(), "loss": loss.item(), "grad_norm": norm.item()})
    fixture = {"made_by": "scripts/torch_reference.py fixture-training, torch " + torch.__version__,
               "config": {"vocab": V, "embed": E, "hidden": H, "layers": L, "seq": T, "batch": B,
                          "lr": args.lr, "clip": args.clip},
               "initial_parameters": initial, "steps": steps, "final_parameters": flat()}
    with open(args.out, "w") as f:
        json.dump(fixture, f)
    print(f"wrote {args.out}: {len(steps)} steps, final loss {steps[-1]['loss']:.6f}")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    t = commands.add_parser("train", help="train on a text file and print the validation curve")
    t.add_argument("--corpus", required=True)
    t.add_argument("--steps", type=int, default=1000)
    t.add_argument("--eval-every", type=int, default=250)
    t.add_argument("--seed", type=int, default=1337)
    t.add_argument("--embed", type=int, default=64)
    t.add_argument("--hidden", type=int, default=256)
    t.add_argument("--layers", type=int, default=2)
    t.add_argument("--dropout", type=float, default=0.0)
    t.add_argument("--seq", type=int, default=100)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--clip", type=float, default=5.0)
    t.add_argument("--device", default="cpu")
    t.add_argument("--threads", type=int, default=0)
    f = commands.add_parser("fixture-training", help="write the JSON training fixture charlm's tests replay")
    f.add_argument("--out", required=True)
    f.add_argument("--steps", type=int, default=30)
    f.add_argument("--seed", type=int, default=7)
    f.add_argument("--lr", type=float, default=1e-2)
    f.add_argument("--clip", type=float, default=0.5)
    args = parser.parse_args(argv)
    if args.command == "train":
        train(args)
    elif args.command == "fixture-training":
        fixture_training(args)


if __name__ == "__main__":
    main(sys.argv[1:])
