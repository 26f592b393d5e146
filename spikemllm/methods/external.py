"""Weights quantized by other tools: compressed-tensors ``pack-quantized`` checkpoints (llm-compressor's output).

Why: a model already quantized elsewhere (GPTQ/AWQ runs of llm-compressor, published W4A16 checkpoints) carries
integer weights and scales; spiking them needs only those integers, no re-quantization. This module reads the
checkpoint itself (``config.json`` + safetensors, no compressed-tensors import) and hands the integers to
:func:`spikemllm.convert` as the ``"external"`` weight method::

    model = load_float_model(path, AutoModelForCausalLM)    # structure, norms, biases; weights dequantized
    convert(model, SpikeConfig(method="external", method_options={"external": {"path": path}},
                               weight_bits=4, weight_granularity="per-group", group_size=128))

The format, as compressed-tensors writes it: per quantized Linear ``<name>.weight_packed`` (int32; along each
row, element ``i`` occupies bits ``i*b .. i*b+b-1`` of the row's little-endian bit stream, stored as
``code + 2**(b-1)``), ``<name>.weight_scale`` (``[out, 1]`` per channel, ``[out, in/group]`` per group) and
``<name>.weight_shape``; ``config.json`` holds ``quantization_config`` with the weight arguments.

Boundary (refused with a message): asymmetric weights (zero points), float formats (fp8/nvfp4/mxfp), tensor
strategies, and checkpoints with a ``transform_config`` (online rotations we would have to rebuild).
compressed-tensors' symmetric int range is ``[-2**(b-1), 2**(b-1)-1]``; spikemllm's is symmetric, so a checkpoint
that uses the code ``-2**(b-1)`` needs ``weight_bits = b + 1`` to stay exact -- the error says so.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..quant import Quantized
from .base import Method, QuantContext, declare_method


@dataclass
class ExternalCheckpoint:
    """Integer weights of a checkpoint: ``weights[name]`` shaped like :func:`spikemllm.quant.quantize` output."""

    weights: dict[str, Quantized]
    bits: int
    granularity: str                 # "per-channel" or "per-group"
    group_size: int | None

    def bits_needed(self) -> int:
        """Smallest symmetric spikemllm weight width holding every code."""
        top = max(int(q.q.abs().max()) for q in self.weights.values())
        return max(2, top.bit_length() + 1)


def unpack_int32(packed: torch.Tensor, bits: int, cols: int) -> torch.Tensor:
    """Signed codes ``[rows, cols]`` (int64) from densely packed int32 words (see module docstring)."""
    assert packed.dtype == torch.int32 and packed.dim() == 2, (packed.dtype, packed.shape)
    words = packed.to(torch.int64) & 0xFFFFFFFF                        # unsigned view
    idx = torch.arange(cols)
    start = idx * bits
    w0, off = start // 32, start % 32
    lo = words[:, w0] >> off
    w1 = torch.clamp(w0 + 1, max=words.shape[1] - 1)
    hi = torch.where(off + bits > 32, words[:, w1] << (32 - off), torch.zeros_like(lo))
    return ((lo | hi) & ((1 << bits) - 1)) - (1 << (bits - 1))


def _tensors(path: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file
    index = os.path.join(path, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    out: dict[str, torch.Tensor] = {}
    for f in files:
        out.update(load_file(os.path.join(path, f)))
    return out


def _weight_args(qc: dict[str, Any]) -> dict[str, Any]:
    if qc.get("quant_method") != "compressed-tensors":
        raise CheckpointError(f"quantization_config.quant_method={qc.get('quant_method')!r}; this reader takes "
                              "compressed-tensors checkpoints")
    if qc.get("transform_config"):
        raise CheckpointError("the checkpoint has a transform_config (online rotations); spikemllm does not rebuild "
                              "them -- quantize the float model with method=['rotation', 'gptq'] instead")
    args = [g.get("weights") or {} for g in qc.get("config_groups", {}).values()]
    if not args or any(a != args[0] for a in args):
        raise CheckpointError("the checkpoint needs exactly one weight scheme shared by its config groups")
    a = args[0]
    fmt = qc.get("format")
    if fmt != "pack-quantized" or a.get("type") != "int" or not a.get("symmetric", False):
        raise CheckpointError(f"format={fmt!r}, type={a.get('type')!r}, symmetric={a.get('symmetric')!r} is not "
                              "supported; allowed: pack-quantized symmetric int weights")
    if a.get("strategy") not in ("channel", "group"):
        raise CheckpointError(f"weight strategy {a.get('strategy')!r} is not supported; allowed: channel, group")
    return a


def read_compressed_tensors(path: str) -> ExternalCheckpoint:
    """Integer weights and scales of a compressed-tensors pack-quantized checkpoint folder."""
    with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
        qc = json.load(f).get("quantization_config")
    if qc is None:
        raise CheckpointError(f"{path}/config.json has no quantization_config; it is not a quantized checkpoint")
    a = _weight_args(qc)
    bits, group = int(a["num_bits"]), (int(a["group_size"]) if a["strategy"] == "group" else None)
    t = _tensors(path)
    weights: dict[str, Quantized] = {}
    for key in [k for k in t if k.endswith(".weight_packed")]:
        name = key[: -len(".weight_packed")]
        out, n = (int(v) for v in t[f"{name}.weight_shape"])
        q = unpack_int32(t[key], bits, n).float()
        scale = t[f"{name}.weight_scale"].float().reshape(out, -1)
        assert q.shape == (out, n), (name, q.shape)
        if group is None:
            weights[name] = Quantized(q, scale[:, :1].contiguous(), None)
        else:
            weights[name] = Quantized(q.reshape(out, n // group, group), scale.unsqueeze(-1).contiguous(), None)
    if not weights:
        raise CheckpointError(f"{path} holds no *.weight_packed tensors")
    return ExternalCheckpoint(weights, bits, "per-group" if group else "per-channel", group)


def load_float_model(path: str, model_cls: Any) -> nn.Module:
    """``model_cls`` built from the checkpoint's config with every tensor loaded and each quantized Linear's
    weight set to its dequantized value (what the checkpoint computes); the structure :func:`convert` needs."""
    from transformers import AutoConfig
    cfg = AutoConfig.from_pretrained(path)
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    model = model_cls._from_config(cfg).eval()
    ck, t = read_compressed_tensors(path), _tensors(path)
    state = {k: v for k, v in t.items() if not k.rsplit(".", 1)[-1].startswith("weight_")}
    for name, q in ck.weights.items():
        state[f"{name}.weight"] = q.dequantize().reshape(model.get_submodule(name).weight.shape)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if "rotary" not in k]:
        raise CheckpointError(f"checkpoint does not match {model_cls.__name__}: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}")
    return model


@dataclass(frozen=True)
class ExternalOptions:
    """``method_options={"external": {"path": <checkpoint folder>}}``."""

    path: str | None = None

    def __post_init__(self) -> None:
        if not self.path:
            raise ConfigError('method "external" needs method_options={"external": {"path": <checkpoint folder>}}')


@declare_method("external", "weights", ExternalOptions)
class External(Method):
    """Use the integer weights of a compressed-tensors checkpoint (option ``path``) for the targets it holds."""

    def apply(self, ctx: QuantContext) -> None:
        path = self.opts.path
        if ctx.input_transforms or len(ctx.config.methods) > 1:
            raise ConfigError("method 'external' must be used alone: its integers are in the checkpoint's basis, "
                              "which a transform (smoothquant/rotation) would change")
        ck = read_compressed_tensors(path)
        spec = ctx.weight_spec()
        if spec.granularity != ck.granularity or (ck.group_size is not None and spec.group_size != ck.group_size):
            raise ConfigError(f"the checkpoint is {ck.granularity}"
                              f"{'' if ck.group_size is None else f' with group_size={ck.group_size}'}; set "
                              "SpikeConfig(weight_granularity=..., group_size=...) to match")
        if ck.bits_needed() > spec.bits:
            raise ConfigError(f"the checkpoint's {ck.bits}-bit codes include -{2 ** (ck.bits - 1)}, which symmetric "
                              f"spikemllm weights hold only from weight_bits={ck.bits_needed()}; set it")
        for name, lin in ctx.targets.items():
            q = ck.weights.get(name)
            if q is None:
                continue
            if q.q.numel() != lin.weight.numel():
                raise CheckpointError(f"{name}: checkpoint weight has {q.q.numel()} codes, the model's has "
                                      f"{lin.weight.numel()}")
            ctx.weights[name] = q
        left = [n for n in ctx.targets if n not in ctx.weights]
        if left:
            ctx.log(f"external: {len(left)} target(s) not in the checkpoint get RTN ({', '.join(left[:3])}...)")
