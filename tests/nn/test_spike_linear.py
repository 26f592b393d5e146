"""SpikeLinear: faithful == fused bit for bit, both == fake-quant and an independent reference, config errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikemllm import QuantSpec, SpikeLinear, set_mode
from spikemllm.nn import vision_mask
from spikemllm.quant import quantize, round_half_away

IN, OUT, GS = 32, 12, 8


def ref_qmax(coder: str, t: torch.Tensor) -> torch.Tensor:
    return t if coder == "if" else 2 ** t - 1


def ref_act(x2: torch.Tensor, coder: str, signed: bool, t_tok: torch.Tensor, clip: float):
    """Independent per-token activation quantizer: codes, scale, zero point, dequantized values."""
    x = x2.float()
    qm = ref_qmax(coder, t_tok).float().unsqueeze(1)
    if signed:
        s = x.abs().amax(1, keepdim=True) * clip / qm
        s = torch.where(s > 0, s, torch.ones_like(s))
        q = torch.minimum(torch.maximum(round_half_away(x / s), -qm), qm)
        return q, s, None, q * s
    lo = x.amin(1, keepdim=True).clamp(max=0) * clip
    hi = x.amax(1, keepdim=True).clamp(min=0) * clip
    s = (hi - lo) / qm
    s = torch.where(s > 0, s, torch.ones_like(s))
    z = round_half_away(-lo / s)
    q = torch.minimum(torch.maximum(round_half_away(x / s + z), torch.zeros_like(qm)), qm)
    return q, s, z, (q - z) * s


def ref_weight(w: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """Independent weight fake-quant: symmetric, per output channel or per group of the input features."""
    qm = 2 ** (spec.bits - 1) - 1
    wg = w.reshape(w.shape[0], -1, spec.group_size) if spec.granularity == "per-group" else w.unsqueeze(1)
    s = wg.abs().amax(-1, keepdim=True) / qm
    s = torch.where(s > 0, s, torch.ones_like(s))
    return (torch.clamp(round_half_away(wg / s), -qm, qm) * s).reshape(w.shape)


def reference(lin: nn.Linear, x: torch.Tensor, coder: str, signed: bool, t_tok: torch.Tensor, spec: QuantSpec,
              clip: float = 1.0) -> torch.Tensor:
    x2 = x.reshape(-1, lin.in_features)
    xd = ref_act(x2, coder, signed, t_tok, clip)[3]
    y = F.linear(xd, ref_weight(lin.weight.detach().float(), spec), lin.bias.detach().float())
    return y.reshape(*x.shape[:-1], lin.out_features)


def run_modes(m: SpikeLinear, x: torch.Tensor, mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
    out = {}
    for mode in ("faithful", "fused", "fakequant"):
        m.mode = mode
        with vision_mask(mask):
            out[mode] = m(x)
    return out


WSPECS = {
    "per-channel": QuantSpec(bits=4, granularity="per-channel"),
    "per-group": QuantSpec(bits=4, granularity="per-group", group_size=GS),
    "per-channel-w8": QuantSpec(bits=8, granularity="per-channel"),
}
CODERS = [("tc-lif", True, 3, 4), ("tc-lif", True, 4, 2), ("if", True, 7, 3), ("if", False, 15, 5),
          ("if", False, 4, 15)]


@pytest.mark.parametrize("coder,signed,t_text,t_vision", CODERS,
                         ids=[f"{c}-{'s' if s else 'u'}-T{a}/{b}" for c, s, a, b in CODERS])
@pytest.mark.parametrize("wname", list(WSPECS))
@pytest.mark.parametrize("clip", [1.0, 0.7])
def test_faithful_equals_fused_and_reference(coder, signed, t_text, t_vision, wname, clip):
    g = torch.Generator().manual_seed(t_text * 10 + t_vision)
    lin = nn.Linear(IN, OUT)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(OUT, IN, generator=g) * 0.2)
        lin.bias.copy_(torch.randn(OUT, generator=g))
    spec = WSPECS[wname]
    m = SpikeLinear.from_linear(lin, coder=coder, signed=signed, t_text=t_text, t_vision=t_vision,
                                weight_spec=spec, act_clip=clip)
    x = torch.randn(2, 5, IN, generator=g) * torch.rand(2, 5, 1, generator=g) * 4 + 0.2
    x[0, 1] = 0.0  # an all-zero token
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[0, 1:4] = True
    mask[1, 0] = True
    out = run_modes(m, x, mask)
    assert out["faithful"].shape == (2, 5, OUT) and out["faithful"].dtype == torch.float32
    assert torch.equal(out["faithful"], out["fused"]), "faithful and fused must agree bit for bit"
    t_tok = torch.where(mask.reshape(-1), t_vision, t_text)
    ref = reference(lin, x, coder, signed, t_tok, spec, clip)
    tol = dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out["fakequant"], ref, **tol)
    torch.testing.assert_close(out["fused"], out["fakequant"], **tol)
    torch.testing.assert_close(out["fused"], ref, **tol)
    # the per-token T really matters: the same tokens all at t_text give a different result
    out_text = run_modes(m, x, None)
    assert torch.equal(out_text["faithful"], out_text["fused"])
    torch.testing.assert_close(out_text["fused"], reference(lin, x, coder, signed, torch.full((10,), t_text),
                                                            spec, clip), **tol)
    assert not torch.allclose(out_text["fused"][0, 1:4], out["fused"][0, 1:4])


@pytest.mark.parametrize("coder,signed", [("tc-lif", True), ("if", True), ("if", False)])
def test_vision_region_runs_every_token_at_t_vision(coder, signed):
    lin = nn.Linear(IN, OUT)
    x = torch.randn(6, IN, generator=torch.Generator().manual_seed(1))
    spec = WSPECS["per-channel"]
    m = SpikeLinear.from_linear(lin, coder=coder, signed=signed, t_text=2, t_vision=3, region="vision",
                                weight_spec=spec)
    mask = torch.zeros(6, dtype=torch.bool)  # ignored in the vision tower
    out = run_modes(m, x, mask)
    assert torch.equal(out["faithful"], out["fused"])
    torch.testing.assert_close(out["fused"], reference(lin, x, coder, signed, torch.full((6,), 3), spec),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_input_dtypes(dtype):
    lin = nn.Linear(IN, OUT)
    m = SpikeLinear.from_linear(lin, coder="tc-lif", t_text=4)
    x = torch.randn(3, IN, generator=torch.Generator().manual_seed(2)).to(dtype)
    out = run_modes(m, x, None)
    assert out["fused"].dtype == dtype
    assert torch.equal(out["faithful"], out["fused"])
    ref = reference(lin, x.float(), "tc-lif", True, torch.full((3,), 4), m.weight_spec).to(dtype)
    torch.testing.assert_close(out["fakequant"], ref, rtol=1e-2, atol=1e-2)


def test_per_tensor_weights_and_set_mode():
    lin = nn.Linear(IN, OUT)
    spec = QuantSpec(bits=4, granularity="per-tensor")
    m = nn.Sequential(SpikeLinear.from_linear(lin, coder="if", t_text=7, weight_spec=spec), nn.ReLU(),
                      SpikeLinear.from_linear(nn.Linear(OUT, 4), coder="tc-lif", t_text=3))
    w = lin.weight.detach()
    s = w.abs().max() / 7
    torch.testing.assert_close(m[0].dequantized_weight(), torch.clamp(round_half_away(w / s), -7, 7) * s)
    x = torch.randn(4, IN)
    ys = {mode: set_mode(m, mode)(x) for mode in ("faithful", "fused", "fakequant")}
    assert all(layer.mode == "fakequant" for layer in (m[0], m[2]))
    assert torch.equal(ys["faithful"], ys["fused"])
    torch.testing.assert_close(ys["fused"], ys["fakequant"], rtol=1e-5, atol=1e-5)


# --- exactness bound: float64 accumulation ---------------------------------------------------------------
@pytest.mark.parametrize("coder,signed,T,n_in", [("if", False, 255, 1024), ("tc-lif", True, 15, 64),
                                                  ("if", True, 255, 1024)])
def test_float64_fallback_keeps_faithful_equal_to_fused(coder, signed, T, n_in):
    """Integer partial sums far above 2**24: float32 sums would round (differently per path)."""
    g = torch.Generator().manual_seed(T)
    n_out = 6
    lin = nn.Linear(n_in, n_out)
    with torch.no_grad():  # large, same-signed 8-bit weights and activations near the top of the range
        lin.weight.copy_(torch.rand(n_out, n_in, generator=g) * 0.25 + 0.75)
    spec = QuantSpec(bits=8, granularity="per-channel")
    m = SpikeLinear.from_linear(lin, coder=coder, signed=signed, t_text=T, weight_spec=spec)
    qmax = T if coder == "if" else 2 ** T - 1
    bound = n_in * int(m.qweight.abs().max()) * qmax
    assert bound >= 2 ** 24 and m.accumulation_bound() == bound
    x = torch.rand(3, n_in, generator=g) * 0.2 + 0.8
    out = run_modes(m, x, None)
    assert torch.equal(out["faithful"], out["fused"])
    # exact integer result, computed in int64, then scaled
    q, s, z, _ = ref_act(x, coder, signed, torch.full((3,), T), 1.0)
    qw = m.qweight.to(torch.int64)
    acc = (q.to(torch.int64) - (0 if z is None else z.to(torch.int64))) @ qw.t()
    assert int(acc.abs().max()) >= 2 ** 24, "the test must exercise sums that float32 cannot hold"
    exact = acc.double() * s.double() * m.wscale.double().t() + m.bias.double()
    torch.testing.assert_close(out["fused"].double(), exact, rtol=1e-6, atol=0)
    torch.testing.assert_close(out["fakequant"].double(), exact, rtol=1e-5, atol=0)


def test_float32_below_the_bound():
    m = SpikeLinear.from_linear(nn.Linear(IN, OUT), coder="tc-lif", t_text=3)
    assert m.accumulation_bound() == IN * int(m.qweight.abs().max()) * 7 < 2 ** 24


# --- errors ----------------------------------------------------------------------------------------------
def test_mismatched_input_width_raises():
    m = SpikeLinear.from_linear(nn.Linear(IN, OUT))
    for mode in ("faithful", "fused", "fakequant"):
        m.mode = mode
        with pytest.raises(ValueError, match=rf"{IN - 1} features.*expects {IN}"):
            m(torch.randn(2, IN - 1))


def test_mismatched_vision_mask_raises():
    m = SpikeLinear.from_linear(nn.Linear(IN, OUT), t_text=3, t_vision=2)
    with vision_mask(torch.zeros(2, 4, dtype=torch.bool)):
        with pytest.raises(ValueError, match="vision mask has 8 tokens"):
            m(torch.randn(2, 3, IN))


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(t_text=0), r"t_text=0.*allowed values: integers >= 1"),
    (dict(t_text=-2), r"t_text=-2.*allowed values"),
    (dict(t_text=3, t_vision=0), r"t_vision=0.*allowed values: integers >= 1"),
    (dict(t_text=2.5), r"t_text=2.5.*allowed values"),
    (dict(coder="tc-lif", t_text=16), r"timesteps=16.*allowed values: 1\.\.15"),
    (dict(coder="lif"), r"coder='lif'.*allowed values: if, tc-lif"),
    (dict(coder="tc-lif", signed=False), r"signed=False.*allowed"),
    (dict(mode="exact"), r"mode='exact'.*allowed values: faithful, fused, fakequant"),
    (dict(region="text"), r"region='text'.*allowed values: vision, lm"),
    (dict(act_clip=0.0), r"clip_ratio=0.0.*allowed values"),
    (dict(weight_spec=QuantSpec(bits=4, symmetric=False)), r"symmetric=False.*allowed values: True"),
    (dict(weight_spec=QuantSpec(bits=9)), r"bits=9.*allowed values: 2\.\.8"),
    (dict(weight_spec=QuantSpec(bits=4, granularity="per-group", group_size=5)), r"group_size=5.*divisor of 32"),
])
def test_bad_config_raises(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        SpikeLinear(IN, OUT, **kwargs)


def test_bad_weight_bits_and_mode_setter():
    with pytest.raises(ValueError, match=r"bits=1.*allowed values"):
        SpikeLinear(IN, OUT, weight_spec=QuantSpec(bits=1))
    m = SpikeLinear(IN, OUT)
    with pytest.raises(ValueError, match=r"mode='slow'.*allowed values"):
        m.mode = "slow"
    with pytest.raises(ValueError, match=r"mode='slow'.*allowed values"):
        set_mode(m, "slow")
    with pytest.raises(ValueError, match="in_features"):
        SpikeLinear(0, OUT)


def test_nan_inf_inputs_raise():
    m = SpikeLinear.from_linear(nn.Linear(IN, OUT))
    for bad in (float("nan"), float("inf")):
        x = torch.randn(3, IN)
        x[1, 2] = bad
        for mode in ("faithful", "fused", "fakequant"):
            m.mode = mode
            with pytest.raises(ValueError, match="NaN or Inf"):
                m(x)


def test_weight_codes_out_of_range_raise():
    from spikemllm.quant import Quantized
    m = SpikeLinear(IN, OUT, weight_spec=QuantSpec(bits=4, granularity="per-channel"))
    q = torch.zeros(OUT, IN)
    q[0, 0] = 8
    with pytest.raises(ValueError, match=r"weight codes.*-7\.\.7"):
        m.load_quantized(Quantized(q=q, scale=torch.ones(OUT, 1), zero=None))


def test_state_dict_round_trip_and_reloaded_weights_are_used():
    g = torch.Generator().manual_seed(11)
    a, b = nn.Linear(IN, OUT), nn.Linear(IN, OUT)
    m = SpikeLinear.from_linear(a, coder="tc-lif", t_text=3, mode="faithful")
    x = torch.randn(4, IN, generator=g)
    y = m(x)  # fills the weight cache
    m2 = SpikeLinear(IN, OUT, coder="tc-lif", t_text=3, mode="faithful")
    m2(x)
    m2.load_state_dict(m.state_dict())
    assert torch.equal(m2(x), y)
    m.load_quantized(quantize(b.weight.detach(), m.weight_spec), b.bias.detach())
    for mode in ("faithful", "fused"):
        m.mode = mode
        torch.testing.assert_close(m(x), reference(b, x, "tc-lif", True, torch.full((4,), 3), m.weight_spec),
                                   rtol=1e-5, atol=1e-5)
