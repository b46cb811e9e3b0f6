#!/usr/bin/env python3
"""The reference design in PyTorch: Embedding -> recurrent cell (batch_first=True) -> Linear, cross-entropy, Adam.

The cell is nn.LSTM (`lstm`, the default), nn.GRU (`gru`: gates r, z, n; b_hn inside the reset product) or nn.RNN
with tanh (`rnn`); its tensors are named after it: lstm.weight_ih_l0, gru.weight_ih_l0 or rnn.weight_ih_l0, ...
Commands that make a model take `--cell lstm|gru|rnn`; commands that read a file take the cell from its config
("cell"; absent: lstm).

A tool for side-by-side checks with charlm; never a dependency of the Swift build or of `swift test`.

  train     python3 scripts/torch_reference.py train --corpus FILE [--steps 1000] [--seconds S] [--wall-seconds S]
                [--eval-every 250] [--cell lstm|gru|rnn]
                [--seed 1337] [--embed 64] [--hidden 256] [--layers 2] [--dropout 0] [--seq 100] [--batch 64]
                [--lr 2e-3] [--clip 5] [--warmup 0] [--decay 0] [--wd 0] [--lowercase] [--ascii]
                [--device cpu|cuda] [--threads N] [--init-from FILE] [--save FILE]
            --init-from continues a charlm checkpoint: its weights, Adam's moments and step count, the step, the
            learning-rate schedule, cell, dropout, normalisation and histories (the command line's cell, sizes, lr,
            clip, schedule and normalisation are then ignored; --steps counts the steps added). --save writes a
            checkpoint charlm resumes with the optimizer (it carries the same).
            Several GPUs (or CPU processes): torchrun --nproc_per_node=N scripts/torch_reference.py train ...
            (DistributedDataParallel; --batch is the global batch, split evenly between the processes, so a step
            means what it means in charlm; each process draws its own windows; rank 0 validates and saves).
  logits    python3 scripts/torch_reference.py logits --model FILE --prompt TEXT
            The logits after the prompt, as JSON. (logits, eval, generate: any cell, as the file's config says.)
  eval      python3 scripts/torch_reference.py eval --model FILE --corpus FILE [--seq 100]
            Validation loss of a charlm file (raw text, last 10%, the protocol below).
  generate  python3 scripts/torch_reference.py generate --model FILE --prompt TEXT [--length 200]
            Greedy (temperature 0) continuation.
  train-speed, generate-speed, load-speed
            The twins of `charlm-bench train-speed | generate-speed | load-speed` (same options; the first two also
            take --cell); each prints one JSON line. `scripts/bench` runs them side by side with charlm's.
  fixture-checkpoint, fixture-training
            The fixtures charlm's tests replay (Tests/CharLMTests/Fixtures), for any --cell.

Files are charlm checkpoints: safetensors with PyTorch's state_dict names and `vocab`/`config` metadata (config
"cell" names the cell; files without it, older ones included, are LSTMs, and an LSTM is written without it, as
before). Files that charlm saved also hold `optim.*` tensors (Adam's moments); `train --init-from` reads them, the
other commands skip them.

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


CELLS = ("lstm", "gru", "rnn")


class CharRNN(nn.Module):
    """Same tensor names as charlm: embedding.weight, <cell>.weight_ih_l{k}, <cell>.weight_hh_l{k},
    <cell>.bias_ih_l{k}, <cell>.bias_hh_l{k}, fc.weight, fc.bias, where <cell> is lstm, gru or rnn (the attribute
    holding nn.LSTM, nn.GRU or nn.RNN with tanh). The state is (h, c) for an LSTM and h for the others; forward
    passes it through as the cell gives it. PyTorch's default initialisation, drawn in this order: embedding, cell,
    fc."""

    def __init__(self, vocab, embed, hidden, layers, dropout=0.0, cell="lstm"):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}: use one of {', '.join(CELLS)}")
        self.cell = cell
        self.embedding = nn.Embedding(vocab, embed)
        dropout = dropout if layers > 1 else 0.0
        if cell == "lstm":
            self.lstm = nn.LSTM(embed, hidden, layers, batch_first=True, dropout=dropout)
        elif cell == "gru":
            self.gru = nn.GRU(embed, hidden, layers, batch_first=True, dropout=dropout)
        else:
            self.rnn = nn.RNN(embed, hidden, layers, nonlinearity="tanh", batch_first=True, dropout=dropout)
        self.fc = nn.Linear(hidden, vocab)

    @property
    def recurrent(self):
        return getattr(self, self.cell)

    def forward(self, x, state=None):
        out, state = self.recurrent(self.embedding(x), state)
        return self.fc(out), state


CharLSTM = CharRNN  # the former name


def cell_of(config, source="the file"):
    """The cell a charlm config names: its "cell", or lstm when absent (files written before cells existed)."""
    cell = config.get("cell", "lstm")
    if cell not in CELLS:
        raise SystemExit(f"{source}: config cell {cell!r} is not one of {', '.join(CELLS)}")
    return cell


def with_cell(config, cell):
    """`config` naming `cell`: "cell" is written for gru and rnn; an LSTM config keeps the form it had (no key unless
    it came with one), so LSTM files stay as they were and readers that predate cells still read them."""
    config = dict(config)
    if cell != "lstm" or "cell" in config:
        config["cell"] = cell
    return config


ASCII_FOLDS = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u2039": "'", "\u203a": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u2022": "*", "\u00b7": ".", "\u2028": "\n", "\u2029": "\n", "\u00c6": "AE", "\u00e6": "ae", "\u0152": "OE",
    "\u0153": "oe", "\u00d8": "O", "\u00f8": "o", "\u00df": "ss", "\u0141": "L", "\u0142": "l", "\u0110": "D",
    "\u0111": "d", "\u00d0": "D", "\u00f0": "d", "\u00de": "TH", "\u00fe": "th", "\u0131": "i",
}


def normalize(text, lowercase=False, ascii=False):
    """charlm's normalisation: line breaks, invisible format characters, then optional ASCII fold and lowercase."""
    import unicodedata
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for c in text:
        if ord(c) >= 128:
            if unicodedata.category(c) == "Cf":
                continue
            if ascii:
                c = ASCII_FOLDS.get(c) or "".join(d for d in unicodedata.normalize("NFKD", c) if ord(d) < 128)
        out.append(c.lower() if lowercase else c)
    return "".join(out)


