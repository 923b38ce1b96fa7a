"""Exact k-nearest-neighbour search, the math that the quality scores (precision, recall, authenticity) and the copy
check (gan/explore/neighbours.py) share.

Brute force: squared Euclidean distances as matrix products in float32 blocks of bounded size, whatever the set
sizes; the candidates are then re-ranked by direct differences, which rounding cannot reorder (an identical image is
at exactly 0). Milliseconds for one image against 60,000 on a CPU.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from ..errors import GanError
from .evaluator import Evaluator, evaluator_outputs

BLOCK_ELEMENTS = 2**24  # float32 elements of one block of distances (64 MB), whatever the set sizes
BASE_ELEMENTS = 2**20  # float32 elements of base rows converted at a time: 4 MB stays in cache (10x faster than 64)
RERANK_EXTRA = 8  # candidates beyond k re-ranked by direct differences, which rounding cannot reorder


def squared_distance_blocks(queries: torch.Tensor, base: torch.Tensor, base_sq: torch.Tensor | None = None
                            ) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (first query row, squared Euclidean distances (q, N) float32) for row blocks of queries (Q, D) against
    every row of base (N, D); base may be uint8, converted in chunks so no float copy of it is ever made whole."""
    queries = queries.float()
    base_rows = max(1, BASE_ELEMENTS // max(1, base.shape[1]))
    if base_sq is None:
        base_sq = squared_norms(base)
    query_rows = max(1, BLOCK_ELEMENTS // max(1, len(base)))
    for first in range(0, len(queries), query_rows):
        q = queries[first : first + query_rows]  # (q, D)
        q_sq = q.pow(2).sum(1, keepdim=True)  # (q, 1)
        block = torch.empty(len(q), len(base))  # (q, N)
        for b in range(0, len(base), base_rows):
            # ||q - x||^2 = ||q||^2 - 2 q.x + ||x||^2, done on a piece that stays in cache, then written once;
            # rounding can dip a hair below zero
            piece = torch.addmm(base_sq[b : b + base_rows], q, base[b : b + base_rows].float().T, alpha=-2)
            block[:, b : b + base_rows] = piece.add_(q_sq).clamp_(min=0)
        yield first, block


def squared_norms(base: torch.Tensor) -> torch.Tensor:
    """||x||^2 (N,) float32 of each row of base (N, D), converted in chunks."""
    rows = max(1, BASE_ELEMENTS // max(1, base.shape[1]))
    return torch.cat([base[i : i + rows].float().pow(2).sum(1) for i in range(0, len(base), rows)] or
                     [torch.zeros(0)])


def nearest(queries: torch.Tensor, base: torch.Tensor, k: int, *, exclude_self: bool = False,
            base_sq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest rows of base (N, D) to each query (Q, D): distances (Q, k) float32 ascending, indices (Q, k).
    exclude_self: the queries are base itself, and a row is never its own neighbour."""
    available = len(base) - int(exclude_self)
    if not 1 <= k <= available:
        raise GanError(f"asked for {k} nearest neighbours among {available} images; ask for 1 to {available}")
    if exclude_self and len(queries) != len(base):
        raise GanError("exclude_self needs the queries to be the base images themselves")
    candidates = min(k + RERANK_EXTRA, available)
    distances, indices = [], []
    for first, block in squared_distance_blocks(queries, base, base_sq):
        rows = torch.arange(len(block))
        if exclude_self:
            block[rows, first + rows] = float("inf")
        index = block.topk(candidates, dim=1, largest=False).indices  # (q, c)
        # Direct differences: an identical image is at exactly 0, and near-ties are ordered right.
        exact = (queries[first : first + len(block), None, :].float() - base[index].float()).pow(2).sum(-1)  # (q, c)
        exact, order = exact.sort(dim=1)
        distances.append(exact[:, :k].sqrt())
        indices.append(index.gather(1, order)[:, :k])
    if not distances:
        return torch.zeros(0, k), torch.zeros(0, k, dtype=torch.int64)
    return torch.cat(distances), torch.cat(indices)


def feature_vectors(evaluator: Evaluator, images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Evaluator features (N, D) float32 of uint8 images, rounded through float16: the precision a neighbour index
    stores, so an image and its stored copy get the same vector."""
    return evaluator_outputs(evaluator, images, features=True).half().float()
