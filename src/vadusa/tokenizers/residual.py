"""Residual k-means: codebook 1 quantizes the features, each later codebook what the codebooks
before it left over (residual vector quantization with codebooks fitted by k-means, no
gradient training). The ``melrvq`` family's quantizer (``tokenizers/mel.py``).

Codebook 1's ids are the tokens the AR model predicts; codebooks 2..N refine them and are
predicted by the non-autoregressive stage (``model/nar.py``), as VALL-E does with EnCodec.

With ``units`` (``tokens.melrvq.first: whisper``), codebook 1 is not fitted on the features:
its ids come with them (a last column of unit ids, ``tokenizers/mel.py``'s ``MelWithUnits``)
and its entries are each unit's mean feature vector; codebooks 2..N quantize what the unit's
mean leaves, as before. The AR model then predicts units that carry what was said (as the
semantic families' do) and the NAR stage the acoustic detail.

Saved like ``KMeansQuantizer``: an ``.npz`` (centroids, (N, K, D)) and a JSON sidecar of
settings, loaded without pickle.

Shapes: F frames, D feature dims, N codebooks, K entries per codebook.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vadusa.tokenizers.kmeans import load_centroids, save_centroids

KIND = "residual-kmeans"  # the sidecar's "kind": tells a residual quantizer from a plain one
CHUNK = 16_384  # frames whose distances to every centroid are computed at once


def lloyd(x: torch.Tensor, k: int, seed: int, iterations: int) -> torch.Tensor:
    """(F, D) -> (k, D) centroids by Lloyd's k-means, started from k random frames.

    An entry that no frame chose is re-seeded at the frame the current centroids fit worst,
    so every entry of the codebook ends up in use (dead codes waste a residual stage)."""
    if len(x) < k:
        raise ValueError(f"{len(x)} feature frames cannot fit {k} clusters")
    g = torch.Generator().manual_seed(seed)
    centroids = x[torch.randperm(len(x), generator=g)[:k]].clone()  # (k, D)
    for _ in range(iterations):
        assign, error = nearest(x, centroids)  # (F,), (F,)
        means, alive = cluster_means(x, assign, k)
        centroids[alive] = means[alive]
        dead = (~alive).nonzero().flatten()
        if len(dead):
            centroids[dead] = x[error.topk(len(dead)).indices]
    return centroids


def cluster_means(x: torch.Tensor, ids: torch.Tensor, k: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(F, D) frames and their cluster ids (F,) -> each cluster's mean (k, D), meaningful
    where the second result, (k,) whether any frame chose it, is true (zero elsewhere)."""
    counts = torch.bincount(ids, minlength=k)  # (k,)
    sums = torch.zeros(k, x.shape[1], dtype=x.dtype).index_add_(0, ids, x)  # (k, D)
    alive = counts > 0
    return sums / counts.clamp_min(1)[:, None].to(x.dtype), alive


def unit_ids(column: torch.Tensor, n_clusters: int) -> torch.Tensor:
    """A features' column of unit ids -> (F,) int64, checked to lie in [0, n_clusters)."""
    ids = column.cpu().round().long()  # (F,)
    if ids.numel() and (ids.min() < 0 or ids.max() >= n_clusters):
        raise ValueError(f"unit ids outside [0, {n_clusters}) in the features' last column: "
                         "the units' k-means and this quantizer disagree")
    return ids