def load_corpus(path, lowercase=False, ascii=False):
    with open(path, "rb") as f:
        text = normalize(f.read().decode("utf-8", errors="replace"), lowercase, ascii)
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


def save_charlm(model, vocab, config, path):
    """Writes the minimal contract: state_dict tensors plus `vocab` and `config` metadata (with the model's cell)."""
    import json
    from safetensors.torch import save_file
    state = {name: tensor.detach().float().contiguous().cpu() for name, tensor in model.state_dict().items()}
    config = with_cell(config, model.cell)
    save_file(state, path, metadata={"vocab": json.dumps(vocab), "config": json.dumps(config)})


def check_tensor_names(model, names, path):
    """Refuses a file whose model tensors are not the ones `model` (built from the file's config) has."""
    expected = set(model.state_dict())
    if set(names) != expected:
        missing, extra = sorted(expected - set(names)), sorted(set(names) - expected)
        raise SystemExit(f"'{path}' does not hold the tensors of its config's {model.cell} model"
                         + (f"; missing {', '.join(missing[:4])}" if missing else "")
                         + (f"; unexpected {', '.join(extra[:4])}" if extra else "")
                         + " (the config's \"cell\" names the cell: absent means lstm)")


def load_charlm(path, device="cpu"):
    """Reads any charlm file (ours or charlm's), skipping optimizer state, with the cell its config names.
    Returns (model, vocab, config)."""
    import json
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
        state = {name: f.get_tensor(name).float() for name in f.keys() if not name.startswith("optim.")}
    vocab = json.loads(metadata["vocab"])
    config = json.loads(metadata["config"])
    model = CharRNN(len(vocab), config["embed"], config["hidden"], config["layers"], cell=cell_of(config, path))
    check_tensor_names(model, state, path)
    model.load_state_dict(state)
    return model.to(device).eval(), vocab, config


def encode(text, vocab, config):
    index = {c: i for i, c in enumerate(vocab)}
    text = normalize(text, config.get("lowercase", False), config.get("ascii", False))
    return [index[c] for c in text if c in index]


@torch.no_grad()
def logits_after(model, ids):
    logits, _ = model(torch.tensor([ids]))
    return logits[0, -1]


@torch.no_grad()
def greedy(model, ids, length):
    logits, state = model(torch.tensor([ids]))
    out = []
    for _ in range(length):
        token = int(torch.argmax(logits[0, -1]))
        out.append(token)
        logits, state = model(torch.tensor([[token]]), state)
    return out


def learning_rate(settings, step):
    """charlm's schedule (Trainer.swift, TrainingSettings.learningRate): linear warm-up over `warmup` steps, then a
    cosine from lr down to lr/10 at step `decay`, then lr/10; constant without them. `step` 1 is the first."""
    lr, warmup, decay = settings["lr"], settings["warmup"], settings["decay"]
    if step <= warmup:
        return lr * step / warmup
    if decay <= warmup:
        return lr
    minimum = lr / 10
    progress = min(1.0, (step - warmup) / (decay - warmup))
    return minimum + 0.5 * (1 + math.cos(math.pi * progress)) * (lr - minimum)


