"""SmoothQuant (Xiao et al., 2023): move activation outliers into the weights with per-channel factors.

Why: a per-token activation quantizer spends its range on the few channels with large values; dividing input
channel ``j`` by ``s_j`` and multiplying weight column ``j`` by ``s_j`` computes the same function with a
flatter activation. ``s_j = max|X_j|**alpha / max|W_:,j|**(1 - alpha)`` balances the difficulty between the two.

Where ``1/s`` goes, tried in order for each set of target layers that share one input tensor:

1. the module that produced that input inside the block, when it is a norm the model map names for the block
   (:meth:`~spikemllm.models.ModelMap.block_layout`; weight, and bias, divided by ``s``) or a linear (output
   rows divided by ``s``);
2. another linear of the block whose outputs reach the input linearly (``v_proj -> o_proj``,
   ``up_proj -> down_proj``), found by trial;
3. otherwise an online :class:`~spikemllm.methods.online.ChannelScale` in the layers' ``input_transform``.

A migration is kept only if a *random probe* scale migrated the same way leaves the block's output on a
calibration batch unchanged (to 1e-4 relative). This finds the right absorber without knowing the family's
layout's fine print and refuses unsafe ones: a post-LN norm whose output also feeds the residual, a
``1 + weight`` norm, a grouped-query value projection shared by several heads. Layers outside blocks (projectors) use (3).

Options (``method_options={"smoothquant": {...}}``): ``alpha`` (0.5), ``migrate`` (True; False = always
online), ``progress``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..calibrate import BlockGroup, read_param, run_blockwise, write_param
from ..models.base import ModelMap
from .base import Method, QuantContext, declare_method
from .online import ChannelScale, then

PROBE_TOL = 1e-4


def smoothing_factors(act_absmax: torch.Tensor, w_absmax: torch.Tensor, alpha: float) -> torch.Tensor:
    """``s = act**alpha / w**(1-alpha)`` per input channel; 1 where either side is zero."""
    assert act_absmax.shape == w_absmax.shape and act_absmax.dim() == 1, (act_absmax.shape, w_absmax.shape)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"smoothquant alpha={alpha} is out of range; allowed values: 0 <= alpha <= 1")
    a, w = act_absmax.float(), w_absmax.float()
    s = a.pow(alpha) / w.pow(1.0 - alpha)
    return torch.where((a > 0) & (w > 0) & torch.isfinite(s), s, torch.ones_like(s)).clamp(min=1e-5)


def _sig(t: torch.Tensor) -> tuple:
    """Identity of a tensor's values: same memory, shape and strides."""
    return (t.data_ptr(), tuple(t.shape), t.stride())


def block_norms(mm: ModelMap, group: BlockGroup) -> list[nn.Module]:
    """The norms of the group's block, as the model map's block layout names them (none for loose groups)."""
    kind = group.label.split(".", 1)[0]
    lay = mm.block_layout(kind) if kind in ("lm", "vision") and group.block is not None else None
    if lay is None:
        return []
    have = dict(group.block.named_modules())
    return [have[n] for n in lay.norm_names if n in have]


def _trace(group: BlockGroup, targets: dict[str, nn.Module], norms: list[nn.Module]
           ) -> tuple[dict[str, tuple], dict[tuple, nn.Module]]:
    """Input signature of each group layer, and which block linear or norm produced each signature (batch 0)."""
    inputs: dict[str, tuple] = {}
    produced: dict[tuple, nn.Module] = {}

    alive: list[torch.Tensor] = []  # keep traced tensors alive: freed memory must not be reused by another

    def seen_input(name: str):
        def pre(m: nn.Module, args: tuple) -> None:
            inputs.setdefault(name, _sig(args[0]))
            alive.append(args[0])
        return pre

    def made(m: nn.Module, args: tuple, out: object) -> None:
        if isinstance(out, torch.Tensor):
            produced.setdefault(_sig(out), m)
            alive.append(out)

    hs = [targets[n].register_forward_pre_hook(seen_input(n)) for n in group.names]
    producers = [m for m in group.block.modules() if isinstance(m, nn.Linear)]
    producers += [m for m in norms if all(m is not p for p in producers)]
    hs += [m.register_forward_hook(made) for m in producers]
    try:
        group.forward(0)
    finally:
        for h in hs:
            h.remove()
    return inputs, produced


