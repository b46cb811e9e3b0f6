"""nanoGPT's GPT (nanogpt.py) generating with a KV cache, the PyTorch counterpart of charlm's TransformerDecoder for
the speed comparison: the prompt is fed once, then each new token is one row per block that attends over the keys
and values cached so far (torch's scaled_dot_product_attention), where nanoGPT's `generate` recomputes the whole
cropped context for every token. The same modules and weights; sampling as nanoGPT's (temperature, multinomial).
Within the context only: past it the learned absolute positions would shift and the cache would no longer hold.
Shapes: B batch, t new positions, C context, E = n_embd, nh heads, hs = E / nh."""
import torch
from torch.nn import functional as F


class KVCache:
    """Per block, (B, nh, C, hs) keys and values, filled from position 0."""

    def __init__(self, model, batch):
        config = model.config
        shape = (batch, config.n_head, config.block_size, config.n_embd // config.n_head)
        self.keys = [torch.zeros(shape) for _ in range(config.n_layer)]
        self.values = [torch.zeros(shape) for _ in range(config.n_layer)]
        self.length = 0


@torch.no_grad()
def forward_cached(model, idx, cache):
    """The (B, V) logits after the (B, t) token ids `idx` at positions cache.length ..< cache.length + t, each block's
    keys and values appended to `cache`. t > 1 only from position 0 (the prompt), where the mask is causal."""
    B, t = idx.size()
    start = cache.length
    assert start + t <= model.config.block_size, "past the context a cache cannot hold: positions are absolute"
    nh, E = model.config.n_head, model.config.n_embd
    blocks = model.transformer
    x = blocks.wte(idx) + blocks.wpe(torch.arange(start, start + t))
    for block, keys, values in zip(blocks.h, cache.keys, cache.values):
        q, k, v = block.attn.c_attn(block.ln_1(x)).split(E, dim=2)
        q, k, v = (z.view(B, t, nh, E // nh).transpose(1, 2) for z in (q, k, v))  # (B, nh, t, hs)
        keys[:, :, start:start + t] = k
        values[:, :, start:start + t] = v
        y = F.scaled_dot_product_attention(q, keys[:, :, :start + t], values[:, :, :start + t], is_causal=t > 1)
        x = x + block.attn.c_proj(y.transpose(1, 2).reshape(B, t, E))
        x = x + block.mlp(block.ln_2(x))
    cache.length = start + t
    return model.lm_head(blocks.ln_f(x[:, -1, :]))


@torch.no_grad()
def generate_cached(model, idx, max_new_tokens, temperature=1.0):
    """nanoGPT's generate with a KV cache: (B, T) prompt ids -> (B, T + max_new_tokens), within the context."""
    cache = KVCache(model, idx.size(0))
    logits = forward_cached(model, idx, cache)
    out = [idx]
    for step in range(max_new_tokens):
        probs = F.softmax(logits / temperature, dim=-1)
        token = torch.multinomial(probs, num_samples=1)
        out.append(token)
        if step + 1 < max_new_tokens:
            logits = forward_cached(model, token, cache)
    return torch.cat(out, dim=1)
