"""charlm's training protocol in PyTorch, the pieces every command that trains or validates shares: windows of
token ids as batches, one training step, the learning-rate schedule, AdamW's parameter groups, the ranges charlm
allows its settings, and the validation loss. The `train` command's run (start, loop, hand-over, save) is in
commands/train.py."""
import math

import torch
import torch.nn as nn

from .errors import CommandError
from .models import family, sequence_logits
from .settings import CELLS, TRANSFORMER, problem, training_problem


def windows(ids, starts, seq):
    """The (B, T) inputs and (B, T) targets (each input's next token) of the windows of T = `seq` token ids that
    begin at `starts` (B,)."""
    positions = starts[:, None] + torch.arange(seq)[None, :]
    return ids[positions], ids[positions + 1]


def random_windows(ids, seq, count):
    """`count` windows (inputs, targets) at uniformly random offsets in `ids`, drawn from torch's global generator."""
    return windows(ids, torch.randint(0, len(ids) - seq, (count,)), seq)


def training_step(model, optimizer, x, y, clip=None):
    """One step on the batch `x` -> `y`: mean cross-entropy over every position, backward, the gradient norm clipped
    to `clip` (None: not clipped), the optimizer's update. Returns the loss and the norm before clipping (or None)."""
    if family(model) == TRANSFORMER:
        _, loss = model(x, y)  # nanoGPT's forward: the logits and their mean cross-entropy
    else:
        logits = sequence_logits(model, x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = None if clip is None else nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return loss, norm


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


def decayed(name, parameter):
    """Whether AdamW's weight decay applies to the parameter `name`, as charlm's tables flag it. The transformer
    (TransformerLayout) decays as nanoGPT's configure_optimizers groups: every tensor of two or more dimensions, the
    embeddings included (the tied head is one parameter, decayed once), no bias or LayerNorm weight. The recurrent
    family (RecurrentLayout) decays its weight matrices: every <cell>.weight_ih_l{k} / weight_hh_l{k} (lstm, gru or
    rnn) and fc.weight; not biases, and not the embedding, which is a row lookup (where nanoGPT's rule would decay
    it)."""
    if name.startswith("transformer.") or name == "lm_head.weight":
        return parameter.dim() >= 2
    cell, _, rest = name.partition(".")
    return (cell in CELLS and rest.startswith("weight_")) or name == "fc.weight"


def make_optimizer(model, lr, weight_decay, betas=(0.9, 0.999), eps=1e-8):
    """torch.optim.AdamW with two groups (decayed, the rest not; see decayed); with weight_decay 0 it is Adam
    exactly."""
    named = list(model.named_parameters())
    groups = [{"params": [p for n, p in named if decayed(n, p)], "weight_decay": weight_decay},
              {"params": [p for n, p in named if not decayed(n, p)], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)


def check_settings(settings, source):
    """The ranges charlm's settings declare (settings.py), so a run charlm would refuse is refused here; `source`
    says where the settings came from."""
    found = training_problem(settings) or problem("val", settings["val_fraction"])
    if found:
        raise CommandError(f"{source}: {found}")


@torch.no_grad()
def evaluate(model, val, seq, batch, device):
    """Mean cross-entropy over floor((n-1)/T) non-overlapping windows, zero state each (the transformer: each
    window on its own, positions from 0)."""
    model.eval()
    count = (len(val) - 1) // seq
    total = 0.0
    for first in range(0, count, batch):
        starts = torch.arange(first, first + min(batch, count - first)) * seq
        x, y = (t.to(device) for t in windows(val, starts, seq))
        logits = sequence_logits(model, x)
        total += nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
    model.train()
    return total / (count * seq)
