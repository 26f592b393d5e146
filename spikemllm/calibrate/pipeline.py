"""The block-by-block calibration pipeline: data flow only, no quantization math.

A method asks for statistics of some target layers and gives a callback; :func:`run_blockwise` walks the model
in data-flow order and calls it once per *group*:

1. for each block stack (vision blocks, then LM decoder layers) that holds a requested layer, one capture pass
   (:func:`~spikemllm.calibrate.blocks.capture_stack`) records the stack's inputs. Requested layers outside
   any block that run before the stack (a projector) are hooked during that pass and form a ``"loose"`` group;
   if the callback changes them, the stack's inputs are captured again.
2. each block then runs alone on the recorded inputs with statistics hooks on its requested layers; the
   callback sees the block's group; if it reports a change (weights edited), the block runs again so the next
   block is calibrated on what the edited model computes (sequential GPTQ);
3. requested layers never reached (an LM head) get one full forward pass and a last ``"loose"`` group.

Only one block's weights and the current hidden states of the calibration batches are live at a time, so
peak memory is about one block plus its activations; with accelerate offload, blocks are loaded on demand.
Online transforms in ``ctx.input_transforms`` are applied throughout (looked up at call time).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from .blocks import capture_stack, forward_model, run_block
from .data import calibration_batches
from .stats import LinearStats, StatsHooks, transform_hooks


@dataclass
class BlockGroup:
    """Requested layers that the callback handles together, with their statistics.

    ``forward(i)`` returns the block's output on calibration batch ``i`` with the current weights (None for
    loose groups): methods use it to check that an edit left the float function unchanged.
    """

    label: str
    names: list[str]
    stats: dict[str, LinearStats]
    block: nn.Module | None = None
    forward: Callable[[int], torch.Tensor] | None = None


OnGroup = Callable[[BlockGroup], bool]


def _mask(batch: dict[str, Any]) -> torch.Tensor | None:
    m = batch.get("attention_mask")
    return m.bool() if isinstance(m, torch.Tensor) and m.dim() == 2 else None


def run_blockwise(ctx: Any, names: Iterable[str], needs: Iterable[str], on_group: OnGroup, *,
                  desc: str = "calibrate", progress: bool = True) -> None:
    """Collect ``needs`` statistics for ``names`` (keys of ``ctx.targets``) group by group; see module docstring.

    ``ctx`` is a :class:`~spikemllm.methods.base.QuantContext` (model, model_map, targets, calib,
    input_transforms). ``on_group`` returns True when it changed weights the remaining calibration depends on.
    """
    mm, model = ctx.model_map, ctx.model
    wanted = [n for n in names if n in ctx.targets]
    unknown = [n for n in names if n not in ctx.targets]
    if unknown:
        raise ValueError(f"layers {unknown[:3]} are not targets of this conversion; calibrate targets only")
    batches = calibration_batches(ctx.calib, mm)
    needs = tuple(needs)
    in_block: dict[tuple[str, int], list[str]] = {}
    loose: list[str] = []
    for n in wanted:
        where = mm.layer_of(n)
        (in_block.setdefault(where, []) if where is not None else loose).append(n)
    stacks = [k for k in ("vision", "lm") if any(w[0] == k for w in in_block)]
    with transform_hooks(ctx.targets, ctx.input_transforms):
        for kind in stacks:
            layers = mm.layers(kind)
            upto = max(i for (k, i) in in_block if k == kind)
            hidden, calls, loose = _capture(ctx, layers, upto, batches, loose, needs, on_group, kind)
            bar = tqdm(total=upto + 1, desc=f"{desc} {kind}", disable=not progress, leave=False)
            for j in range(upto + 1):
                block, group_names = layers[j], in_block.get((kind, j), [])

                def fwd(i: int, block: nn.Module = block, j: int = j) -> torch.Tensor:
                    return run_block(block, hidden[i], calls[i][j])

                if group_names:
                    with StatsHooks({n: ctx.targets[n] for n in group_names}, needs) as hooks:
                        outs = []
                        for i, batch in enumerate(batches):
                            hooks.token_mask = _mask(batch)
                            outs.append(fwd(i))
                    stats = hooks.seen()
                    _warn_unseen(ctx, group_names, stats)
                    group = BlockGroup(f"{kind}.{j}", [n for n in group_names if n in stats], stats, block, fwd)
                    if group.names and on_group(group):
                        outs = [fwd(i) for i in range(len(batches))]
                else:
                    outs = [fwd(i) for i in range(len(batches))]
                hidden = outs
                bar.update(1)
            bar.close()
            del hidden, calls
        if loose:
            with StatsHooks({n: ctx.targets[n] for n in loose}, needs) as hooks:
                for batch in batches:
                    hooks.token_mask = _mask(batch)
                    with torch.no_grad():
                        forward_model(model, batch)
            stats = hooks.seen()
            _warn_unseen(ctx, loose, stats)
            if stats:
                on_group(BlockGroup("loose", [n for n in loose if n in stats], stats))


def _capture(ctx: Any, layers: nn.ModuleList, upto: int, batches: list[dict[str, Any]], loose: list[str],
             needs: tuple[str, ...], on_group: OnGroup, kind: str):
    """Capture a stack's inputs; loose layers that ran before it form a group handled here."""
    hooks = StatsHooks({n: ctx.targets[n] for n in loose}, needs)
    with hooks:
        hidden, calls = capture_stack(ctx.model, layers, upto, batches,
                                      before_batch=lambda b: setattr(hooks, "token_mask", _mask(batches[b])))
    stats = hooks.seen()
    if not stats:
        return hidden, calls, loose
    done = [n for n in loose if n in stats]
    if on_group(BlockGroup(f"before-{kind}", done, stats)):
        hidden, calls = capture_stack(ctx.model, layers, upto, batches)
    return hidden, calls, [n for n in loose if n not in stats]


def _warn_unseen(ctx: Any, names: list[str], stats: dict[str, LinearStats]) -> None:
    missed = [n for n in names if n not in stats]
    if missed:
        ctx.log(f"calibration: {len(missed)} layer(s) received no tokens ({', '.join(missed[:3])}...); "
                "they get no statistics and fall back to the method's data-free path")


def calibration_stats(ctx: Any, names: Iterable[str], needs: Iterable[str] = ("absmax",), *,
                  progress: bool = False) -> dict[str, LinearStats]:
    """Calibration statistics of ``names`` on the current model, without edits (all groups merged). Not to be
    confused with :func:`spikemllm.collect_stats`, which counts spikes of a converted model's run."""
    out: dict[str, LinearStats] = {}

    def keep(group: BlockGroup) -> bool:
        out.update(group.stats)
        return False

    run_blockwise(ctx, names, needs, keep, desc="statistics", progress=progress)
    return out
