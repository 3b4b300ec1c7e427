"""Sparse candidate trees: which draft candidates to verify, and the buffers to verify them.

A tree is a list of **paths**, each a tuple of ranks ``(r1, ..., rd)``: the node takes the
rank-r_d candidate of draft head d, and its parent is the path without its last rank. The
root (the empty path) is the token the base model itself just produced; a node at depth d
guesses the token d positions after the root.

Three constructions:
- ``greedy_tree``: MEDUSA's greedy expected-acceptance tree. With ``acc[k][r]`` the calibrated
  probability that head k's rank-r candidate is accepted, a node's value is the product of
  ``acc`` along its path; starting from the root, repeatedly add the frontier node (the next
  sibling or the first child of a node in the tree) of highest value. The sum of node values
  plus one is the expected number of tokens a verification step emits.
- ``chain_tree(depth)``: the top-1 candidate of each head, one path.
- ``full_tree(width, depth)``: every path with ranks below ``width``, for ablations.

``tree_buffers`` turns paths into what one verification pass needs, as a pure function.

Shapes: N tree nodes (root included, index 0), D depth, P root-to-leaf paths, K heads,
R ranks per head.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass
from pathlib import Path

import torch

Path_ = tuple[int, ...]


class TreeError(ValueError):
    pass


def _check_paths(paths: list[Path_]) -> list[Path_]:
    """Depth-first order (sorted by ranks: parents before children, and the chain of top
    candidates ``(0,), (0, 0), ...`` first, so when that chain is accepted its keys and values
    already sit in the slots after the root); every parent present; no duplicates; no empty
    path."""
    unique = sorted(set(tuple(p) for p in paths))
    if len(unique) != len(paths):
        raise TreeError("a tree lists the same path twice")
    present = set(unique)
    for p in unique:
        if not p:
            raise TreeError("the root is implicit: do not list the empty path")
        if min(p) < 0:
            raise TreeError(f"path {p} has a negative rank")
        if len(p) > 1 and p[:-1] not in present:
            raise TreeError(f"path {p} has no parent {p[:-1]} in the tree")
    return unique


@dataclass(frozen=True)
class TreeBuffers:
    """Everything a verification pass needs, derived from the paths alone."""

    paths: tuple[Path_, ...]  # (N-1) in node order (node i + 1 = paths[i])
    mask: torch.Tensor  # (N, N) bool: node i may attend to node j (ancestors and itself)
    depth: torch.Tensor  # (N,) depth of each node (root 0): its position is prefix + depth
    parent: torch.Tensor  # (N,) parent node index (root: 0)
    head: torch.Tensor  # (N,) draft head a node's token comes from (root: -1)
    rank: torch.Tensor  # (N,) rank among that head's candidates (root: -1)
    retrieve: torch.Tensor  # (P, D + 1) node indices of each root-to-leaf path, -1 padded

    @property
    def size(self) -> int:
        return len(self.paths) + 1

    @property
    def max_depth(self) -> int:
        return int(self.depth.max())

    @property
    def max_rank(self) -> int:
        return int(self.rank.max()) + 1 if len(self.paths) else 0


def tree_buffers(paths: list[Path_]) -> TreeBuffers:
    """Paths -> attention mask, depths, parents, candidate (head, rank) per node, and the
    root-to-leaf paths for selecting the longest accepted one."""
    paths = _check_paths([tuple(p) for p in paths])
    index = {(): 0} | {p: i + 1 for i, p in enumerate(paths)}
    N = len(paths) + 1
    mask = torch.zeros(N, N, dtype=torch.bool)
    depth = torch.zeros(N, dtype=torch.long)
    parent = torch.zeros(N, dtype=torch.long)
    head = torch.full((N,), -1, dtype=torch.long)
    rank = torch.full((N,), -1, dtype=torch.long)
    mask[0, 0] = True
    for p, i in index.items():
        if not p:
            continue
        depth[i], parent[i], head[i], rank[i] = len(p), index[p[:-1]], len(p) - 1, p[-1]
        for d in range(len(p) + 1):  # the root, every ancestor, itself
            mask[i, index[p[:d]]] = True
    has_child = {p[:-1] for p in paths}
    leaves = [p for p in paths if p not in has_child] or [()]
    D = max((len(p) for p in paths), default=0)
    retrieve = torch.full((len(leaves), D + 1), -1, dtype=torch.long)
    for row, leaf in enumerate(leaves):
        for d in range(len(leaf) + 1):
            retrieve[row, d] = index[leaf[:d]]
    return TreeBuffers(tuple(paths), mask, depth, parent, head, rank, retrieve)


# -- constructions ----------------------------------------------------------------------------

def expected_length(paths: list[Path_], acc: list[list[float]]) -> float:
    """Expected tokens per verification step: 1 (the base's own token) + the sum over nodes of
    the product of ``acc[depth-1][rank]`` along the path."""
    total = 1.0
    for p in paths:
        value = 1.0
        for d, r in enumerate(p):
            value *= acc[d][r] if d < len(acc) and r < len(acc[d]) else 0.0
        total += value
    return total


def greedy_tree(acc: list[list[float]], n_nodes: int) -> list[Path_]:
    """MEDUSA's greedy construction: ``n_nodes`` paths (root excluded) of highest expected
    value, each added only once its parent and its next-better sibling are in."""
    if n_nodes < 1:
        raise TreeError(f"a tree needs at least one node besides the root, got {n_nodes}")
    if not acc or not acc[0]:
        raise TreeError("no acceptance table: calibrate the heads first")

    def value(p: Path_) -> float:
        v = 1.0
        for d, r in enumerate(p):
            v *= acc[d][r]
        return v

    chosen: list[Path_] = []
    frontier = [(-value((0,)), (0,))]
    seen = {(0,)}
    while frontier and len(chosen) < n_nodes:
        _, p = heapq.heappop(frontier)
        chosen.append(p)
        candidates = [p[:-1] + (p[-1] + 1,)]  # next sibling
        if len(p) < len(acc):
            candidates.append(p + (0,))  # first child
        for q in candidates:
            if q[-1] < len(acc[len(q) - 1]) and q not in seen:
                seen.add(q)
                heapq.heappush(frontier, (-value(q), q))
    return sorted(chosen, key=lambda p: (len(p), p))


def chain_tree(depth: int) -> list[Path_]:
    """The top-1 candidate of heads 1..depth: MEDUSA without a tree."""
    if depth < 1:
        raise TreeError(f"a chain needs depth >= 1, got {depth}")
    return [(0,) * d for d in range(1, depth + 1)]


def full_tree(width: int, depth: int) -> list[Path_]:
    """Every path with ranks below ``width`` up to ``depth``: width + width^2 + ... nodes."""
    if width < 1 or depth < 1:
        raise TreeError(f"a full tree needs width, depth >= 1, got {width}, {depth}")
    level: list[Path_] = [()]
    paths: list[Path_] = []
    for _ in range(depth):
        level = [p + (r,) for p in level for r in range(width)]
        paths += level
    return paths


# -- files -----------------------------------------------------------------------------------

def save_tree(path: Path, paths: list[Path_], **info: object) -> Path:
    """A tree as JSON data: its paths plus whatever describes it (acceptance table, expected
    length, heads, tau, sampling)."""
    paths = _check_paths([tuple(p) for p in paths])
    blob = {"paths": [list(p) for p in paths], "nodes": len(paths),
            "depth": max(len(p) for p in paths)} | info
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(blob, indent=1) + "\n")
    return path


def load_tree(path: Path) -> tuple[list[Path_], dict]:
    """-> (paths, the whole record). A missing or malformed file is a TreeError naming it."""
    path = Path(path)
    try:
        blob = json.loads(path.read_text())
        paths = _check_paths([tuple(int(r) for r in p) for p in blob["paths"]])
    except FileNotFoundError:
        raise TreeError(f"tree file {path} does not exist; build one with `vadusa calibrate`"
                        f" or pass a node count (--tree 32)") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise TreeError(f"tree file {path} is not a tree (expected JSON with a 'paths' list "
                        f"of rank lists): {err}") from None
    return paths, blob
