"""Spiking attention, registered through transformers' attention-function interface.

Per head, for query token ``i`` (``T_i`` steps) and key token ``j`` (``T_j`` steps):

* Q, K and V are quantized per token (``T`` of their token, symmetric); K and V codes are what their neurons
  sent, accumulated into the KV cache as integers;
* ``QK^T`` is spike-driven: Q's spikes gate rows of the integer K codes, ``scores = acc * s_q * s_k * scaling``;
* softmax (float, as every converter does) gives ``P``; the value scales are folded in, ``P~_ij = P_ij s_v_j``
  (non-negative, so its spikes are binary), and ``P~`` is quantized per query row at ``T_i``;
* ``PV`` is spike-driven: ``P~``'s spikes gate rows of the integer V codes, ``out = acc * s_p``.

Folding ``s_v`` into ``P`` keeps every product integer with one scale per row and keeps attention causal (no
scale computed over future keys). ``fakequant`` computes the same quantities from dequantized operands with
float matmuls: the ANN reference. ``faithful`` equals ``fused`` bit for bit.

Both spiking products run on int8 codes into int32 (``torch._int_mm``) when the codes fit int8 and the sums
fit int32 (``backend`` ``auto``), else on integer-valued floats as before (``backend="float"`` forces that);
both backends give the same outputs bit for bit. Grouped KV heads are never copied: the queries of the ``g``
heads that share a KV head are stacked as rows of one product against that KV head's codes.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn

from ..coding import Coder, make_coder
from ..quant import QuantSpec, Quantized, quantize, quantize_int8
from ..quant.quantizer import INT8_QMAX
from .modality import current_kv_vision_mask, current_vision_mask
from .spike_matmul import INT_BOUND, exact_dtype, int_matmul, int_mm_available, spike_matmul

ATTN_NAME = "spikemllm_spike"


@dataclass
class SpikeAttentionSpec:
    """Attached to an attention module as ``module._spike_attn`` by :func:`spikemllm.convert`."""

    coder: str
    t_text: int
    t_vision: int
    region: str  # "vision" (every token at t_vision) or "lm"
    mode: str = "fused"
    signed: bool = True
    backend: str = "auto"  # "auto" (int8 kernels where exact), "int" or "float": see spikemllm.nn.set_backend


@functools.lru_cache(maxsize=64)
def _coder_and_rows(coding: str, t_max: int) -> tuple[Coder, QuantSpec]:
    """The coder and the per-row code spec of a spiking attention (built once, not per call)."""
    coder = make_coder(coding, timesteps=t_max, signed=True)
    return coder, QuantSpec(bits=max(2, coder.bits), symmetric=True, granularity="per-token")


def _token_t(spec: SpikeAttentionSpec, mask: torch.Tensor | None, b: int, s: int, device: torch.device
             ) -> torch.Tensor:
    if spec.region == "vision":
        return torch.full((b, s), spec.t_vision, dtype=torch.int64, device=device)
    if mask is None or mask.shape[-1] != s or mask.numel() != b * s:
        return torch.full((b, s), spec.t_text, dtype=torch.int64, device=device)
    return torch.where(mask.reshape(b, s).to(device), spec.t_vision, spec.t_text).to(torch.int64)


def spike_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                    attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                    **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention function with the eager signature: query ``[B, H, Sq, D]``, key/value ``[B, Hkv, Sk, D]``."""
    spec: SpikeAttentionSpec | None = getattr(module, "_spike_attn", None)
    if spec is None:
        raise ValueError(f"{type(module).__name__} runs spiking attention but was not converted; "
                         "convert the whole model with spikemllm.convert(model, SpikeConfig(attention='spike'))")
    b, h, sq, d = query.shape
    sk = key.shape[2]
    scaling = d ** -0.5 if scaling is None else scaling
    coder, rows = _coder_and_rows(spec.coder, max(spec.t_text, spec.t_vision))
    qmask = current_vision_mask()
    kmask = current_kv_vision_mask()
    use_int = spec.mode != "fakequant" and _use_int(spec, coder, d, sk, query.device)
    uniform = _uniform_t(spec, qmask, kmask) if use_int else None
    if uniform is not None:  # one T for every token: scalar code ranges (a tensor clamp costs a pass more)
        qm = coder.qmax_for(uniform)
        return _int_attention(spec, coder, rows, query, key, value, attention_mask, scaling, uniform, qm, qm)
    t_q = _token_t(spec, qmask, b, sq, query.device)
    t_k = _token_t(spec, kmask if kmask is not None else qmask, b, sk, query.device)
    qmax_q = coder.qmax_for(t_q)[:, None, :, None]  # [B, 1, Sq, 1]
    qmax_k = coder.qmax_for(t_k)[:, None, :, None]  # [B, 1, Sk, 1]
    if use_int:
        return _int_attention(spec, coder, rows, query, key, value, attention_mask, scaling, t_q, qmax_q, qmax_k)
    qq = quantize(query.float(), rows, qmax=qmax_q)
    kq = quantize(key.float(), rows, qmax=qmax_k)
    vq = quantize(value.float(), rows, qmax=qmax_k)
    if key.shape[1] != h:  # grouped KV heads: quantize once per KV head (per-row, so identical), then share
        g = h // key.shape[1]
        kq = Quantized(kq.q.repeat_interleave(g, dim=1), kq.scale.repeat_interleave(g, dim=1), None)
        vq = Quantized(vq.q.repeat_interleave(g, dim=1), vq.scale.repeat_interleave(g, dim=1), None)
    faithful = spec.mode == "faithful"
    t_max = int(t_q.max())
    tq_b = t_q[:, None, :, None]
    if spec.mode == "fakequant":
        scores = torch.matmul(qq.dequantize(), kq.dequantize().transpose(-1, -2)) * scaling
    else:
        dt = exact_dtype(d * coder.qmax ** 2)
        acc = spike_matmul(qq.q.to(dt), tq_b, t_max, coder, kq.q.to(dt).transpose(-1, -2), faithful)
        scores = (acc.float() * qq.scale) * kq.scale.transpose(-1, -2) * scaling
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask[..., :sk]
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
    # An all-zero value row gets the quantizer's placeholder scale 1; folded into P it would swamp the row's
    # real entries (P~ is quantized per row) and zero the output. Its codes are 0, so its exact scale is 0.
    s_v = torch.where(vq.q.abs().amax(-1, keepdim=True) > 0, vq.scale, torch.zeros_like(vq.scale))
    pt = probs * s_v.transpose(-1, -2)  # P~_ij = P_ij * s_v_j >= 0
    pq = quantize(pt, rows, qmax=qmax_q)
    if spec.mode == "fakequant":
        out = torch.matmul(pq.dequantize(), vq.q)
    else:
        dt = exact_dtype(sk * coder.qmax ** 2)
        acc = spike_matmul(pq.q.to(dt), tq_b, t_max, coder, vq.q.to(dt), faithful)
        out = acc.float() * pq.scale
    out = out.to(query.dtype).transpose(1, 2).contiguous()
    return out, probs.to(query.dtype)


