"""QuaRot-style Hadamard rotation (Ashkboos et al., 2024): remove activation outliers without changing the model.

Two mechanisms, both exact in float arithmetic (``y = x W^T = (x Q)(W Q)^T`` for orthogonal ``Q``):

* **Offline residual rotation** for RMSNorm decoder LMs. Which modules take part comes from the model map (the
  family adapter's knowledge, :mod:`spikemllm.models.blocks`): the token embedding, per block the
  ``(norm, readers)`` pairs and the residual writers, the final norm and the LM head. First every RMSNorm weight
  is folded into the linears it feeds (so the norm is plain ``x / rms(x)``, which commutes with rotations); then
  the whole residual stream is expressed in the basis ``x Q``: embeddings ``E Q``, readers ``W Q`` (the
  attention and MLP inputs, the LM head), writers ``Q^T W`` and ``b Q`` (attention and MLP outputs, and the
  projector's last linear, which writes image embeddings into the stream). No run-time cost.
* **Online rotation** for every other target: ``input_transform = Q`` and ``W <- W Q``. In the decoder this
  covers the residual writers (QuaRot's online Hadamard on the MLP's down projection input); elsewhere (vision
  blocks, projectors, post-norm encoders) it is the generic path for any Linear.

The residual ``Q`` is a randomised Hadamard (random signs; Kronecker fallback for non-power-of-two sizes, see
:mod:`.hadamard`). The layout and the norms are checked numerically before the offline path is used (a norm
must equal ``weight * x/rms(x)`` and commute with ``Q``); a model that fails gets the online path only.

Options (``method_options={"rotation": {...}}``): ``seed`` (0), ``offline`` (True), ``online`` (True).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..calibrate import read_param, write_param
from .base import Method, QuantContext, declare_method
from .hadamard import HadamardRotation
from .online import then

def rotate_in(lin: nn.Module, q: HadamardRotation) -> None:
    """``W <- W Q``: the layer now expects inputs ``x Q``."""
    write_param(lin, "weight", q(read_param(lin, "weight").float()))


def rotate_out(lin: nn.Module, q: HadamardRotation) -> None:
    """``W <- Q^T W``, ``b <- b Q``: the layer now writes ``y Q``."""
    write_param(lin, "weight", q(read_param(lin, "weight").float().t()).t())
    if getattr(lin, "bias", None) is not None:
        write_param(lin, "bias", q(read_param(lin, "bias").float()))


def fold_norm(norm: nn.Module, readers: list[nn.Module]) -> None:
    """Fold an RMSNorm's weight ``g`` into the linears that read it: ``W <- W diag(g)``, ``g <- 1``."""
    g = read_param(norm, "weight").float()
    for lin in readers:
        write_param(lin, "weight", read_param(lin, "weight").float() * g)
    write_param(norm, "weight", torch.ones_like(g))


def _norm_ok(norm: nn.Module, q: HadamardRotation) -> bool:
    """The norm is ``weight * x / rms(x)`` and, with weight 1, commutes with ``Q``."""
    g = read_param(norm, "weight").float()
    x = torch.randn(4, g.numel(), generator=torch.Generator().manual_seed(1)) * 3
    with torch.no_grad():
        y = norm(x).float()
        write_param(norm, "weight", torch.ones_like(g))
        y1, yq = norm(x).float(), norm(q(x)).float()
        write_param(norm, "weight", g)
    close = lambda a, b: bool(((a - b).abs().max() <= 1e-4 * b.abs().max()).item())  # noqa: E731
    return close(y, y1 * g) and close(yq, q(y1))


