"""Sharding evaluation across processes started by ``torchrun`` (gloo backend, works on CPU).

Examples are cut into batches *before* sharding and whole batches go to ranks round-robin, so every batch
is computed with the same shapes whatever the number of processes: sharded results equal single-process
results (with the same number of threads per process).
"""
from __future__ import annotations

import os
from typing import Any, TypeVar

import torch.distributed as dist

T = TypeVar("T")


def init_from_env() -> tuple[int, int]:
    """(rank, world size); joins the process group torchrun describes (gloo) if not joined yet."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and dist.is_available() and not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(items: list[T], rank: int, world: int) -> list[tuple[int, T]]:
    """The (index, item) pairs rank ``rank`` handles: indices rank, rank + world, ..."""
    return [(i, item) for i, item in enumerate(items) if i % world == rank]


def gather(local: list[tuple[int, Any]], world: int) -> list[Any]:
    """All ranks' (index, value) pairs merged back into index order (every rank gets the full list)."""
    if world == 1:
        merged = local
    else:
        parts: list[list[tuple[int, Any]] | None] = [None] * world
        dist.all_gather_object(parts, local)
        merged = [pair for part in parts for pair in (part or [])]
    return [value for _, value in sorted(merged, key=lambda p: p[0])]
