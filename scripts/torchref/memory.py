"""What the machine can hold, asked before anything is allocated from a size that a file or the command line gave, as
charlm's MemoryBudget does (Sources/CharLM/Support/Resources.swift, System.swift): one request may take 80% of the
memory available now (MemAvailable, within an address-space or cgroup limit). The models' figures are charlm's
(RecurrentArchitecture.swift, TransformerArchitecture.swift), computed in floats so no hostile size can overflow them;
PyTorch's own buffers differ in detail, not in size. No torch here."""
import os
import resource

from .errors import CommandError
from .settings import GATES

USABLE_SHARE = 0.8


def _proc_bytes(field, path):
    """A "Field:   123 kB" line of a /proc file, in bytes, or None."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_number(name):
    try:
        with open(f"/sys/fs/cgroup/{name}") as f:
            return int(f.read().strip())
    except (OSError, ValueError):  # absent, or "max"
        return None


def available_bytes():
    """The memory this process may still take: MemAvailable (else physical memory), within what is left of an
    address-space limit and of a control group's limit."""
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    available = _proc_bytes("MemAvailable:", "/proc/meminfo") or available
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    used = _proc_bytes("VmSize:", "/proc/self/status")
    if soft != resource.RLIM_INFINITY and used is not None:
        available = min(available, max(0, soft - used))
    maximum, current = _cgroup_number("memory.max"), _cgroup_number("memory.current")
    if maximum is not None and current is not None:
        available = min(available, max(0, maximum - current))
    return available


def format_bytes(count):
    """512 bytes, 1.5 KB, 137 MB, 21.3 GB (powers of 1000), as charlm writes them."""
    if count < 1000:
        return f"{int(count)} bytes"
    for unit, scale in (("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12)):
        if count < scale * 1000:
            scaled = count / scale
            return f"{scaled:.1f} {unit}" if scaled < 10 else f"{scaled:.0f} {unit}"
    return f"{count / 1e12:.0f} TB"


def check(needed, what, hint):
    """Raises CommandError unless `needed` bytes are within the usable share of the memory available now."""
    available = available_bytes()
    if needed > available * USABLE_SHARE:
        raise CommandError(f"{what} needs about {format_bytes(needed)} of memory; the machine has "
                           f"{format_bytes(available)} available: {hint}")


def parameter_count(cell, V, E, H, L):
    """Parameters of a recurrent model (float: a hostile size cannot overflow it)."""
    V, E, H, L = float(V), float(E), float(H), float(L)
    P = GATES[cell] * H
    return V * E + (P * E + P * H + 2 * P) + (L - 1) * (2 * P * H + 2 * P) + V * H + V


def model_bytes(cell, V, E, H, L):
    """The model's parameters and their gradients, float32."""
    return 2 * 4 * parameter_count(cell, V, E, H, L)


def training_bytes(cell, V, E, H, L, T, B, dropout):
    """A training run of T steps of B windows: the model and its gradients, Adam's two moments, and the pass's
    activations (charlm's passBytes: the input table, each layer's gates and states, dropout masks, the logits and
    the gradients flowing back)."""
    V, H, L, T, B = float(V), float(H), float(L), float(T), float(B)
    rows = T * B
    P = GATES[cell] * H
    loop = (T + 1) * B * H + B * H + rows + P + 2 * H * P  # hidden states, scratch, packed W_hh (Recurrence.swift)
    kept = {"lstm": rows * P + (T + 1) * B * H + B * H, "gru": 2 * rows * P, "rnn": rows * P}[cell]
    floats = 2 * V * P + L * (loop + kept) + (2 * (L - 1) * rows * H if dropout > 0 else 0) + rows * V + 2 * rows * H
    return model_bytes(cell, V, E, H, L) + 2 * 4 * parameter_count(cell, V, E, H, L) + 4 * floats + 8 * rows


def transformer_parameter_count(V, E, L, C, bias):
    """Parameters of a transformer (charlm's TransformerConfig.parameterCount; the head is the token embedding)."""
    V, E, L, C, b = float(V), float(E), float(L), float(C), 1.0 if bias else 0.0
    block = 2 * E * (1 + b) + (3 * E * E + 3 * E * b) + (E * E + E * b) + (4 * E * E + 4 * E * b) + (4 * E * E + E * b)
    return V * E + C * E + L * block + E * (1 + b)


def transformer_model_bytes(V, E, L, C, bias):
    """The transformer's parameters and their gradients, float32."""
    return 2 * 4 * transformer_parameter_count(V, E, L, C, bias)


def transformer_training_bytes(V, E, L, NH, C, bias, T, B, dropout):
    """A transformer's training run of T steps of B windows: the model and its gradients, Adam's two moments, and
    the pass's activations as charlm counts them (TransformerConfig.passBytes), the attention's (B, NH, T, T) weights
    per block among them."""
    V, E, L, NH, T, B = float(V), float(E), float(L), float(NH), float(T), float(B)
    rows, attention = T * B, B * NH * T * T
    masks = 1.0 if dropout > 0 else 0.0
    block = rows * (16 * E + 4) + attention + masks * (attention + 2 * rows * E)
    shared = rows * (2 * E + 2 + V + E + 7 * E) + attention + masks * rows * E
    return 2 * transformer_model_bytes(V, E, L, C, bias) + 4 * (L * block + shared) + 8 * rows
