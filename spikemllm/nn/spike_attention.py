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
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..coding import make_coder
from ..quant import QuantSpec, Quantized, quantize
from .modality import current_kv_vision_mask, current_vision_mask
from .spike_matmul import exact_dtype, spike_matmul

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
    coder = make_coder(spec.coder, timesteps=max(spec.t_text, spec.t_vision), signed=True)
    qmask = current_vision_mask()
    kmask = current_kv_vision_mask()
    t_q = _token_t(spec, qmask, b, sq, query.device)
    t_k = _token_t(spec, kmask if kmask is not None else qmask, b, sk, query.device)
    qmax_q = coder.qmax_for(t_q)[:, None, :, None]  # [B, 1, Sq, 1]
    qmax_k = coder.qmax_for(t_k)[:, None, :, None]  # [B, 1, Sk, 1]
    rows = QuantSpec(bits=max(2, coder.bits), symmetric=True, granularity="per-token")
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
