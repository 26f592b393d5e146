"""How much the output moves when one unit's timesteps change: the measured half of MSTS.

A converted model is changed *in place* for a measurement and restored afterwards
(:func:`timesteps_override`): the affected :class:`~spikemllm.SpikeLinear` modules are rebuilt from their
spec with only the timesteps replaced (``layer.respec(dataclasses.replace(layer.spec, ...))``, the weights
reloaded), and the spiking-attention specs of the block likewise. This computes exactly what ``convert`` with the same ``layer_timesteps`` computes
(a test checks it bit for bit) without quantizing the model again for each of the many settings a search
visits.

The output change is the KL divergence ``KL(p_ref || p)`` of next-token distributions, averaged over the
text positions of the calibration batches (vision positions predict nothing a user sees; padding is
skipped), or only over the positions that predict ``labels`` when the batches carry them.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, DataError, UnsupportedModel
from ..models.base import ModelMap
from ..nn.spike_linear import SpikeLinear
from .units import MODALITIES, group_of


def spike_groups(model: nn.Module, mm: ModelMap) -> dict[str, list[str]]:
    """Group -> names of the SpikeLinear modules in it (a converted model)."""
    out: dict[str, list[str]] = {}
    for name, mod in model.named_modules():
        if isinstance(mod, SpikeLinear):
            out.setdefault(group_of(mm, name), []).append(name)
    if not out:
        raise ConfigError("the model has no SpikeLinear layers; convert it first (spikemllm.convert)")
    return out


def current_timesteps(model: nn.Module, mm: ModelMap) -> dict[str, dict[str, int]]:
    """Group -> ``{"vision": Tv, "text": Tt}`` as the converted model runs now (from its first linear)."""
    out = {}
    for g, names in spike_groups(model, mm).items():
        m = model.get_submodule(names[0])
        out[g] = {"vision": int(m.t_vision), "text": int(m.t_text)}
    return out


def _set(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


def _attention_modules(model: nn.Module, mm: ModelMap, group: str) -> list[nn.Module]:
    return [mod for name, mod in model.named_modules()
            if getattr(mod, "_spike_attn", None) is not None and group_of(mm, name) == group]


@contextlib.contextmanager
def timesteps_override(model: nn.Module, mm: ModelMap, changes: Mapping[str, Mapping[str, int]]) -> Iterator[None]:
    """Run a converted ``model`` with ``changes`` (group -> ``{"vision": Tv, "text": Tt}``) inside the block.

    Partial dicts are allowed (``{"lm.2": {"text": 3}}`` changes only text). Contexts nest; each restores
    exactly the modules it replaced.
    """
    groups = spike_groups(model, mm)
    unknown = sorted(set(changes) - set(groups))
    if unknown:
        raise ConfigError(f"timesteps_override: groups {unknown} have no SpikeLinear; allowed: {sorted(groups)}")
    saved: list[tuple[str, nn.Module]] = []
    saved_attn: list[tuple[nn.Module, Any]] = []
    try:
        for g, t in changes.items():
            bad = set(t) - set(MODALITIES)
            if bad:
                raise ConfigError(f"timesteps_override[{g!r}] has keys {sorted(bad)}; allowed: vision, text")
            for name in groups[g]:
                m = model.get_submodule(name)
                spec = m.spec.with_timesteps(t)  # dataclasses.replace: every other setting is kept
                if spec == m.spec:
                    continue
                _set(model, name, m.respec(spec))
                saved.append((name, m))
            for mod in _attention_modules(model, mm, g):
                saved_attn.append((mod, mod._spike_attn))
                mod._spike_attn = mod._spike_attn.with_timesteps(t)
        yield
    finally:
        for name, m in reversed(saved):
            _set(model, name, m)
        for mod, spec in reversed(saved_attn):
            mod._spike_attn = spec


def scored_positions(mm: ModelMap, batch: dict[str, Any], logits: torch.Tensor) -> torch.Tensor:
    """Bool ``[B, S]``: text positions that are not padding (where next-token distributions are compared).

    When the batch has ``labels`` (Hugging Face convention: -100 = ignored), only the positions that predict a
    labelled token count: position ``i`` predicts ``labels[i + 1]``.
    """
    b, s = logits.shape[:2]
    dev = logits.device  # the mask is built where the logits are: no round trip through the host
    keep = torch.ones(b, s, dtype=torch.bool, device=dev)
    labels = batch.get("labels")
    if isinstance(labels, torch.Tensor) and labels.shape == (b, s):
        keep = torch.zeros(b, s, dtype=torch.bool, device=dev)
        keep[:, :-1] = labels[:, 1:].detach().to(dev) != -100
    am = batch.get("attention_mask")
    if isinstance(am, torch.Tensor) and am.shape == (b, s):
        keep &= am.detach().to(dev).bool()
    vis = mm.vision_mask(batch)
    if vis is not None and vis.shape == (b, s):
        keep &= ~vis.detach().to(dev).bool()
    return keep


def _logits(out: Any) -> torch.Tensor:
    logits = getattr(out, "logits", None)
    if logits is None and isinstance(out, (tuple, list)):
        logits = out[0]
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        raise UnsupportedModel("the model must return next-token logits [B, S, V] (a causal LM or a VLM for generation)")
    return logits


@torch.no_grad()
def log_probs(model: nn.Module, mm: ModelMap, calib: list[dict[str, Any]]) -> list[torch.Tensor]:
    """Per batch: float32 log-probabilities ``[N, V]`` at the scored positions, on the model's (output) device:
    a GPU run keeps them there, so comparing two runs never copies logits to the host."""
    from ..placement import input_device, to_device

    device = input_device(model)
    out = []
    for batch in calib:
        batch = to_device(batch, device)
        logits = _logits(model(**batch))
        keep = scored_positions(mm, batch, logits)
        out.append(F.log_softmax(logits.detach().float()[keep], dim=-1))
    return out


def kl_divergence(ref: list[torch.Tensor], new: list[torch.Tensor]) -> float:
    """Mean over positions of ``KL(p_ref || p_new)`` in nats (float64 sums: differences are tiny). The sum
    stays on the tensors' device and is read once."""
    total: torch.Tensor | None = None
    n = 0
    for r, q in zip(ref, new, strict=True):
        if r.numel() == 0:
            continue
        q = q.to(r.device)
        kl = (r.exp().double() * (r.double() - q.double())).sum(-1).clamp(min=0).sum()
        total = kl if total is None else total + kl
        n += r.shape[0]
    if n == 0 or total is None:
        raise DataError("no text positions to compare in the calibration batches; include text tokens")
    return float(total) / n


def top1_agreement(ref: list[torch.Tensor], new: list[torch.Tensor]) -> float:
    """Share of positions whose most likely next token is the same (counted on the device, read once)."""
    same: torch.Tensor | None = None
    n = 0
    for r, q in zip(ref, new, strict=True):
        hit = (r.argmax(-1) == q.to(r.device).argmax(-1)).sum()
        same = hit if same is None else same + hit
        n += r.shape[0]
    return int(same) / n if n and same is not None else 1.0