def nearest(x: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(F, D), (K, D) -> the nearest entry of each frame (F,) and its squared distance (F,)."""
    ids, errors = [], []
    squared = (centroids * centroids).sum(1)  # (K,)
    for chunk in x.split(CHUNK):
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2, (chunk, K)
        d = (chunk * chunk).sum(1, keepdim=True) - 2 * chunk @ centroids.T + squared
        error, idx = d.min(1)
        ids.append(idx)
        errors.append(error)
    return torch.cat(ids), torch.cat(errors)


class ResidualKMeans:
    """N codebooks of K entries over D-dim features; ``quantize`` gives codebook 1 (the
    ``Quantizer`` contract), ``quantize_codes`` all of them, ``decode`` the sum of the chosen
    entries of the first codebooks."""

    def __init__(self, centroids: np.ndarray | torch.Tensor,
                 settings: dict[str, Any] | None = None) -> None:
        self.centroids = torch.as_tensor(np.asarray(centroids, dtype=np.float32))  # (N, K, D)
        if self.centroids.dim() != 3:
            raise ValueError(f"residual k-means centroids must be (codebooks, entries, dims), "
                             f"got {tuple(self.centroids.shape)}")
        self.settings = {**(settings or {}), "kind": KIND}
        # codebook 1's ids arrive as the features' last column (unit ids), not by distance
        self.units = bool(self.settings.get("units", False))

    @property
    def input_dim(self) -> int:
        """Columns of the features ``quantize`` reads: D, and the unit ids with ``units``."""
        return self.dim + int(self.units)

    @property
    def codebooks(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def n_clusters(self) -> int:
        return int(self.centroids.shape[1])

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[2])

    def vectors(self) -> torch.Tensor:
        """(N, K, D) every codebook's entries."""
        return self.centroids

    def quantize(self, features: torch.Tensor) -> torch.Tensor:
        """(F, D) (or (F, D + 1) with ``units``) -> (F,) codebook-1 ids (the first stage needs
        no residuals)."""
        self._check(features)
        if self.units:
            return unit_ids(features[:, self.dim], self.n_clusters)
        return nearest(features.float().cpu(), self.centroids[0])[0]

    def quantize_codes(self, features: torch.Tensor) -> torch.Tensor:
        """(F, D) (or (F, D + 1)) -> (F, N) ids, codebook by codebook on the residual left by
        the ones before."""
        self._check(features)
        residual = features[:, :self.dim].float().cpu().clone()  # (F, D)
        codes = []
        for n, book in enumerate(self.centroids):  # (K, D)
            if n == 0 and self.units:
                ids = unit_ids(features[:, self.dim], self.n_clusters)
            else:
                ids = nearest(residual, book)[0]
            residual -= book[ids]
            codes.append(ids)
        return torch.stack(codes, dim=1)  # N x (F,) -> (F, N)

    def decode(self, codes: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(F,) or (F, n) ids of the first n codebooks -> (F, D) features."""
        codes = torch.as_tensor(np.asarray(codes), dtype=torch.long)
        if codes.dim() == 1:
            codes = codes[:, None]  # (F,) -> (F, 1): codebook 1 alone
        if codes.dim() != 2 or not 1 <= codes.shape[1] <= self.codebooks:
            raise ValueError(f"expected (frames, 1..{self.codebooks}) codes, got "
                             f"{tuple(codes.shape)}")
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.n_clusters):
            raise ValueError(f"code ids outside [0, {self.n_clusters})")
        books = torch.arange(codes.shape[1])  # (n,)
        return self.centroids[books, codes].sum(1)  # (F, n, D) -> (F, D)

    def _check(self, features: torch.Tensor) -> None:
        if features.shape[-1] != self.input_dim:
            raise ValueError(f"features have {features.shape[-1]} dims, the residual k-means "
                             f"reads {self.input_dim}"
                             + (" (its dims and a column of unit ids)" if self.units else ""))

    @classmethod
    def fit(cls, features: np.ndarray | torch.Tensor, n_clusters: int, codebooks: int,
            seed: int, iterations: int = 25, units: bool = False) -> ResidualKMeans:
        """Codebook by codebook: k-means of what the codebooks before it left unexplained.
        With ``units`` the features' last column holds unit ids in [0, n_clusters): codebook
        1 is each unit's mean vector (the mean of all frames for a unit never seen)."""
        x = torch.as_tensor(np.asarray(features, dtype=np.float32))
        residual = (x[:, :-1] if units else x).clone()  # (F, D)
        books, rms = [], []
        for n in range(codebooks):
            if n == 0 and units:
                ids = unit_ids(x[:, -1], n_clusters)
                means, seen = cluster_means(residual, ids, n_clusters)
                book = residual.mean(0).repeat(n_clusters, 1)  # (K, D): unseen units
                book[seen] = means[seen]
            else:
                book = lloyd(residual, n_clusters, seed + n, iterations)  # (K, D)
                ids = nearest(residual, book)[0]
            residual -= book[ids]
            books.append(book)
            rms.append(float(residual.square().mean().sqrt()))
        settings = {"n_clusters": n_clusters, "codebooks": codebooks, "seed": seed,
                    "iterations": iterations, "frames": int(len(residual)), "units": units,
                    # what is left after each codebook on the frames it was fitted on
                    "residual_rms": rms}
        return cls(torch.stack(books).numpy(), settings)  # N x (K, D) -> (N, K, D)

    def save(self, path: str | Path) -> None:
        save_centroids(path, self.centroids, self.settings)

    @classmethod
    def load(cls, path: str | Path) -> ResidualKMeans:
        return cls(*load_centroids(path, "run `vadusa fit-kmeans --family melrvq`"))


def is_residual(path: str | Path) -> bool:
    """Whether the quantizer file at ``path`` is a ``ResidualKMeans`` (by its sidecar)."""
    sidecar = Path(path).with_suffix(".json")
    return sidecar.is_file() and json.loads(sidecar.read_text()).get("kind") == KIND