def decayed(name):
    """AdamW's weight decay applies to the weight matrices only (charlm's ParameterLayout.decayedRanges): every
    <cell>.weight_ih_l{k} / weight_hh_l{k} (lstm, gru or rnn) and fc.weight; not biases, not the embedding
    (nanoGPT's convention)."""
    cell, _, rest = name.partition(".")
    return (cell in CELLS and rest.startswith("weight_")) or name == "fc.weight"


def make_optimizer(model, lr, weight_decay, betas=(0.9, 0.999), eps=1e-8):
    """torch.optim.AdamW with two groups (weights decayed, the rest not); with weight_decay 0 it is Adam exactly."""
    named = list(model.named_parameters())
    groups = [{"params": [p for n, p in named if decayed(n)], "weight_decay": weight_decay},
              {"params": [p for n, p in named if not decayed(n)], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)


def fnv1a64(ids):
    """charlm's corpus fingerprint (Corpus.fingerprint): FNV-1a 64 over each token index as two little-endian bytes."""
    h = 0xCBF29CE484222325
    for token in ids.tolist():
        for byte in (token & 0xFF, token >> 8):
            h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def read_charlm_checkpoint(path):
    """Everything a charlm checkpoint holds: model tensors, Adam's moments (by tensor name) and the metadata."""
    import json
    from safetensors import safe_open
    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name).float() for name in f.keys()}
    except FileNotFoundError:
        raise SystemExit(f"no such file '{path}': check the path")
    except Exception as error:  # safetensors' own errors: not a checkpoint, damaged
        raise SystemExit(f"'{path}' is not a usable charlm checkpoint: {error}")
    model = {n: t for n, t in tensors.items() if not n.startswith("optim.")}
    exp_avg = {n[len("optim.exp_avg."):]: t for n, t in tensors.items() if n.startswith("optim.exp_avg.")}
    exp_avg_sq = {n[len("optim.exp_avg_sq."):]: t for n, t in tensors.items() if n.startswith("optim.exp_avg_sq.")}
    try:
        meta = {k: json.loads(v) if k in ("vocab", "config", "training", "optimizer", "sampling", "corpus", "settings")
                else v for k, v in metadata.items()}
    except ValueError as error:
        raise SystemExit(f"'{path}' is not a usable charlm checkpoint: its metadata is not JSON ({error})")
    if "vocab" not in meta or "config" not in meta:
        raise SystemExit(f"'{path}' is not a charlm checkpoint: it has no `vocab` and `config` metadata")
    if not isinstance(meta["config"], dict):
        raise SystemExit(f"'{path}' is not a usable charlm checkpoint: its config is not a JSON object")
    cell_of(meta["config"], path)
    names = set(model)
    if exp_avg and (set(exp_avg) != names or set(exp_avg_sq) != names):
        raise SystemExit(f"'{path}' is not a usable charlm checkpoint: its optimizer tensors do not cover every model tensor")
    return model, exp_avg, exp_avg_sq, meta


def check_settings(settings, source):
    """The ranges charlm's settings declare (SettingDeclarations.swift), so a file it would refuse is refused here."""
    def number(key, low, high, low_open=False):
        value = settings[key]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                or value < low or value > high or (low_open and value == low):
            raise SystemExit(f"{source}: {key} must be a number from {low} to {high}; got {value!r}")
    number("lr", 0, 1, low_open=True)
    number("clip", 0, 1e6)
    number("weight_decay", 0, 10)
    number("val_fraction", 0, 0.999999)
    for key, high in (("seq", 10000), ("batch", 4096), ("warmup", 10000000), ("decay", 10000000)):
        if not isinstance(settings[key], int) or isinstance(settings[key], bool) or not 0 <= settings[key] <= high:
            raise SystemExit(f"{source}: {key} must be a whole number from 0 to {high}; got {settings[key]!r}")
    if settings["lr"] * settings["weight_decay"] >= 1:
        raise SystemExit(f"{source}: lr x weight decay must be below 1 (each step multiplies the weights by 1 - lr x wd)")


