"""The models: the recurrent one (Embedding -> recurrent cell (batch_first=True) -> Linear) with the tensor names
charlm uses, nanoGPT's GPT for the transformer (nanogpt.py), which of the two a config makes, and what either computes
(every position's logits from a fresh start, the last logits after a prompt, a continuation). Shapes: V vocabulary,
E embedding, H hidden, L layers, B batch, T steps. Training, files and text live in their own modules."""
import torch
import torch.nn as nn

from .nanogpt import GPT, GPTConfig
from .settings import CELLS, TRANSFORMER


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
        """(B, T) token ids and the cell's state (None: zero) -> (B, T, V) logits and the state after them."""
        out, state = self.recurrent(self.embedding(x), state)
        return self.fc(out), state


CharLSTM = CharRNN  # the former name


def make_model(cell, vocab_size, config):
    """The model of a config: nanoGPT's GPT when `cell` is "transformer" (its config's embed, layers, heads, context,
    bias, dropout as n_embd, n_layer, n_head, block_size, bias, dropout; nanoGPT's initialisation), else CharRNN of
    that cell (PyTorch's initialisation). Drawn from torch's global generator."""
    dropout = config.get("dropout", 0.0)
    if cell == TRANSFORMER:
        return GPT(GPTConfig(block_size=config["context"], vocab_size=vocab_size, n_layer=config["layers"],
                             n_head=config["heads"], n_embd=config["embed"], dropout=dropout, bias=config["bias"]))
    return CharRNN(vocab_size, config["embed"], config["hidden"], config["layers"], dropout, cell=cell)


def family(model):
    """"transformer" for nanoGPT's GPT, else the recurrent model's cell; a DistributedDataParallel wrapper is seen
    through."""
    core = getattr(model, "module", model)
    return TRANSFORMER if isinstance(core, GPT) else core.cell


def sequence_logits(model, x):
    """(B, T) token ids -> (B, T, V) logits of every position, from a zero state (the transformer: positions from 0)."""
    if family(model) == TRANSFORMER:
        # nanoGPT's forward gives every position's logits only when it is given targets (it then also computes a
        # loss, which is not used here).
        logits, _ = model(x, x)
        return logits
    logits, _ = model(x)
    return logits


def with_cell(config, cell):
    """`config` naming `cell`: "cell" is written for gru and rnn; an LSTM config keeps the form it had (no key unless
    it came with one), so LSTM files stay as they were and readers that predate cells still read them."""
    config = dict(config)
    if cell != "lstm" or "cell" in config:
        config["cell"] = cell
    return config


@torch.no_grad()
def logits_after(model, ids):
    """The (V,) logits after the token ids `ids`, from a zero state; the transformer sees the last `context` of
    them, as nanoGPT's generate crops."""
    if family(model) == TRANSFORMER:
        logits, _ = model(torch.tensor([ids[-model.config.block_size:]]))
        return logits[0, -1]
    logits, _ = model(torch.tensor([ids]))
    return logits[0, -1]


@torch.no_grad()
def continuation(model, prompt, length, pick):
    """`length` token ids after `prompt` ((1, T) token ids), each chosen by `pick` from the last (V,) logits and fed
    back in. The transformer recomputes its cropped context for every token, as nanoGPT's generate does."""
    if family(model) == TRANSFORMER:
        ids = prompt[0].tolist()
        out = []
        for _ in range(length):
            out.append(pick(logits_after(model, ids)))
            ids.append(out[-1])
        return out
    logits, state = model(prompt)
    out = []
    for _ in range(length):
        token = pick(logits[0, -1])
        out.append(token)
        logits, state = model(torch.tensor([[token]]), state)
    return out


def greedy(model, ids, length):
    """The temperature-0 continuation of the token ids `ids`: the most likely token each step."""
    return continuation(model, torch.tensor([ids]), length, lambda logits: int(torch.argmax(logits)))
