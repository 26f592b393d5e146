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
    """Masks of the batch being run, read by the hooks (kept on the device they came from; a copy per other
    device a hook runs on, made once per batch)."""

    def __init__(self) -> None:
        self.vision: torch.Tensor | None = None  # bool [B, S], True = vision token
        self.valid: torch.Tensor | None = None  # bool [B, S], False = padding
        self._copies: dict[tuple[str, torch.device], torch.Tensor | None] = {}

    def set(self, vision: torch.Tensor | None, valid: torch.Tensor | None) -> None:
        self.vision = None if vision is None else vision.detach().bool()
        self.valid = None if valid is None else valid.detach().bool()
        self._copies = {}

    def on(self, name: str, device: torch.device) -> torch.Tensor | None:
        key = (name, device)
        if key not in self._copies:
            t = getattr(self, name)
            self._copies[key] = None if t is None else t.to(device, non_blocking=True)
        return self._copies[key]


def _split(ctx: _Context, lead: torch.Size, region_is_vision: bool, device: torch.device
           ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(vision mask, valid mask) flattened to the ``lead`` tokens on ``device`` (valid: None when it does not
    line up, or the region sees vision tokens only)."""
    n = 1
    for d in lead:
        n *= d
    if region_is_vision:
        return torch.ones(n, dtype=torch.bool, device=device), None
    fits = ctx.vision is not None and ctx.vision.numel() == n
    vis = ctx.on("vision", device).reshape(-1) if fits else torch.zeros(n, dtype=torch.bool, device=device)
    valid = ctx.on("valid", device).reshape(-1) if ctx.valid is not None and ctx.valid.numel() == n else None
    return vis, valid


class Observer:
    """Context manager installing the cosine and cost hooks on ``mm.model``; see the module docstring.

    The hooks never read a value back to the host: every sum stays a tensor on the device its layer runs on
    (float64 cosine sums, int64 token and MAC counts), and :meth:`run` reads them all at once at the end. On a
    GPU a read per hook would stall the pipeline hundreds of times per batch.
    """

    def __init__(self, mm: ModelMap, linears: dict[str, nn.Module], cosines: bool = True) -> None:
        self.mm, self.ctx, self.obs = mm, _Context(), Observation()
        self._handles: list[Any] = []
        self._acc: dict[tuple[str, str, str], torch.Tensor] = {}  # (kind, group, modality) -> running sum
        self._batch_tokens: dict[str, dict[str, torch.Tensor]] = {}
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

    def _add(self, key: tuple[str, str, str], value: torch.Tensor) -> None:
        old = self._acc.get(key)
        self._acc[key] = value if old is None else old + value.to(old.device)

    def _block_hook(self, group: str, kind: str):
        def hook(module: nn.Module, args: tuple, kwargs: dict[str, Any], output: Any) -> None:
            x = args[0] if args and isinstance(args[0], torch.Tensor) else kwargs.get("hidden_states")
            y = _first_tensor(output)
            if x is None or y is None or x.shape != y.shape:
                raise UnsupportedModel(f"cannot read the hidden states of block {group} ({type(module).__name__}): "
                                       "expected a tensor input and an output of the same shape")
            cos = F.cosine_similarity(x.detach().double(), y.detach().to(x.device).double(), dim=-1).reshape(-1)
            vis, valid = _split(self.ctx, x.shape[:-1], kind == "vision", cos.device)
            keep = valid if valid is not None else torch.ones_like(vis)
            for m, sel in (("vision", vis & keep), ("text", ~vis & keep)):
                self._add(("cos_sum", group, m), torch.where(sel, cos, 0.0).sum())
                self._add(("cos_count", group, m), sel.sum())
        return hook

    def _linear_hook(self, group: str, lin: nn.Module, vis_region: bool):
        per_tok = int(lin.in_features) * int(lin.out_features)

        def hook(module: nn.Module, args: tuple) -> None:
            x = args[0]
            vis, valid = _split(self.ctx, x.shape[:-1], vis_region, x.device)
            keep = valid if valid is not None else torch.ones_like(vis)
            counts = {"vision": (vis & keep).sum(), "text": (~vis & keep).sum()}  # int64, on x's device
            bt = self._batch_tokens.setdefault(group, {})
            for m, k in counts.items():
                self._add(("macs", group, m), k * per_tok)
                bt[m] = k if m not in bt else torch.maximum(bt[m], k.to(bt[m].device))
        return hook

    def run(self, model: nn.Module, calib: Iterable[dict[str, Any]]) -> Observation:
        """Forward every batch (no grad) with the hooks installed; returns the observation."""
        from ..placement import input_device, to_device

        device = input_device(model)
        with torch.no_grad():
            for batch in calib:
                batch = to_device(batch, device)
                am = batch.get("attention_mask")
                self.ctx.set(self.mm.vision_mask(batch), am if isinstance(am, torch.Tensor) and am.dim() == 2
                             else None)
                self._batch_tokens = {}
                model(**batch)
                for g, bt in self._batch_tokens.items():
                    for m, k in bt.items():
                        self._add(("tokens", g, m), k)
        return self._read()

    def _read(self) -> Observation:
        """Every sum to plain numbers, one device-to-host copy per device."""
        keys = list(self._acc)
        groups: dict[tuple[torch.device, bool], list[int]] = {}  # (device, is float) -> key indices
        for i, k in enumerate(keys):
            t = self._acc[k]
            groups.setdefault((t.device, t.is_floating_point()), []).append(i)
        values: list[float | int] = [0] * len(keys)
        for (_, is_float), idx in groups.items():
            dtype = torch.float64 if is_float else torch.int64  # MAC counts stay exact integers
            for i, v in zip(idx, torch.stack([self._acc[keys[i]].to(dtype) for i in idx]).tolist()):
                values[i] = v
        obs = self.obs
        for (kind, g, m), v in zip(keys, values):
            target = {"cos_sum": obs.cos_sum, "cos_count": obs.cos_count, "macs": obs.macs,
                      "tokens": obs.tokens}[kind]
            zero = 0.0 if kind == "cos_sum" else 0
            cell = target.setdefault(g, {mm: zero for mm in MODALITIES})
            cell[m] = float(v) if kind == "cos_sum" else int(v)
        for g in obs.macs:  # a group whose linears ran reports tokens too, as before
            obs.tokens.setdefault(g, {m: 0 for m in MODALITIES})
        return obs

    def __enter__(self) -> "Observer":
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def observe(mm: ModelMap, linears: dict[str, nn.Module], calib: Iterable[dict[str, Any]],
            cosines: bool = True) -> Observation:
    """Run ``calib`` through ``mm.model`` and return cosines per block and MACs per group and modality."""
    with Observer(mm, linears, cosines=cosines) as ob:
        return ob.run(mm.model, calib)