def save_charlm_checkpoint(path, model, optimizer, vocab, config, training, optimizer_meta, passthrough):
    """A full charlm checkpoint (Checkpoint.swift): model tensors, `optim.exp_avg.*` / `optim.exp_avg_sq.*` from the
    optimizer's state, and the `training`, `optimizer` metadata charlm resumes from; `passthrough` (sampling,
    settings, corpus) is written as given. The config names the model's cell (see with_cell)."""
    import json
    from safetensors.torch import save_file
    names = {p: n for n, p in model.named_parameters()}
    tensors = {n: t.detach().float().contiguous().cpu() for n, t in model.state_dict().items()}
    step = 0
    for p, state in optimizer.state.items():
        if "exp_avg" in state:
            tensors["optim.exp_avg." + names[p]] = state["exp_avg"].detach().float().contiguous().cpu()
            tensors["optim.exp_avg_sq." + names[p]] = state["exp_avg_sq"].detach().float().contiguous().cpu()
            step = int(float(state["step"]))
    config = with_cell(config, model.cell)
    metadata = {"format": "charlm", "format_version": "1", "vocab": json.dumps(vocab), "config": json.dumps(config)}
    if step > 0 and len(tensors) == 3 * len(names):
        metadata["optimizer"] = json.dumps(dict(optimizer_meta, type="adamw" if optimizer_meta.get("weight_decay") else "adam",
                                                step=step))
    else:
        tensors = {n: t for n, t in tensors.items() if not n.startswith("optim.")}
    metadata["training"] = json.dumps(training)
    for key, value in passthrough.items():
        if value is not None:
            metadata[key] = json.dumps(value)
    save_file(tensors, path, metadata=metadata)


