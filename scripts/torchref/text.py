"""Text as charlm reads it: normalisation (line breaks, invisible format characters, optional ASCII fold and
lowercase), a corpus file as a vocabulary and token ids, a prompt as token ids, and the corpus fingerprint charlm
writes into checkpoints. Batches and windows are the training protocol's (training.py)."""
import unicodedata

import torch


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


def read_text(path, lowercase=False, ascii=False):
    """A text file as UTF-8 (undecodable bytes replaced), normalised."""
    with open(path, "rb") as f:
        return normalize(f.read().decode("utf-8", errors="replace"), lowercase, ascii)


def load_corpus(path, lowercase=False, ascii=False):
    """A corpus file's vocabulary (its characters, sorted) and its token ids."""
    return tokenize(read_text(path, lowercase, ascii))


def tokenize(text):
    """`text`'s vocabulary (its characters, sorted) and its token ids."""
    vocab = sorted(set(text))
    return vocab, token_ids(text, vocab)


def token_ids(text, vocab):
    """`text` as a long tensor of token ids under `vocab`, which must hold every character of it."""
    index = {c: i for i, c in enumerate(vocab)}
    return torch.tensor([index[c] for c in text], dtype=torch.long)


def encode(text, vocab, config):
    """A prompt's token ids under a model's vocabulary and normalisation; characters outside the vocabulary dropped."""
    index = {c: i for i, c in enumerate(vocab)}
    text = normalize(text, config.get("lowercase", False), config.get("ascii", False))
    return [index[c] for c in text if c in index]


def fnv1a64(ids):
    """charlm's corpus fingerprint (Corpus.fingerprint): FNV-1a 64 over each token index as two little-endian bytes."""
    h = 0xCBF29CE484222325
    for token in ids.tolist():
        for byte in (token & 0xFF, token >> 8):
            h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h