class DecoderLayout:
    """The modules of an RMSNorm decoder LM that the offline rotation touches, read from the model map's LM block
    layout (:meth:`~spikemllm.models.ModelMap.block_layout`), its ``embed``, ``final_norm`` and ``lm_head``.
    ``ok`` is False (with ``why``) when something is missing."""

    def __init__(self, ctx: QuantContext) -> None:
        mm = ctx.model_map
        self.ok, self.why = False, ""
        self.block = mm.block_layout("lm")
        self.layers = mm.layers("lm")
        self.embed = mm.module(mm.embed) if mm.embed is not None else None
        self.norm = mm.module(mm.final_norm) if mm.final_norm is not None else None
        self.head = mm.module(mm.lm_head) if mm.lm_head else None
        self.projector_out = self._projector_out(ctx)
        if self.block is None or not self.block.rms_norm or not self.block.norms:
            self.why = "its model map declares no RMSNorm decoder block (models.blocks)"
            return
        need = [*self.block.norm_names, *self.block.readers, *self.block.writers]
        missing = [f"layers.*.{n}" for n in need if not all(_has(l, n) for l in self.layers)]
        if not isinstance(self.embed, nn.Embedding) or self.norm is None or not isinstance(self.head, nn.Linear):
            missing.append("embed/final_norm/lm_head")
        if missing:
            self.why = "missing " + ", ".join(missing)
            return
        if mm.projector is not None and self.projector_out is None:
            self.why = f"no linear in {mm.projector} writes the LM hidden size"
            return
        self.ok = True

    def _norms(self) -> list[nn.Module]:
        return [self.norm] + [l.get_submodule(n) for l in self.layers for n in self.block.norm_names]

    def _projector_out(self, ctx: QuantContext) -> nn.Linear | None:
        mm = ctx.model_map
        if mm.projector is None or self.embed is None:
            return None
        lins = [m for m in mm.module(mm.projector).modules()
                if isinstance(m, nn.Linear) and m.out_features == self.embed.embedding_dim]
        return lins[-1] if lins else None


def _has(m: nn.Module, path: str) -> bool:
    try:
        m.get_submodule(path)
        return True
    except AttributeError:
        return False


@dataclass(frozen=True)
class RotationOptions:
    """``method_options={"rotation": {...}}`` (see the module docstring)."""

    seed: int = 0
    offline: bool = True
    online: bool = True


@declare_method("rotation", "transform", RotationOptions)
class Rotation(Method):
    def apply(self, ctx: QuantContext) -> None:
        seed = self.opts.seed
        covered: set[int] = set()
        self.offline_applied = False
        if self.opts.offline:
            lay = DecoderLayout(ctx)
            q = HadamardRotation(lay.embed.embedding_dim, seed=seed, randomize=True) if lay.ok else None
            if lay.ok and not all(_norm_ok(n, q) for n in lay._norms()):
                lay.ok, lay.why = False, "a norm is not weight * x/rms(x) or does not commute with rotations"
            if lay.ok:
                covered = self._offline(ctx, lay, q)
                self.offline_applied = True
            else:
                ctx.log(f"rotation: no offline residual rotation for this {ctx.model_map.family} model ({lay.why}); "
                        "every target gets an online rotation")
        if self.opts.online:
            for name, lin in ctx.targets.items():
                if id(lin) in covered:
                    continue
                h = HadamardRotation(lin.in_features, seed=seed + 7)
                rotate_in(lin, h)
                ctx.input_transforms[name] = then(ctx.input_transforms.get(name), h)

    def _offline(self, ctx: QuantContext, lay: DecoderLayout, q: HadamardRotation) -> set[int]:
        """Fold norms and rotate the residual stream; returns ids of linears whose inputs are now rotated."""
        if lay.head.weight is lay.embed.weight:  # tied: the head gets its own copy (folding changes it)
            lay.head.weight = nn.Parameter(lay.embed.weight.detach().clone())
            for cfg in (ctx.model.config, ctx.model.config.get_text_config()):
                cfg.tie_word_embeddings = False
        covered: set[int] = set()
        for layer in lay.layers:
            for norm, names in lay.block.norms:
                readers = [layer.get_submodule(n) for n in names]
                fold_norm(layer.get_submodule(norm), readers)
                for lin in readers:
                    rotate_in(lin, q)
                    covered.add(id(lin))
            for n in lay.block.writers:
                rotate_out(layer.get_submodule(n), q)
        fold_norm(lay.norm, [lay.head])
        rotate_in(lay.head, q)
        covered.add(id(lay.head))
        write_param(lay.embed, "weight", q(read_param(lay.embed, "weight").float()))
        if lay.projector_out is not None:
            rotate_out(lay.projector_out, q)
        return covered