def train(args):
    import os
    import random
    distributed = "LOCAL_RANK" in os.environ
    rank, world = 0, 1
    if distributed:
        import torch.distributed as dist
        backend = "nccl" if args.device == "cuda" else "gloo"
        dist.init_process_group(backend)
        rank, world = dist.get_rank(), dist.get_world_size()
        if args.device == "cuda":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if args.device == "cuda" else args.device)

    # What the run starts from: a charlm checkpoint, or the command line.
    start_step, optim_meta, passthrough = 0, {}, {}
    loss_history, validation_history = [], []
    if args.init_from:
        state, exp_avg, exp_avg_sq, meta = read_charlm_checkpoint(args.init_from)
        config, vocab = meta["config"], meta["vocab"]
        cell = cell_of(config, args.init_from)
        if args.cell is not None and args.cell != cell and rank == 0:
            print(f"note: {args.init_from} is a {cell} model: --cell {args.cell} is ignored")
        saved = meta.get("training")
        if saved is None:
            # A model only (a PyTorch export, say): its weights, with the command line's training settings and a
            # fresh optimizer from step 0.
            saved = {"seq": args.seq, "batch": args.batch, "lr": args.lr, "clip": args.clip, "warmup": args.warmup,
                     "decay": args.decay, "weight_decay": args.wd, "step": 0}
            exp_avg = {}
            print(f"note: {args.init_from} holds a model only: training starts from its weights at step 0 with a "
                  "fresh optimizer and the command line's settings")
        try:
            settings = {"seq": saved["seq"], "batch": saved["batch"], "lr": saved["lr"], "clip": saved["clip"],
                        "warmup": saved.get("warmup", 0), "decay": saved.get("decay", 0),
                        "weight_decay": saved.get("weight_decay", 0.0), "val_fraction": saved.get("val_fraction", 0.1)}
            start_step = int(saved["step"])
        except (KeyError, TypeError, ValueError) as error:
            raise SystemExit(f"'{args.init_from}' is not a usable charlm checkpoint: its training metadata lacks {error}")
        check_settings(settings, args.init_from)
        loss_history, validation_history = list(saved.get("loss_history", [])), list(saved.get("validation_history", []))
        optim_meta = meta.get("optimizer") or {}
        passthrough = {k: meta.get(k) for k in ("sampling", "settings", "corpus")}
    else:
        cell = args.cell or "lstm"
        config = with_cell({"embed": args.embed, "hidden": args.hidden, "layers": args.layers,
                            "lowercase": args.lowercase, "ascii": args.ascii, "dropout": args.dropout}, cell)
        settings = {"seq": args.seq, "batch": args.batch, "lr": args.lr, "clip": args.clip, "warmup": args.warmup,
                    "decay": args.decay, "weight_decay": args.wd, "val_fraction": 0.1}
        check_settings(settings, "the command line")
        vocab = None
    if args.save and os.path.isdir(args.save):
        raise SystemExit(f"--save '{args.save}' is a directory: name a file")
    vocab_read, ids = load_corpus(args.corpus, config.get("lowercase", False), config.get("ascii", False))
    if vocab is None:
        vocab = vocab_read
    elif vocab_read != vocab:
        raise SystemExit(f"{args.corpus} does not have the characters of {args.init_from}: use the text it was trained on")
    config["vocab_size"] = len(vocab)
    split = int(len(ids) * (1.0 - settings["val_fraction"]))
    train_ids, val_ids = ids[:split], ids[split:]
    seq, batch = settings["seq"], settings["batch"]
    if batch % world:
        where = (f"the checkpoint's batch ({args.init_from}; `set batch` in charlm and save again)" if args.init_from
                 else "--batch")
        raise SystemExit(f"the batch {batch} does not split evenly between {world} processes: change {where} "
                         "or --nproc_per_node")
    local_batch = batch // world

    torch.manual_seed(args.seed)  # the same initial model in every process
    model = CharRNN(len(vocab), config["embed"], config["hidden"], config["layers"], config.get("dropout", 0.0),
                    cell=cell).to(device)
    optimizer = make_optimizer(model, settings["lr"], settings["weight_decay"],
                               (optim_meta.get("beta1", 0.9), optim_meta.get("beta2", 0.999)), optim_meta.get("eps", 1e-8))
    if args.init_from:
        check_tensor_names(model, state, args.init_from)
        model.load_state_dict(state)
        # Adam's moments and step count, tensor by tensor, into the optimizer's own state.
        if optim_meta and exp_avg:
            for name, p in model.named_parameters():
                optimizer.state[p] = {"step": torch.tensor(float(optim_meta["step"])),
                                      "exp_avg": exp_avg[name].to(device).clone(),
                                      "exp_avg_sq": exp_avg_sq[name].to(device).clone()}
        elif rank == 0:
            print(f"note: {args.init_from} holds no optimizer state: Adam starts afresh")
    core = model
    if distributed:
        from torch.nn.parallel import DistributedDataParallel
        model = DistributedDataParallel(model)
    # Each process draws its own windows and dropout masks; a continued run does not redraw a fresh run's.
    torch.manual_seed(args.seed + rank + 7919 * start_step)
    if rank == 0:
        print(f"corpus {args.corpus}: {len(ids)} characters, V {len(vocab)}, {cell}; torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, device {device}" + (f", {world} processes" if distributed else "")
              + (f"; from {args.init_from} at step {start_step}" if args.init_from else ""))
        print("step  train_loss  val_loss  val_bpc  elapsed_s  train_tokens_per_s")
    offsets = torch.arange(seq)
    training_seconds = 0.0
    recent, recent_count = 0.0, 0
    start = time.time()
    step = start_step
    rate = optim_meta.get("lr", settings["lr"])  # the learning rate of the latest step, as charlm's optimizer keeps it
    for done in range(1, args.steps + 1):
        step = start_step + done
        step_start = time.time()
        rate = learning_rate(settings, step)
        for group in optimizer.param_groups:
            group["lr"] = rate
        starts = torch.randint(0, len(train_ids) - seq, (local_batch,))
        x = train_ids[starts[:, None] + offsets[None, :]].to(device)
        y = train_ids[starts[:, None] + offsets[None, :] + 1].to(device)
        logits, _ = model(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, len(vocab)), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if settings["clip"] > 0:
            nn.utils.clip_grad_norm_(model.parameters(), settings["clip"])
        optimizer.step()
        mean_loss = loss.detach()
        if distributed:
            dist.all_reduce(mean_loss)
            mean_loss /= world
        loss_history.append(mean_loss.item())
        recent += loss_history[-1]
        recent_count += 1
        training_seconds += time.time() - step_start
        # Rank 0's clock decides, so every process stops after the same step.
        out_of_time = torch.tensor(int(training_seconds >= args.seconds or time.time() - start >= args.wall_seconds))
        if distributed:
            dist.broadcast(out_of_time, 0)
        out_of_time = bool(out_of_time.item())
        if rank == 0 and (done % args.eval_every == 0 or done == args.steps or out_of_time):
            val = evaluate(core, val_ids, seq, batch, device)
            validation_history.append([step, val])
            tokens = done * seq * batch / training_seconds
            print(f"{step:4d}  {recent / recent_count:10.4f}  {val:8.4f}  {val / math.log(2):7.4f}  "
                  f"{time.time() - start:9.1f}  {tokens:18.0f}", flush=True)
            recent, recent_count = 0.0, 0
        if out_of_time:
            break
    if rank == 0 and args.save:
        generator = random.Random(args.seed * 1_000_003 + step)
        training = {"seq": seq, "batch": batch, "lr": settings["lr"], "clip": settings["clip"],
                    "warmup": settings["warmup"], "decay": settings["decay"], "weight_decay": settings["weight_decay"],
                    "val_fraction": settings["val_fraction"], "step": step,
                    "epoch": step * seq * batch / max(len(train_ids), 1),
                    # charlm's batch generator (four xoshiro words): a fresh state, so charlm draws new windows.
                    "generator": "".join(f"{generator.getrandbits(64) | 1:016x}" for _ in range(4)),
                    "loss_history": loss_history, "validation_history": validation_history}
        if passthrough.get("corpus") is None:
            import os.path
            passthrough["corpus"] = {"characters": len(ids), "fnv1a64": format(fnv1a64(ids), "x"),
                                     "name": os.path.basename(args.corpus)}
        optimizer_meta = {"lr": rate, "beta1": optimizer.param_groups[0]["betas"][0],
                          "beta2": optimizer.param_groups[0]["betas"][1], "eps": optimizer.param_groups[0]["eps"],
                          "weight_decay": settings["weight_decay"]}
        save_charlm_checkpoint(args.save, core, optimizer, vocab, config, training, optimizer_meta, passthrough)
        print(f"saved {args.save} at step {step}")
    if distributed:
        dist.barrier()  # rank 0 may still be saving: everyone leaves together
        dist.destroy_process_group()


