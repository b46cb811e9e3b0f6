"""charlm's files (Checkpoint.swift): safetensors with PyTorch's state_dict names and JSON metadata. A model file holds
the model tensors with `vocab` and `config`; a full checkpoint adds Adam's moments as `optim.exp_avg.<name>` /
`optim.exp_avg_sq.<name>` and the `training`, `optimizer` (and passed-through `sampling`, `settings`, `corpus`)
metadata charlm resumes from. The config's "cell" names the cell (absent: lstm; see models.with_cell).

safetensors is imported inside the functions that need it, so commands that write no file run without it."""
import json

from .models import CharRNN, cell_of, with_cell


OPTIMIZER_PREFIX = "optim."
JSON_METADATA = ("vocab", "config", "training", "optimizer", "sampling", "corpus", "settings")


def cpu_tensors(model):
    """The model's state_dict as contiguous float32 CPU tensors, as they are written."""
    return {name: tensor.detach().float().contiguous().cpu() for name, tensor in model.state_dict().items()}


def read_tensors(path, optimizer=True):
    """A file's metadata (None when it has none) and its tensors as float32, `optim.*` ones only with `optimizer`."""
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
        tensors = {name: f.get_tensor(name).float() for name in f.keys()
                   if optimizer or not name.startswith(OPTIMIZER_PREFIX)}
    return metadata, tensors


def save_charlm(model, vocab, config, path):
    """Writes the minimal contract: state_dict tensors plus `vocab` and `config` metadata (with the model's cell)."""
    from safetensors.torch import save_file
    config = with_cell(config, model.cell)
    save_file(cpu_tensors(model), path, metadata={"vocab": json.dumps(vocab), "config": json.dumps(config)})


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
    metadata, state = read_tensors(path, optimizer=False)
    vocab = json.loads(metadata["vocab"])
    config = json.loads(metadata["config"])
    model = CharRNN(len(vocab), config["embed"], config["hidden"], config["layers"], cell=cell_of(config, path))
    check_tensor_names(model, state, path)
    model.load_state_dict(state)
    return model.to(device).eval(), vocab, config


def read_charlm_checkpoint(path):
    """Everything a charlm checkpoint holds: model tensors, Adam's moments (by tensor name) and the metadata, each
    checked; a file that is missing or unusable ends the program with a message saying why."""
    try:
        metadata, tensors = read_tensors(path)
    except FileNotFoundError:
        raise SystemExit(f"no such file '{path}': check the path")
    except Exception as error:  # safetensors' own errors: not a checkpoint, damaged
        raise SystemExit(f"'{path}' is not a usable charlm checkpoint: {error}")
    model = {n: t for n, t in tensors.items() if not n.startswith(OPTIMIZER_PREFIX)}
    exp_avg = optimizer_tensors(tensors, "exp_avg")
    exp_avg_sq = optimizer_tensors(tensors, "exp_avg_sq")
    try:
        meta = {k: json.loads(v) if k in JSON_METADATA else v for k, v in (metadata or {}).items()}
    except ValueError as error:
        raise SystemExit(f"'{path}' is not a usable charlm checkpoint: its metadata is not JSON ({error})")
    if "vocab" not in meta or "config" not in meta:
        raise SystemExit(f"'{path}' is not a charlm checkpoint: it has no `vocab` and `config` metadata")
    if not isinstance(meta["config"], dict):
        raise SystemExit(f"'{path}' is not a usable charlm checkpoint: its config is not a JSON object")
    cell_of(meta["config"], path)
    names = set(model)
    if exp_avg and (set(exp_avg) != names or set(exp_avg_sq) != names):
        raise SystemExit(f"'{path}' is not a usable charlm checkpoint: "
                         "its optimizer tensors do not cover every model tensor")
    return model, exp_avg, exp_avg_sq, meta


def optimizer_tensors(tensors, moment):
    """One of Adam's moments (`exp_avg` or `exp_avg_sq`) from a file's tensors, by model tensor name."""
    prefix = f"{OPTIMIZER_PREFIX}{moment}."
    return {n[len(prefix):]: t for n, t in tensors.items() if n.startswith(prefix)}


def save_charlm_checkpoint(path, model, optimizer, vocab, config, training, optimizer_meta, passthrough):
    """A full charlm checkpoint (Checkpoint.swift): model tensors, `optim.exp_avg.*` / `optim.exp_avg_sq.*` from the
    optimizer's state, and the `training`, `optimizer` metadata charlm resumes from; `passthrough` (sampling,
    settings, corpus) is written as given. The config names the model's cell (see with_cell)."""
    from safetensors.torch import save_file
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
