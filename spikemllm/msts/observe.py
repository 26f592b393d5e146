"""One pass over the calibration batches that measures what MED and the cost model need.

* **Cosines.** Hooks on every block of the LM and of the vision tower take the block's input ``h_l`` and
  output ``h_{l+1}`` and average ``cos(h_l, h_{l+1})`` (per token, over the hidden dimension) separately over
  vision and text tokens. Hooks on the block lists work the same for every family, whereas
  ``output_hidden_states`` is not offered by every vision tower in the same shape.
* **Cost.** Pre-hooks on the linears that a SpikeConfig would convert count the tokens each one sees, per
  modality, and their MACs (``tokens * in * out``), per group (block or ``rest``). Cost is thus measured on
  real token counts, so a model with 64 image tokens and 20 text tokens weighs vision accordingly.

Padding tokens (``attention_mask == 0``) are left out of the cosines and of the cost: the budget is priced
over the calibration set's tokens (:mod:`.budget`), which must not depend on how the set was batched.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UnsupportedModel
from ..models.base import ModelMap
from .units import MODALITIES, group_of


@dataclass
class Observation:
    """Sums collected over the calibration set (plain numbers, ready for JSON)."""

    cos_sum: dict[str, dict[str, float]] = field(default_factory=dict)  # group -> modality -> sum of cos
    cos_count: dict[str, dict[str, int]] = field(default_factory=dict)  # group -> modality -> tokens
    macs: dict[str, dict[str, int]] = field(default_factory=dict)  # group -> modality -> MACs
    tokens: dict[str, dict[str, int]] = field(default_factory=dict)  # group -> modality -> tokens (widest linear)

    def cosine(self) -> dict[str, dict[str, float | None]]:
        """Mean cosine per group and modality (None where no token of that modality passed)."""
        out: dict[str, dict[str, float | None]] = {}
        for g, sums in self.cos_sum.items():
            out[g] = {m: (sums[m] / self.cos_count[g][m] if self.cos_count[g][m] else None) for m in MODALITIES}
        return out


def _first_tensor(x: Any) -> torch.Tensor | None:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)) and x and isinstance(x[0], torch.Tensor):
        return x[0]
    return getattr(x, "last_hidden_state", None) if not isinstance(x, (tuple, list)) else None


class _Context:
    """Masks of the batch being run, read by the hooks."""

    vision: torch.Tensor | None = None  # bool [B, S], True = vision token
    valid: torch.Tensor | None = None  # bool [B, S], False = padding


def _split(ctx: _Context, lead: torch.Size, region_is_vision: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(vision mask, valid mask) flattened to the ``lead`` tokens, or None when they do not line up."""
    n = 1
    for d in lead:
        n *= d
    if region_is_vision:
        return torch.ones(n, dtype=torch.bool), None
    fits = ctx.vision is not None and ctx.vision.numel() == n
    vis = ctx.vision.reshape(-1) if fits else torch.zeros(n, dtype=torch.bool)
    valid = ctx.valid.reshape(-1) if ctx.valid is not None and ctx.valid.numel() == n else None
    return vis, valid


class Observer:
    """Context manager installing the cosine and cost hooks on ``mm.model``; see the module docstring."""

    def __init__(self, mm: ModelMap, linears: dict[str, nn.Module], cosines: bool = True) -> None:
        self.mm, self.ctx, self.obs = mm, _Context(), Observation()
        self._handles: list[Any] = []
        if cosines:
            for kind in ("vision", "lm"):
                if mm.num_layers(kind) == 0:
                    continue
                for i, block in enumerate(mm.layers(kind)):
                    hook = self._block_hook(f"{kind}.{i}", kind)
                    self._handles.append(block.register_forward_hook(hook, with_kwargs=True))
        for name, lin in linears.items():
            vis_region = mm.region_of(name) in ("vision", "projector")
            self._handles.append(lin.register_forward_pre_hook(self._linear_hook(group_of(mm, name), lin, vis_region)))

    def _block_hook(self, group: str, kind: str):
        def hook(module: nn.Module, args: tuple, kwargs: dict[str, Any], output: Any) -> None:
            x = args[0] if args and isinstance(args[0], torch.Tensor) else kwargs.get("hidden_states")
            y = _first_tensor(output)
            if x is None or y is None or x.shape != y.shape:
                raise UnsupportedModel(f"cannot read the hidden states of block {group} ({type(module).__name__}): "
                                       "expected a tensor input and an output of the same shape")
            cos = F.cosine_similarity(x.detach().double(), y.detach().double(), dim=-1).reshape(-1).cpu()
            vis, valid = _split(self.ctx, x.shape[:-1], kind == "vision")
            keep = valid if valid is not None else torch.ones_like(vis)
            sums = self.obs.cos_sum.setdefault(group, {m: 0.0 for m in MODALITIES})
            counts = self.obs.cos_count.setdefault(group, {m: 0 for m in MODALITIES})
            for m, sel in (("vision", vis & keep), ("text", ~vis & keep)):
                sums[m] += float(cos[sel].sum())
                counts[m] += int(sel.sum())
        return hook

    def _linear_hook(self, group: str, lin: nn.Module, vis_region: bool):
        def hook(module: nn.Module, args: tuple) -> None:
            x = args[0]
            lead = x.shape[:-1]
            vis, valid = _split(self.ctx, lead, vis_region)
            keep = valid if valid is not None else torch.ones_like(vis)
            per_tok = int(lin.in_features) * int(lin.out_features)
            macs = self.obs.macs.setdefault(group, {m: 0 for m in MODALITIES})
            self.obs.tokens.setdefault(group, {m: 0 for m in MODALITIES})
            nv, nt = int((vis & keep).sum()), int((~vis & keep).sum())
            for m, k in (("vision", nv), ("text", nt)):
                macs[m] += k * per_tok
            self._batch_tokens.setdefault(group, {m: 0 for m in MODALITIES})
            bt = self._batch_tokens[group]
            bt["vision"], bt["text"] = max(bt["vision"], nv), max(bt["text"], nt)
        return hook

    def run(self, model: nn.Module, calib: Iterable[dict[str, Any]]) -> Observation:
        """Forward every batch (no grad) with the hooks installed; returns the observation."""
        with torch.no_grad():
            for batch in calib:
                self.ctx.vision = _cpu_bool(self.mm.vision_mask(batch))
                am = batch.get("attention_mask")
                self.ctx.valid = _cpu_bool(am) if isinstance(am, torch.Tensor) and am.dim() == 2 else None
                self._batch_tokens: dict[str, dict[str, int]] = {}
                model(**batch)
                for g, bt in self._batch_tokens.items():
                    toks = self.obs.tokens[g]
                    toks["vision"] += bt["vision"]
                    toks["text"] += bt["text"]
        return self.obs

    def __enter__(self) -> "Observer":
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def _cpu_bool(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach().to("cpu").bool()


def observe(mm: ModelMap, linears: dict[str, nn.Module], calib: Iterable[dict[str, Any]],
            cosines: bool = True) -> Observation:
    """Run ``calib`` through ``mm.model`` and return cosines per block and MACs per group and modality."""
    with Observer(mm, linears, cosines=cosines) as ob:
        return ob.run(mm.model, calib)