def peak_rss_mb():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def speed_corpus(path):
    import os
    if os.path.exists(path):
        return load_corpus(path)
    generator = torch.Generator().manual_seed(5)
    return [chr(32 + i) for i in range(65)], torch.randint(0, 65, (200_000,), generator=generator)


def train_speed(args):
    """Tokens per second of full training steps (batch, forward, loss, backward, clipping, Adam) after warm-up."""
    import json
    torch.manual_seed(1)
    torch.set_num_threads(args.threads)
    vocab, ids = speed_corpus(args.corpus)
    train_ids = ids[:int(0.9 * len(ids))]
    model = CharRNN(len(vocab), args.embed, args.hidden, args.layers, cell=args.cell)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    offsets = torch.arange(args.seq)

    def step():
        starts = torch.randint(0, len(train_ids) - args.seq, (args.batch,))
        x = train_ids[starts[:, None] + offsets[None, :]]
        y = train_ids[starts[:, None] + offsets[None, :] + 1]
        logits, _ = model(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, len(vocab)), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        last = step()
    seconds = time.perf_counter() - start
    print(json.dumps({"impl": "pytorch", "figure": "train", "cell": args.cell, "hidden": args.hidden, "seq": args.seq,
                      "batch": args.batch,
                      "steps": args.steps, "seconds": seconds, "tokens_per_s": args.steps * args.seq * args.batch / seconds,
                      "last_loss": last, "peak_rss_mb": peak_rss_mb(), "threads": torch.get_num_threads()}), flush=True)


@torch.no_grad()
def generate_speed(args):
    """Characters per second generated at batch 1 with temperature sampling, after a warm-up prompt."""
    import json
    torch.manual_seed(1)
    torch.set_num_threads(args.threads)
    vocab, ids = speed_corpus(args.corpus)
    model = CharRNN(len(vocab), args.embed, args.hidden, args.layers, cell=args.cell).eval()

    def run(length):
        logits, state = model(ids[:args.warmup].reshape(1, -1))
        out = []
        for _ in range(length):
            probabilities = torch.softmax(logits[0, -1] / 0.8, dim=-1)
            token = int(torch.multinomial(probabilities, 1))
            out.append(token)
            logits, state = model(torch.tensor([[token]]), state)
        return out

    run(10)
    start = time.perf_counter()
    out = run(args.length)
    seconds = time.perf_counter() - start
    print(json.dumps({"impl": "pytorch", "figure": "generate", "cell": args.cell, "hidden": args.hidden,
                      "characters": len(out),
                      "seconds": seconds, "chars_per_s": len(out) / seconds, "peak_rss_mb": peak_rss_mb(),
                      "threads": torch.get_num_threads()}), flush=True)


def load_speed(args):
    """Load and tokenise time of a corpus file as the reference does it (the same steps as `train`)."""
    import json
    start = time.perf_counter()
    vocab, ids = load_corpus(args.corpus)
    seconds = time.perf_counter() - start
    print(json.dumps({"impl": "pytorch", "figure": "load", "characters": len(ids), "seconds": seconds,
                      "held_bytes_per_char": ids.element_size(), "peak_rss_mb": peak_rss_mb(),
                      "vocabulary": len(vocab)}), flush=True)


def made_by(command, args):
    """A fixture's "made_by": for the LSTM the words it always had (its fixtures regenerate byte for byte); for the
    other cells the exact command line that made it."""
    if args.cell == "lstm":
        return f"scripts/torch_reference.py {command}, torch " + torch.__version__
    import shlex
    return "python3 scripts/torch_reference.py " + shlex.join(args.argv) + ", torch " + torch.__version__


