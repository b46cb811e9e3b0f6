"""charlm's files (Checkpoint.swift): safetensors with PyTorch's state_dict names and JSON metadata. A model file holds
the model tensors with `vocab` and `config` (a transformer's: nanoGPT's GPT state_dict, the tied head under both its
names, and a config with "arch": "transformer"); a full checkpoint adds Adam's moments as `optim.exp_avg.<name>` /
`optim.exp_avg_sq.<name>` and the `training`, `optimizer` (and passed-through `sampling`, `settings`, `corpus`)
metadata charlm resumes from. The config's "cell" names the cell (absent: the tensors' module, else lstm; see
models.with_cell).

Reading checks the file as charlm does (checkpoint_reading.py); this module writes files and makes a model from a
read one. safetensors is imported inside the functions that write, so commands that write no file run without it."""
import json

from .checkpoint_reading import OPTIMIZER_PREFIX, TIED, read_checkpoint
from .models import family, make_model, with_cell
from .settings import TRANSFORMER


def cpu_tensors(model):
    """The model's state_dict as contiguous float32 CPU tensors, as they are written: each its own copy, as
    safetensors refuses tensors that share memory (nanoGPT's tied head is one tensor under two names)."""
    return {name: tensor.detach().float().cpu().clone() for name, tensor in model.state_dict().items()}


def writer():
    """safetensors' writer, imported now: a command that will write a file asks first, so that a missing
    safetensors is said before the work rather than after it."""
    from safetensors.torch import save_file
    return save_file


def family_config(config, model):
    """`config` as the file says the model's family: a recurrent model's cell (with_cell), or the transformer's
    arch."""
    if family(model) == TRANSFORMER:
        return dict(config, arch=TRANSFORMER)
    return with_cell(config, model.cell)


def with_aliases(tensors):
    """`tensors` (by state_dict name) with each tied tensor also under its aliases, as load_state_dict wants them."""
    tensors = dict(tensors)
    for name, aliases in TIED.items():
        if name in tensors:
            tensors.update({alias: tensors[name] for alias in aliases})
    return tensors


def save_charlm(model, vocab, config, path):
    """Writes the minimal contract: state_dict tensors plus `vocab` and `config` metadata (with the model's cell or
    arch)."""
    config = family_config(config, model)
    writer()(cpu_tensors(model), path, metadata={"vocab": json.dumps(vocab), "config": json.dumps(config)})


def load_charlm(path, device="cpu"):
    """Reads any charlm file (ours or charlm's), checked as charlm checks it, as the model its config names (a cell's
    CharRNN, or nanoGPT's GPT, loaded strictly); optimizer state is checked and left out. Returns (model, vocab,
    config)."""
    checkpoint = read_checkpoint(path)
    config = checkpoint.config
    model = make_model(checkpoint.cell, len(checkpoint.vocab), config)
    model.load_state_dict(with_aliases(checkpoint.model))
    return model.to(device).eval(), checkpoint.vocab, config


def save_charlm_checkpoint(path, model, optimizer, vocab, config, training, optimizer_meta, passthrough):
    """A full charlm checkpoint (Checkpoint.swift): model tensors, `optim.exp_avg.*` / `optim.exp_avg_sq.*` from the
    optimizer's state (a tied tensor's under each of its names, as charlm writes them), and the `training`,
    `optimizer` metadata charlm resumes from; `passthrough` (sampling, settings, corpus) is written as given. The
    config names the model's cell or arch (see family_config)."""
    save_file = writer()
    names = {p: n for n, p in model.named_parameters()}
    tensors = cpu_tensors(model)
    step, moments = 0, 0
    for p, state in optimizer.state.items():
        if "exp_avg" in state:
            for moment in ("exp_avg", "exp_avg_sq"):
                value = state[moment].detach().float().contiguous().cpu()
                tensors.update({f"{OPTIMIZER_PREFIX}{moment}.{name}": value.clone()
                                for name in with_aliases({names[p]: None})})
            moments += 1
            step = int(float(state["step"]))
    config = family_config(config, model)
    metadata = {"format": "charlm", "format_version": "1", "vocab": json.dumps(vocab), "config": json.dumps(config)}
    if step > 0 and moments == len(names):
        kind = "adamw" if optimizer_meta.get("weight_decay") else "adam"
        metadata["optimizer"] = json.dumps(dict(optimizer_meta, type=kind, step=step))
    else:
        tensors = {n: t for n, t in tensors.items() if not n.startswith(OPTIMIZER_PREFIX)}
    metadata["training"] = json.dumps(training)
    for key, value in passthrough.items():
        if value is not None:
            metadata[key] = json.dumps(value)
    save_file(tensors, path, metadata=metadata)
