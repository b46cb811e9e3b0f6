"""charlm's files (Checkpoint.swift): safetensors with PyTorch's state_dict names and JSON metadata. A model file holds
the model tensors with `vocab` and `config`; a full checkpoint adds Adam's moments as `optim.exp_avg.<name>` /
`optim.exp_avg_sq.<name>` and the `training`, `optimizer` (and passed-through `sampling`, `settings`, `corpus`)
metadata charlm resumes from. The config's "cell" names the cell (absent: the tensors' module, else lstm; see
models.with_cell).

Reading checks the file as charlm does (checkpoint_reading.py); this module writes files and makes a model from a
read one. safetensors is imported inside the functions that write, so commands that write no file run without it."""
import json

from .checkpoint_reading import OPTIMIZER_PREFIX, read_checkpoint
from .models import CharRNN, with_cell


def cpu_tensors(model):
    """The model's state_dict as contiguous float32 CPU tensors, as they are written."""
    return {name: tensor.detach().float().contiguous().cpu() for name, tensor in model.state_dict().items()}


def writer():
    """safetensors' writer, imported now: a command that will write a file asks first, so that a missing
    safetensors is said before the work rather than after it."""
    from safetensors.torch import save_file
    return save_file


def save_charlm(model, vocab, config, path):
    """Writes the minimal contract: state_dict tensors plus `vocab` and `config` metadata (with the model's cell)."""
    config = with_cell(config, model.cell)
    writer()(cpu_tensors(model), path, metadata={"vocab": json.dumps(vocab), "config": json.dumps(config)})


def load_charlm(path, device="cpu"):
    """Reads any charlm file (ours or charlm's), checked as charlm checks it, with the cell it names; optimizer state
    is checked and left out. Returns (model, vocab, config)."""
    checkpoint = read_checkpoint(path)
    config = checkpoint.config
    model = CharRNN(len(checkpoint.vocab), config["embed"], config["hidden"], config["layers"], cell=checkpoint.cell)
    model.load_state_dict(checkpoint.model)
    return model.to(device).eval(), checkpoint.vocab, config


def save_charlm_checkpoint(path, model, optimizer, vocab, config, training, optimizer_meta, passthrough):
    """A full charlm checkpoint (Checkpoint.swift): model tensors, `optim.exp_avg.*` / `optim.exp_avg_sq.*` from the
    optimizer's state, and the `training`, `optimizer` metadata charlm resumes from; `passthrough` (sampling,
    settings, corpus) is written as given. The config names the model's cell (see with_cell)."""
    save_file = writer()
    names = {p: n for n, p in model.named_parameters()}
    tensors = cpu_tensors(model)
    step = 0
    for p, state in optimizer.state.items():
        if "exp_avg" in state:
            for moment in ("exp_avg", "exp_avg_sq"):
                tensors[f"{OPTIMIZER_PREFIX}{moment}.{names[p]}"] = state[moment].detach().float().contiguous().cpu()
            step = int(float(state["step"]))
    config = with_cell(config, model.cell)
    metadata = {"format": "charlm", "format_version": "1", "vocab": json.dumps(vocab), "config": json.dumps(config)}
    if step > 0 and len(tensors) == 3 * len(names):
        kind = "adamw" if optimizer_meta.get("weight_decay") else "adam"
        metadata["optimizer"] = json.dumps(dict(optimizer_meta, type=kind, step=step))
    else:
        tensors = {n: t for n, t in tensors.items() if not n.startswith(OPTIMIZER_PREFIX)}
    metadata["training"] = json.dumps(training)
    for key, value in passthrough.items():
        if value is not None:
            metadata[key] = json.dumps(value)
    save_file(tensors, path, metadata=metadata)
