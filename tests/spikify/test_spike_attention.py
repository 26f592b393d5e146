"""Spiking attention at the function level: the spec written out by hand, faithful == fused bit for bit,
fakequant to float rounding, unsigned P spikes, per-token T, and the all-zero value row (a bug found here:
the quantizer's placeholder scale 1 for a zero row, folded into P, swamped every real entry of P's row and
zeroed the whole attention output -- InternVL's zero-initialised CLS token triggered it)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from spikemllm.coding import IFCoder, TCLIFCoder
from spikemllm.nn import vision_mask
from spikemllm.nn.spike_attention import SpikeAttentionSpec, spike_attention
from spikemllm.quant import QuantSpec, quantize


def _module(coder="tc-lif", tt=4, tv=3, region="lm", mode="fused"):
    m = nn.Module()
    m._spike_attn = SpikeAttentionSpec(coder=coder, t_text=tt, t_vision=tv, region=region, mode=mode)
    return m


def _inputs(b=2, h=4, hkv=2, s=9, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, n, s, d, generator=g) for n in (h, hkv, hkv))
    causal = torch.full((s, s), torch.finfo(torch.float32).min).triu(1)[None, None].expand(b, 1, s, s)
    return q, k, v, causal


def _reference(q, k, v, mask, qmax_tok, scaling):
    """The documented computation, written out: per-token codes, integer QK^T, float softmax, P~ = P s_v."""
    h = q.shape[1]
    k = k.repeat_interleave(h // k.shape[1], dim=1)
    v = v.repeat_interleave(h // v.shape[1], dim=1)
    spec = QuantSpec(bits=8, symmetric=True, granularity="per-token")
    qm = qmax_tok[:, None, :, None]
    qq, kq, vq = (quantize(x, spec, qmax=qm) for x in (q, k, v))
    scores = (qq.q @ kq.q.transpose(-1, -2)) * qq.scale * kq.scale.transpose(-1, -2) * scaling + mask
    p = torch.softmax(scores, -1)
    s_v = torch.where(vq.q.abs().amax(-1, keepdim=True) > 0, vq.scale, torch.zeros_like(vq.scale))
    pq = quantize(p * s_v.transpose(-1, -2), spec, qmax=qm)
    assert bool((pq.q >= 0).all())  # probabilities are unsigned: binary spikes
    return (pq.q @ vq.q) * pq.scale


@pytest.mark.parametrize("coder,tt,tv,qmax", [("tc-lif", 4, 3, (15, 7)), ("if", 6, 5, (6, 5))])
def test_matches_the_spec_and_faithful_equals_fused(coder, tt, tv, qmax):
    q, k, v, mask = _inputs()
    vis = torch.zeros(2, 9, dtype=torch.bool)
    vis[:, 2:6] = True
    out = {}
    with vision_mask(vis):
        for mode in ("fused", "faithful", "fakequant"):
            out[mode] = spike_attention(_module(coder, tt, tv, mode=mode), q, k, v, mask, scaling=0.3)[0]
    qmax_tok = torch.where(vis, qmax[1], qmax[0])
    ref = _reference(q, k, v, mask, qmax_tok, 0.3).transpose(1, 2)
    assert out["fused"].shape == (2, 9, 4, 8)
    assert torch.equal(out["faithful"], out["fused"])
    torch.testing.assert_close(out["fused"], ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["fakequant"], ref, rtol=1e-5, atol=1e-6)
    # the vision mask matters: all-text T gives a different result
    all_text = spike_attention(_module(coder, tt, tv), q, k, v, mask, scaling=0.3)[0]
    assert not torch.equal(all_text, out["fused"])


def test_zero_value_row_does_not_zero_the_output():
    q, k, v, _ = _inputs(b=1, h=2, hkv=2, s=6)
    v[:, :, 0] = 0.0  # an all-zero value vector (e.g. a zero-initialised CLS token)
    out = spike_attention(_module(region="vision"), q, k, v, None, scaling=0.35)[0]
    ref = _reference(q, k, v, torch.zeros(()), torch.full((1, 6), 7), 0.35).transpose(1, 2)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    dense = torch.softmax(q @ k.transpose(-1, -2) * 0.35, -1) @ v
    cos = torch.nn.functional.cosine_similarity(out.flatten(), dense.transpose(1, 2).flatten(), dim=0)
    assert cos > 0.95  # before the fix: the output was exactly 0


def test_p_spikes_are_binary_and_vision_queries_fit_tv(monkeypatch):
    q, k, v, mask = _inputs()
    vis = torch.zeros(2, 9, dtype=torch.bool)
    vis[0, :4] = True
    seen = []
    orig = TCLIFCoder.planes

    def planes(self, codes, t, t_max):
        ps = list(orig(self, codes, t, t_max))
        seen.append((codes.clone(), torch.stack(ps)))
        return iter(ps)

    monkeypatch.setattr(TCLIFCoder, "planes", planes)
    with vision_mask(vis):
        spike_attention(_module(mode="faithful"), q, k, v, mask, scaling=0.3)
    (qc, qp), (pc, pp) = seen  # Q's trains, then P~'s trains
    assert qc.shape == (2, 4, 9, 8) and pc.shape == (2, 4, 9, 9)
    assert bool((pp >= 0).all()) and bool((pc >= 0).all())
    for codes, trains in ((qc, qp), (pc, pp)):
        v_rows = codes.transpose(1, 2)[vis]  # [n_vision, H, ...]
        assert float(v_rows.abs().max()) == 7 and float(codes.abs().max()) == 15
        assert not trains[0].transpose(1, 2)[vis].any()  # vision rows silent in step 0 of 4


def test_unconverted_module_is_refused():
    q, k, v, mask = _inputs()
    with pytest.raises(ValueError, match="spikemllm.convert"):
        spike_attention(nn.Module(), q, k, v, mask)


def test_if_coder_planes_used_for_if(monkeypatch):
    calls = []
    orig = IFCoder.planes
    monkeypatch.setattr(IFCoder, "planes", lambda self, *a: (calls.append(1), orig(self, *a))[1])
    q, k, v, mask = _inputs()
    spike_attention(_module("if", 6, 5, mode="faithful"), q, k, v, mask, scaling=0.3)
    assert len(calls) == 2  # QK^T and PV are both spike-driven