def _uniform_t(spec: SpikeAttentionSpec, qmask: torch.Tensor | None, kmask: torch.Tensor | None) -> int | None:
    """The one T of every query and key token when there is one (what :func:`_token_t` would fill in)."""
    if spec.region == "vision":
        return spec.t_vision
    if spec.t_text == spec.t_vision or (qmask is None and kmask is None):
        return spec.t_text
    return None


def _use_int(spec: SpikeAttentionSpec, coder: Coder, d: int, sk: int, device: torch.device) -> bool:
    """Integer kernels unless asked not to, or the codes exceed int8, or a sum could exceed int32."""
    if spec.backend == "float":
        return False
    why = ("codes beyond int8" if coder.qmax > INT8_QMAX else
           "sums beyond int32" if max(d, sk) * coder.qmax ** 2 >= INT_BOUND else
           "no int8 matmul" if not int_mm_available(device) else "")
    if why and spec.backend == "int":
        from ..errors import ConfigError
        raise ConfigError(f"backend='int' cannot run this spiking attention exactly ({why}); use backend 'auto'")
    return not why


def _int_product(codes: torch.Tensor, t: torch.Tensor, t_max: int, coder: Coder, other: torch.Tensor,
                 faithful: bool) -> torch.Tensor:
    """int32 ``codes @ other`` per head: codes ``[B, H, S, X]`` int8, other ``[B, Hkv, X, Y]`` int8.

    The ``g = H / Hkv`` query heads sharing a KV head become ``g * S`` rows of one product. Faithful mode takes
    the coder's spike planes (in the ``[B, H, S, X]`` layout of the codes), stacks the steps as rows of one
    product and combines them in int32 (Horner for TC-LIF, a sum for IF).
    """
    b, h, s, x = codes.shape
    hkv = other.shape[1]
    rows = (h // hkv) * s
    if not faithful:
        return int_matmul(codes.reshape(b, hkv, rows, x), other)
    planes = [p.reshape(b, hkv, rows, x) for p in coder.planes(codes, t, t_max)]
    parts = int_matmul(torch.cat(planes, dim=-2), other).unflatten(-2, (t_max, rows))  # [B, Hkv, T, rows, Y]
    horner = coder.coding == "tc-lif"
    acc = parts[:, :, 0].clone()
    for i in range(1, t_max):
        acc = acc.mul_(2).add_(parts[:, :, i]) if horner else acc.add_(parts[:, :, i])
    return acc


def _quantize_rows(rows: QuantSpec, *parts: tuple[torch.Tensor, torch.Tensor | int]) -> list[Quantized]:
    """Per-row int8 codes of several tensors with one quantizer call (rows are independent, so the codes and
    scales are those of separate calls; one call saves a dozen small kernels per tensor)."""
    d = parts[0][0].shape[-1]
    flat = torch.cat([x.reshape(-1, d) for x, _ in parts]).float()
    if all(isinstance(qm, int) and qm == parts[0][1] for _, qm in parts):
        qmax: torch.Tensor | int = parts[0][1]
    else:
        qmax = torch.cat([(qm.expand(*x.shape[:-1], 1) if isinstance(qm, torch.Tensor) else
                           torch.full((*x.shape[:-1], 1), qm, device=x.device)).reshape(-1, 1) for x, qm in parts])
    qz = quantize_int8(flat, rows, qmax=qmax)
    out, i = [], 0
    for x, _ in parts:
        n = x.numel() // d
        out.append(Quantized(qz.q[i:i + n].view(x.shape), qz.scale[i:i + n].view(*x.shape[:-1], 1), None))
        i += n
    return out


def _int_attention(spec: SpikeAttentionSpec, coder: Coder, rows: QuantSpec, query: torch.Tensor,
                   key: torch.Tensor, value: torch.Tensor, attention_mask: torch.Tensor | None, scaling: float,
                   t_q: torch.Tensor | int, qmax_q: torch.Tensor | int, qmax_k: torch.Tensor | int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The float path's arithmetic on int8 codes: every float operation is the same, in the same order."""
    b, h, sq, d = query.shape
    hkv, sk = key.shape[1], key.shape[2]
    g = h // hkv
    faithful = spec.mode == "faithful"
    t_max = t_q if isinstance(t_q, int) else int(t_q.max())
    tq_b = t_q if isinstance(t_q, int) else t_q[:, None, :, None]
    qq, kq, vq = _quantize_rows(rows, (query, qmax_q), (key, qmax_k), (value, qmax_k))
    acc = _int_product(qq.q, tq_b, t_max, coder, kq.q.transpose(-1, -2), faithful)  # [B, Hkv, g*Sq, Sk]
    # [B, Hkv, g, Sq, Sk]: per query head and token, times per key token (the KV head's scale, shared)
    scores = (acc.float().view(b, hkv, g, sq, sk) * qq.scale.view(b, hkv, g, sq, 1)) \
        * kq.scale.transpose(-1, -2).unsqueeze(2) * scaling
    scores = scores.view(b, h, sq, sk)
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask[..., :sk]
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
    # See the float path: an all-zero value row has codes 0, so its exact scale is 0.
    s_v = torch.where(vq.q.abs().amax(-1, keepdim=True) > 0, vq.scale, torch.zeros_like(vq.scale))
    pt = (probs.view(b, hkv, g, sq, sk) * s_v.transpose(-1, -2).unsqueeze(2)).view(b, h, sq, sk)
    pq = quantize_int8(pt, rows, qmax=qmax_q)
    acc = _int_product(pq.q, tq_b, t_max, coder, vq.q, faithful)  # [B, Hkv, g*Sq, D]
    out = acc.float().view(b, h, sq, d) * pq.scale
    out = out.to(query.dtype).transpose(1, 2).contiguous()
    return out, probs.to(query.dtype)


_registered = False


def register_spike_attention() -> str:
    """Register :func:`spike_attention` (and the eager mask it expects) with transformers, once."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface, AttentionMaskInterface
        from transformers.masking_utils import eager_mask

        AttentionInterface.register(ATTN_NAME, spike_attention)
        AttentionMaskInterface.register(ATTN_NAME, eager_mask)
        _registered = True
    return ATTN_NAME