def fixture_checkpoint(args):
    """A tiny model trained briefly, saved as a charlm file, with the logits and greedy text PyTorch computes.
    Files: torch-tiny.safetensors and torch-tiny-expected.json for the LSTM, torch-<cell>-tiny... for the others."""
    import json, os
    torch.manual_seed(args.seed)
    text = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 4
    vocab = sorted(set(text))
    ids = torch.tensor([vocab.index(c) for c in text])
    model = CharRNN(len(vocab), 5, 7, 2, cell=args.cell)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        starts = torch.randint(0, len(ids) - 12, (4,))
        x = ids[starts[:, None] + torch.arange(12)[None, :]]
        y = ids[starts[:, None] + torch.arange(12)[None, :] + 1]
        logits, _ = model(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, len(vocab)), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    stem = "torch-tiny" if args.cell == "lstm" else f"torch-{args.cell}-tiny"
    path = os.path.join(args.out_dir, stem + ".safetensors")
    save_charlm(model, vocab, {"embed": 5, "hidden": 7, "layers": 2, "lowercase": False, "ascii": False}, path)
    prompt = "Whether 'tis"
    expected = {"made_by": made_by("fixture-checkpoint", args),
                "prompt": prompt, "logits": logits_after(model, encode(prompt, vocab, {})).tolist(),
                "greedy": "".join(vocab[i] for i in greedy(model, encode(prompt, vocab, {}), 40))}
    with open(os.path.join(args.out_dir, stem + "-expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(f"wrote {path} and {stem}-expected.json")


def fixture_training(args):
    """Writes a JSON fixture: a small model's initial parameters (state_dict order, flattened), a run of training
    steps (each batch and the loss PyTorch computed before its update, with grad-norm clipping and Adam, or AdamW
    with --wd), and the final parameters. charlm's tests replay the same batches and must match. For gru and rnn
    the cell is a top-level "cell" key (`config` stays all numbers); the LSTM fixture has none."""
    import json
    torch.manual_seed(args.seed)
    text = "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.\n"
    vocab = sorted(set(text))
    ids = torch.tensor([vocab.index(c) for c in text])
    V, E, H, L, T, B = len(vocab), 8, 16, 2, 10, 4
    model = CharRNN(V, E, H, L, cell=args.cell)
    flat = lambda: [float(v) for p in model.parameters() for v in p.detach().reshape(-1).tolist()]
    initial = flat()
    optimizer = make_optimizer(model, args.lr, args.wd) if args.wd else torch.optim.Adam(model.parameters(), lr=args.lr)
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
    fixture = {"made_by": made_by("fixture-training", args)}
    if args.cell != "lstm":
        fixture["cell"] = args.cell
    fixture.update({"config": {"vocab": V, "embed": E, "hidden": H, "layers": L, "seq": T, "batch": B,
                               "lr": args.lr, "clip": args.clip, "weight_decay": args.wd},
                    "initial_parameters": initial, "steps": steps, "final_parameters": flat()})
    with open(args.out, "w") as f:
        json.dump(fixture, f)
    clipped = sum(step["grad_norm"] > args.clip for step in steps)
    print(f"wrote {args.out}: {len(steps)} steps ({clipped} clipped at {args.clip:g}), "
          f"final loss {steps[-1]['loss']:.6f}")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    t = commands.add_parser("train", help="train on a text file and print the validation curve")
    t.add_argument("--corpus", required=True)
    t.add_argument("--steps", type=int, default=1000)
    t.add_argument("--eval-every", type=int, default=250)
    t.add_argument("--seconds", type=float, default=float("inf"), help="stop after this much training time")
    t.add_argument("--wall-seconds", type=float, default=float("inf"),
                   help="stop after this much wall-clock time, validations included (as charlm's `train 45m`)")
    t.add_argument("--cell", choices=CELLS, help="recurrent cell: lstm (default), gru (as nn.GRU) or rnn (nn.RNN, "
                   "tanh); with --init-from the checkpoint's")
    t.add_argument("--seed", type=int, default=1337)
    t.add_argument("--embed", type=int, default=64)
    t.add_argument("--hidden", type=int, default=256)
    t.add_argument("--layers", type=int, default=2)
    t.add_argument("--dropout", type=float, default=0.0)
    t.add_argument("--seq", type=int, default=100)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--clip", type=float, default=5.0)
    t.add_argument("--warmup", type=int, default=0, help="steps of linear learning-rate warm-up")
    t.add_argument("--decay", type=int, default=0, help="step at which a cosine decay reaches lr/10 (0: constant)")
    t.add_argument("--wd", type=float, default=0.0, help="AdamW weight decay on the weight matrices")
    t.add_argument("--init-from", help="continue a charlm checkpoint (weights, Adam, step, schedule, settings)")
    t.add_argument("--device", default="cpu")
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--lowercase", action="store_true")
    t.add_argument("--ascii", action="store_true")
    t.add_argument("--save", help="write a charlm checkpoint (with the optimizer) that charlm resumes")
    lg = commands.add_parser("logits", help="print the logits after a prompt as JSON")
    lg.add_argument("--model", required=True)
    lg.add_argument("--prompt", required=True)
    ev = commands.add_parser("eval", help="validation loss of a charlm file on a corpus")
    ev.add_argument("--model", required=True)
    ev.add_argument("--corpus", required=True)
    ev.add_argument("--seq", type=int, default=100)
    ev.add_argument("--batch", type=int, default=64)
    gn = commands.add_parser("generate", help="greedy continuation of a prompt")
    gn.add_argument("--model", required=True)
    gn.add_argument("--prompt", required=True)
    gn.add_argument("--length", type=int, default=200)
    fc = commands.add_parser("fixture-checkpoint", help="write charlm's tiny PyTorch model fixture (any --cell)")
    fc.add_argument("--out-dir", required=True)
    fc.add_argument("--cell", choices=CELLS, default="lstm",
                    help="lstm (default: torch-tiny.*), gru or rnn (torch-gru-tiny.*, torch-rnn-tiny.*)")
    fc.add_argument("--seed", type=int, default=11)
    for name in ("train-speed", "generate-speed"):
        sp = commands.add_parser(name, help="speed benchmark (one JSON line)")
        sp.add_argument("--cell", choices=CELLS, default="lstm", help="recurrent cell (default lstm)")
        sp.add_argument("--corpus", default="../shared/data/tinyshakespeare.txt")
        sp.add_argument("--embed", type=int, default=64)
        sp.add_argument("--hidden", type=int, default=256)
        sp.add_argument("--layers", type=int, default=2)
        sp.add_argument("--seq", type=int, default=100)
        sp.add_argument("--batch", type=int, default=64)
        sp.add_argument("--steps", type=int, default=20)
        sp.add_argument("--warmup", type=int, default=3 if name == "train-speed" else 50)
        sp.add_argument("--length", type=int, default=2000)
        sp.add_argument("--threads", type=int, default=2)
    ls = commands.add_parser("load-speed", help="corpus load benchmark (one JSON line)")
    ls.add_argument("--corpus", required=True)
    f = commands.add_parser("fixture-training",
                            help="write the JSON training fixture charlm's tests replay (any --cell)")
    f.add_argument("--out", required=True)
    f.add_argument("--cell", choices=CELLS, default="lstm", help="recurrent cell (default lstm)")
    f.add_argument("--steps", type=int, default=30)
    f.add_argument("--seed", type=int, default=7)
    f.add_argument("--lr", type=float, default=1e-2)
    f.add_argument("--clip", type=float, default=0.5)
    f.add_argument("--wd", type=float, default=0.0, help="AdamW weight decay on the weight matrices (0: Adam)")
    args = parser.parse_args(argv)
    args.argv = list(argv)
    if args.command == "train":
        train(args)
    elif args.command == "train-speed":
        train_speed(args)
    elif args.command == "generate-speed":
        generate_speed(args)
    elif args.command == "load-speed":
        load_speed(args)
    elif args.command == "fixture-training":
        fixture_training(args)
    elif args.command == "fixture-checkpoint":
        fixture_checkpoint(args)
    elif args.command == "logits":
        import json
        model, vocab, config = load_charlm(args.model)
        print(json.dumps({"prompt": args.prompt, "logits": logits_after(model, encode(args.prompt, vocab, config)).tolist()}))
    elif args.command == "eval":
        model, vocab, config = load_charlm(args.model)
        _, ids = load_corpus(args.corpus, config.get("lowercase", False), config.get("ascii", False))
        index = {c: i for i, c in enumerate(vocab)}
        with open(args.corpus, "rb") as f:
            text = normalize(f.read().decode("utf-8", errors="replace"), config.get("lowercase", False), config.get("ascii", False))
        ids = torch.tensor([index[c] for c in text])
        val = ids[int(0.9 * len(ids)):]
        loss = evaluate(model, val, args.seq, args.batch, "cpu")
        print(f"validation loss {loss:.4f} nats/char, {loss / math.log(2):.4f} bits/char, perplexity {math.exp(loss):.3f}")
    elif args.command == "generate":
        model, vocab, config = load_charlm(args.model)
        ids = encode(args.prompt, vocab, config)
        print(args.prompt + "".join(vocab[i] for i in greedy(model, ids, args.length)), end="")


if __name__ == "__main__":
    main(sys.argv[1:])
