"""Token files: one flat, memory-mappable array per split plus per-utterance offsets.

    <dir>/<split>.bin         uint16 (uint32 if the vocabulary needs it), all utterances
    <dir>/<split>.index.npz   ids (str), offsets (int64), lengths (int64), speakers (str)
    <dir>/meta.json           family, vocab_size, frame_rate, sample_rate, dtype
"""

from __future__ import annotations

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
                items: Iterable[tuple[str, str, np.ndarray]]) -> int:
    """Write (id, speaker, tokens) items of one split atomically; returns the count."""
    directory = Path(directory)
    dtype = token_dtype(vocab_size)
    ids, speakers, lengths = [], [], []
    with atomic_path(directory / f"{split}.bin") as tmp, open(tmp, "wb") as f:
        for utt_id, speaker, tokens in items:
            tokens = np.asarray(tokens)
            if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab_size):
                raise TokenStoreError(f"{utt_id}: token ids outside [0, {vocab_size})")
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

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, utt_id: object) -> bool:
        return utt_id in self._position

    def __getitem__(self, i: int) -> np.ndarray:
        start = int(self.offsets[i])
        return np.asarray(self._data[start:start + int(self.lengths[i])], dtype=np.int64)

    def get(self, utt_id: str) -> np.ndarray:
        if utt_id not in self._position:
            raise TokenStoreError(f"no tokens for utterance {utt_id!r}")
        return self[self._position[utt_id]]

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        for i, utt_id in enumerate(self.ids):
            yield utt_id, self[i]
