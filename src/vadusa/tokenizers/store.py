"""Token files: one flat, memory-mappable array per split plus per-utterance offsets.

    <dir>/<split>.bin         uint16 (uint32 if the vocabulary needs it), all utterances
    <dir>/<split>.codes.bin   acoustic families only: (frames, N) every codebook, same index
    <dir>/<split>.index.npz   ids (str), offsets (int64), lengths (int64), speakers (str)
    <dir>/meta.json           family, vocab_size, frame_rate, sample_rate, codebooks

The tokens (``.bin``) are codebook 1, what the AR model predicts; ``.codes.bin`` holds all N
codebooks of each frame (column 0 equal to the tokens) for the NAR stage and resynthesis.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vadusa.atomic import atomic_path, write_text_atomic


class TokenStoreError(ValueError):
    pass


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size + 3 < 2**16 else np.uint32)


def write_meta(directory: str | Path, meta: dict[str, Any]) -> None:
    write_text_atomic(Path(directory) / "meta.json", json.dumps(meta, indent=1) + "\n")


def read_meta(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / "meta.json"
    if not path.is_file():
        raise TokenStoreError(f"no token meta.json in {directory} (run `vadusa tokenize` first)")
    return json.loads(path.read_text())


def write_split(directory: str | Path, split: str, vocab_size: int,
                items: Iterable[tuple[str, str, np.ndarray]], codebooks: int = 1) -> int:
    """Write (id, speaker, tokens) items of one split atomically; returns the count. With
    ``codebooks`` > 1 each item's tokens are (F, codebooks) codes: column 0 goes to the token
    file, all of them to the codes file."""
    directory = Path(directory)
    dtype = token_dtype(vocab_size)
    ids, speakers, lengths = [], [], []
    with contextlib.ExitStack() as files:
        f = files.enter_context(open(files.enter_context(atomic_path(
            directory / f"{split}.bin")), "wb"))
        codes_file = None if codebooks == 1 else files.enter_context(open(files.enter_context(
            atomic_path(directory / f"{split}.codes.bin")), "wb"))
        for utt_id, speaker, tokens in items:
            tokens = np.asarray(tokens)
            if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab_size):
                raise TokenStoreError(f"{utt_id}: token ids outside [0, {vocab_size})")
            if codes_file is not None:
                if tokens.ndim != 2 or tokens.shape[1] != codebooks:
                    raise TokenStoreError(f"{utt_id}: expected (frames, {codebooks}) codes, "
                                          f"got shape {tokens.shape}")
                codes_file.write(tokens.astype(dtype).tobytes())  # (F, N), row-major
                tokens = tokens[:, 0]  # (F, N) -> (F,): codebook 1
            f.write(tokens.astype(dtype).tobytes())
            ids.append(utt_id)
            speakers.append(speaker)
            lengths.append(len(tokens))
    lengths_arr = np.asarray(lengths, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths_arr)[:-1]]).astype(np.int64)
    with atomic_path(directory / f"{split}.index.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, ids=np.asarray(ids, dtype=str), speakers=np.asarray(speakers, dtype=str),
                     offsets=offsets, lengths=lengths_arr)
    return len(ids)


class TokenSplit:
    """Read side: ``store[i]`` or ``store.get(id)`` -> int64 tokens, memory-mapped."""

    def __init__(self, directory: str | Path, split: str) -> None:
        directory = Path(directory)
        self.meta = read_meta(directory)
        index_path = directory / f"{split}.index.npz"
        if not index_path.is_file():
            raise TokenStoreError(f"no tokens for split {split!r} in {directory}")
        with np.load(index_path, allow_pickle=False) as index:
            self.ids = [str(i) for i in index["ids"]]
            self.speakers = [str(s) for s in index["speakers"]]
            self.offsets = index["offsets"]
            self.lengths = index["lengths"]
        total = int(self.lengths.sum())
        dtype = token_dtype(self.meta["vocab_size"])
        self._data = (np.memmap(directory / f"{split}.bin", dtype=dtype, mode="r", shape=(total,))
                      if total else np.zeros(0, dtype=dtype))
        self._position = {utt_id: i for i, utt_id in enumerate(self.ids)}
        self.codebooks = int(self.meta.get("codebooks", 1))
        self._codes = None
        if self.codebooks > 1 and total:
            codes_path = directory / f"{split}.codes.bin"
            if not codes_path.is_file():
                raise TokenStoreError(f"{directory} declares {self.codebooks} codebooks but has "
                                      f"no {codes_path.name}: rerun `vadusa tokenize`")
            self._codes = np.memmap(codes_path, dtype=dtype, mode="r",
                                    shape=(total, self.codebooks))

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, utt_id: object) -> bool:
        return utt_id in self._position

    def __getitem__(self, i: int) -> np.ndarray:
        start = int(self.offsets[i])
        return np.asarray(self._data[start:start + int(self.lengths[i])], dtype=np.int64)

    def codes(self, i: int) -> np.ndarray:
        """(F, N) int64 ids of every codebook of utterance ``i`` (N = 1: the tokens)."""
        if self._codes is None:
            return self[i][:, None]  # (F,) -> (F, 1)
        start = int(self.offsets[i])
        return np.asarray(self._codes[start:start + int(self.lengths[i])], dtype=np.int64)

    def get(self, utt_id: str) -> np.ndarray:
        if utt_id not in self._position:
            raise TokenStoreError(f"no tokens for utterance {utt_id!r}")
        return self[self._position[utt_id]]

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        for i, utt_id in enumerate(self.ids):
            yield utt_id, self[i]