def _absorb(producer: nn.Module, consumers: list[nn.Module], s: torch.Tensor) -> dict:
    """Divide ``producer``'s output channels by ``s``, multiply consumers' input columns by ``s``; returns the
    old values for :func:`_restore`."""
    old = {}
    for p in ("weight", "bias"):
        if getattr(producer, p, None) is None:
            continue
        v = read_param(producer, p)
        old[(producer, p)] = v
        write_param(producer, p, v / (s if v.dim() == 1 else s.unsqueeze(1)))
    for c in consumers:
        w = read_param(c, "weight")
        old.setdefault((c, "weight"), w)
        write_param(c, "weight", w * s)
    return old


def _restore(old: dict) -> None:
    for (mod, p), v in old.items():
        write_param(mod, p, v)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(((a - b).abs().max() <= PROBE_TOL * b.abs().max().clamp(min=1e-12)).item())


@dataclass(frozen=True)
class SmoothQuantOptions:
    """``method_options={"smoothquant": {...}}`` (see the module docstring)."""

    alpha: float = 0.5
    migrate: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"smoothquant alpha={self.alpha} is out of range; allowed values: 0 <= alpha <= 1")


@declare_method("smoothquant", "transform", SmoothQuantOptions, needs_calibration=True)
class SmoothQuant(Method):
    def apply(self, ctx: QuantContext) -> None:
        alpha, migrate = float(self.opts.alpha), self.opts.migrate
        self.placed: dict[str, str] = {}  # layer -> where its factors went (for reports and tests)

        def on_group(group: BlockGroup) -> bool:
            sets: dict[tuple, list[str]] = {}
            produced: dict[tuple, nn.Module] = {}
            if migrate and group.forward is not None:
                inputs, produced = _trace(group, ctx.targets, block_norms(ctx.model_map, group))
                for n in group.names:
                    sets.setdefault(inputs.get(n, ("alone", n)), []).append(n)
            else:
                sets = {("alone", n): [n] for n in group.names}
            ref = group.forward(0) if group.forward is not None else None
            for sig, names in sets.items():
                mods = [ctx.targets[n] for n in names]
                act = torch.stack([group.stats[n].absmax.cpu() for n in names]).amax(0)
                wmax = torch.stack([read_param(m, "weight").abs().amax(0) for m in mods]).amax(0)
                s = smoothing_factors(act, wmax, alpha)
                where = self._migrate(ctx, group, names, mods, s, produced.get(sig), ref) if ref is not None and \
                    not any(n in ctx.input_transforms for n in names) and migrate else None
                if where is None:
                    for n, m in zip(names, mods):
                        write_param(m, "weight", read_param(m, "weight") * s)
                        ctx.input_transforms[n] = then(ctx.input_transforms.get(n), ChannelScale(m.in_features, 1 / s))
                for n in names:
                    self.placed[n] = where or "online"
            return False  # the float function is unchanged

        run_blockwise(ctx, [n for n in ctx.targets], ("absmax",), on_group, desc="smoothquant",
                      progress=self.opts.progress)

    def _migrate(self, ctx: QuantContext, group: BlockGroup, names: list[str], mods: list[nn.Module],
                 s: torch.Tensor, producer: nn.Module | None, ref: torch.Tensor) -> str | None:
        """Absorb ``1/s`` into the producer or a linear of the block if a probe proves it exact; else None."""
        n_in = mods[0].in_features
        cands = [producer] if producer is not None else []
        cands += [m for m in group.block.modules() if isinstance(m, nn.Linear) and m.out_features == n_in
                  and m is not producer and all(m is not c for c in mods)]
        g = torch.Generator().manual_seed(n_in)
        probe = torch.exp(0.5 * torch.randn(n_in, generator=g))
        names_of = {id(m): k for k, m in group.block.named_modules()}
        for cand in cands:
            w = getattr(cand, "weight", None)
            if w is None or w.dim() not in (1, 2) or w.shape[0] != n_in:
                continue
            old = _absorb(cand, mods, probe)
            ok = _same(group.forward(0), ref)
            _restore(old)
            if ok:
                _absorb(cand, mods, s)
                return f"{group.label}:{names_of.get(id(cand), '?')}"
        return None
