"""The k-means quantizer: features -> nearest centroid id.

Fitted with scikit-learn's MiniBatchKMeans on a sample of train-split features; saved as an
``.npz`` (centroids) with its settings in a JSON sidecar, loaded without pickle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vadusa.atomic import atomic_path, write_text_atomic


class KMeansQuantizer:
    def __init__(self, centroids: np.ndarray, settings: dict[str, Any] | None = None) -> None:
        self.centroids = torch.from_numpy(np.asarray(centroids, dtype=np.float32))  # (K, D)
        self.settings = settings or {}

    @property
    def n_clusters(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    def quantize(self, features: torch.Tensor) -> torch.Tensor:
        """(F, D) -> (F,) nearest centroid by Euclidean distance."""
        if features.shape[-1] != self.dim:
            raise ValueError(f"features have {features.shape[-1]} dims, k-means has {self.dim}")
        return torch.cdist(features.float().cpu(), self.centroids).argmin(dim=-1)

    @classmethod
    def fit(cls, features: np.ndarray, n_clusters: int, seed: int,
            batch_size: int = 10_000, max_iter: int = 100) -> KMeansQuantizer:
        from sklearn.cluster import MiniBatchKMeans  # noqa: PLC0415

        if len(features) < n_clusters:
            raise ValueError(f"{len(features)} feature frames cannot fit {n_clusters} clusters")
        km = MiniBatchKMeans(n_clusters=n_clusters, random_state=seed, batch_size=batch_size,
                             max_iter=max_iter, n_init=3, max_no_improvement=20)
        km.fit(features)
        settings = {"n_clusters": n_clusters, "seed": seed, "batch_size": batch_size,
                    "max_iter": max_iter, "frames": int(len(features)),
                    "inertia_per_frame": float(km.inertia_ / len(features))}
        return cls(km.cluster_centers_, settings)

    def save(self, path: str | Path) -> None:
        save_centroids(path, self.centroids, self.settings)

    @classmethod
    def load(cls, path: str | Path) -> KMeansQuantizer:
        return cls(*load_centroids(path, "run `vadusa fit-kmeans`"))


def save_centroids(path: str | Path, centroids: torch.Tensor, settings: dict[str, Any]) -> None:
    """A quantizer's file: ``centroids`` in an ``.npz``, ``settings`` in a JSON sidecar."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, centroids=centroids.numpy())
    write_text_atomic(path.with_suffix(".json"), json.dumps(settings, indent=1) + "\n")


def load_centroids(path: str | Path, hint: str) -> tuple[np.ndarray, dict[str, Any]]:
    """``save_centroids``' file, without pickle; a missing one names ``hint`` (what makes it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"k-means artifact not found: {path} ({hint})")
    with np.load(path, allow_pickle=False) as blob:
        centroids = blob["centroids"]
    sidecar = path.with_suffix(".json")
    return centroids, json.loads(sidecar.read_text()) if sidecar.is_file() else {}
