"""The integer engine: int8 x int8 -> int32 kernels give the float path's outputs bit for bit, per layer and on
whole models of every family; layers fall back to the float path only where int8/int32 cannot be exact; no
float copy of the integer weights stays resident; the int8 quantizer returns the float quantizer's codes."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import spikemllm
from spikemllm import QuantSpec, SpikeLinear
from spikemllm.errors import ConfigError
from spikemllm.models.tiny import VLM_FAMILIES
from spikemllm.nn import set_backend, set_mode, vision_mask
from spikemllm.nn.spike_attention import SpikeAttentionSpec, spike_attention
from spikemllm.nn.spike_matmul import int_mm
from spikemllm.quant import quantize, quantize_int8


def _logits(model: nn.Module, inputs: dict) -> torch.Tensor:
    with torch.no_grad():
        out = model(**inputs)
    return out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state


# --- whole models ----------------------------------------------------------------------------------------
CONFIGS = {
    "tclif-dense": dict(coder="tc-lif", timesteps={"vision": 3, "text": 4}, attention="dense"),
    "tclif-spike": dict(coder="tc-lif", timesteps={"vision": 3, "text": 4}, attention="spike"),
    "if-signed-spike": dict(coder="if", timesteps={"vision": 5, "text": 6}, attention="spike"),
    "if-unsigned-dense": dict(coder="if", signed=False, timesteps={"vision": 7, "text": 15}, attention="dense"),
    "tclif-actgroups-spike": dict(coder="tc-lif", timesteps={"vision": 3, "text": 4}, attention="spike",
                                  act_group_size=16),
    "if-unsigned-actgroups-dense": dict(coder="if", signed=False, timesteps=7, attention="dense", act_group_size=16),
    "if-groups-both-spike": dict(coder="if", timesteps=6, attention="spike", act_group_size=16,
                                 weight_granularity="per-group", group_size=16),
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("family", VLM_FAMILIES)
def test_int_backend_equals_float_backend_on_every_family(family, config):
    model, inputs = spikemllm.tiny_model(family)
    spikemllm.convert(model, spikemllm.SpikeConfig(**CONFIGS[config]), progress=False)
    layers = [m for m in model.modules() if isinstance(m, SpikeLinear)]
    out = {}
    for backend in ("float", "auto"):
        set_backend(model, backend)
        for mode in ("fused", "faithful"):
            set_mode(model, mode)
            out[backend, mode] = _logits(model, inputs)
    assert all(m.backend_in_use() == "int" for m in layers)  # the int8 engine really ran (auto)
    assert "backend=int" in repr(layers[0])
    ref = out["float", "fused"]
    for key, o in out.items():
        assert torch.equal(o, ref), f"{key} differs from the float path"
    assert not any(m._cache for m in layers)  # auto: no float copy of the weights was built


# --- one layer -------------------------------------------------------------------------------------------
LAYERS = [
    dict(coder="tc-lif", t_text=4, t_vision=3),
    dict(coder="tc-lif", t_text=7, t_vision=2),  # codes up to 127: the int8 limit
    dict(coder="if", t_text=9, t_vision=4),
    dict(coder="if", signed=False, t_text=15, t_vision=5),
    dict(coder="if", signed=False, t_text=100, t_vision=3, act_group_size=8),
    dict(coder="tc-lif", t_text=4, act_group_size=16),
    dict(coder="tc-lif", t_text=3, weight_spec=QuantSpec(bits=8, granularity="per-group", group_size=8),
         act_group_size=8),
    dict(coder="if", t_text=5, weight_spec=QuantSpec(bits=4, granularity="per-group", group_size=16)),
    dict(coder="tc-lif", t_text=3, weight_spec=QuantSpec(bits=4, granularity="per-tensor")),
]


@pytest.mark.parametrize("kw", LAYERS, ids=[str(i) for i in range(len(LAYERS))])
def test_layer_backends_agree_bit_for_bit(kw):
    torch.manual_seed(0)
    lin = nn.Linear(48, 40)
    x = torch.randn(3, 7, 48) * torch.linspace(0.1, 4, 48)
    mask = torch.zeros(3, 7, dtype=torch.bool)
    mask[:, 1:4] = True
    m = SpikeLinear.from_linear(lin, **kw)
    out = {}
    with vision_mask(mask):
        for backend in ("float", "int"):
            m.backend = backend
            for mode in ("fused", "faithful"):
                m.mode = mode
                out[backend, mode] = m(x)
    assert m.backend_in_use() == "int"
    for key, o in out.items():
        assert torch.equal(o, out["float", "fused"]), key


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_layer_backends_agree_for_input_dtypes(dtype):
    torch.manual_seed(1)
    m = SpikeLinear.from_linear(nn.Linear(32, 16), coder="tc-lif", t_text=4)
    x = torch.randn(5, 32).to(dtype)
    m.backend = "float"
    a = m(x)
    m.backend = "auto"
    assert m.backend_in_use() == "int" and torch.equal(m(x), a) and a.dtype == dtype


def test_falls_back_to_float_where_int8_or_int32_cannot_be_exact():
    torch.manual_seed(2)
    x = torch.randn(4, 24)
    wide = SpikeLinear.from_linear(nn.Linear(24, 8), coder="tc-lif", t_text=8)  # codes up to 255
    assert wide.backend_in_use() == "float32" and "exceed int8" in repr(wide)
    wide.mode = "faithful"
    a = wide(x)
    wide.mode = "fused"
    assert torch.equal(a, wide(x))
    with pytest.raises(ConfigError, match="backend"):
        wide.backend = "int"
        wide(x)
    # int32 bound: 140000 inputs x 127 x 127 >= 2**31 (float64 then, as before)
    big = SpikeLinear(140_000, 1, bias=False, coder="if", t_text=127, weight_spec=QuantSpec(bits=8))
    big.qweight.fill_(127)
    assert big.backend_in_use() == "float64" and "exceed int32" in repr(big)
    y = big(torch.ones(1, 140_000))
    assert torch.equal(y, torch.full((1, 1), 140_000 * 127 * 127 * float(big.wscale[0, 0]) / 127))


def test_bad_backend_is_a_config_error():
    m = SpikeLinear(8, 4)
    with pytest.raises(ConfigError, match="backend"):
        m.backend = "gpu"
    with pytest.raises(ConfigError, match="backend"):
        set_backend(nn.Sequential(m), "fast")


def test_no_float_copy_of_the_weights_stays_resident():
    torch.manual_seed(3)
    m = SpikeLinear.from_linear(nn.Linear(64, 32), coder="tc-lif", t_text=4)
    x = torch.randn(6, 64)
    for mode in ("fakequant", "fused", "faithful"):
        m.mode = mode
        m(x)
        big_floats = [v for v in _tensors(m.__dict__) if v.is_floating_point() and v.numel() >= 64 * 32]
        assert not big_floats, mode
    assert m.qweight.dtype == torch.int8 and set(m.state_dict()) == {"qweight", "wscale", "bias"}


def _tensors(obj: object) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _tensors(v)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _tensors(v)]
    return []


def test_reloaded_weights_are_used_by_the_int_backend():
    torch.manual_seed(4)
    a = SpikeLinear.from_linear(nn.Linear(32, 8), coder="tc-lif", t_text=3)
    b = SpikeLinear.from_linear(nn.Linear(32, 8), coder="tc-lif", t_text=3)
    x = torch.randn(4, 32)
    b(x)  # plans and caches for b's old weights
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(x), b(x))


# --- kernels and the quantizer ------------------------------------------------------------------------------
@pytest.mark.parametrize("m,k,n", [(1, 3, 5), (16, 8, 8), (17, 9, 13), (40, 64, 24)])
def test_padded_int_mm_is_exact(m, k, n):
    """The CUDA path pads M to > 16 and K, N to multiples of 8; run it on CPU to prove the padding exact."""
    g = torch.Generator().manual_seed(m * k * n)
    a = torch.randint(-127, 128, (m, k), generator=g, dtype=torch.int8)
    b = torch.randint(-127, 128, (n, k), generator=g, dtype=torch.int8).t()
    ref = (a.long() @ b.long()).int()
    assert torch.equal(int_mm(a, b, pad=True), ref) and torch.equal(int_mm(a, b), ref)
    out = torch.empty(m, n, dtype=torch.int32)
    assert torch.equal(int_mm(a, b, out=out, pad=True), ref)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("granularity", ["per-token", "per-group"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_quantize_int8_equals_quantize(symmetric, granularity, dtype):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(33, 64, generator=g) * 10.0 ** torch.randint(-3, 3, (33, 1), generator=g)
    x[0] = 0
    x[1, :8] = torch.tensor([0.5, -0.5, 1.5, -2.5, 0.49999997, -0.49999997, 126.5, -3.4999998])
    x = x.to(dtype)
    for clip in (1.0, 0.6):
        spec = QuantSpec(bits=8 if symmetric else 7, symmetric=symmetric, granularity=granularity, group_size=16,
                         clip_ratio=clip)
        t = torch.randint(1, 8, (33, 1), generator=g)
        qm_t = (2 ** t - 1).unsqueeze(-1) if granularity == "per-group" else 2 ** t - 1
        for qmax in (None, 7, 127, qm_t):
            a, b = quantize(x, spec, qmax=qmax), quantize_int8(x, spec, qmax=qmax)
            assert b.q.dtype == torch.int8
            assert torch.equal(a.q, b.q.to(a.q.dtype)) and torch.equal(a.scale, b.scale)
            assert (a.zero is None and b.zero is None) or torch.equal(a.zero, b.zero)


def test_quantize_int8_ties_round_half_away_from_zero():
    x = torch.tensor([[7.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999997, -0.49999997, 3.4999998]])
    q = quantize_int8(x, QuantSpec(bits=4), qmax=7).q
    assert q.tolist() == [[7, 1, -1, 2, -2, 3, -3, 0, 0, 3]]
    with pytest.raises(ValueError, match="int8"):
        quantize_int8(x, QuantSpec(bits=8), qmax=255)


# --- spiking attention -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("coder,tt,tv", [("tc-lif", 4, 3), ("if", 6, 5), ("tc-lif", 7, 7)])
@pytest.mark.parametrize("hkv", [4, 2, 1])
@pytest.mark.parametrize("bool_mask", [False, True])
def test_attention_backends_agree_bit_for_bit(coder, tt, tv, hkv, bool_mask):
    g = torch.Generator().manual_seed(hkv + tt)
    b, h, s, d = 2, 4, 9, 8
    q = torch.randn(b, h, s, d, generator=g)
    k, v = (torch.randn(b, hkv, s, d, generator=g) for _ in range(2))
    v[0, 0, 3] = 0  # an all-zero value row
    causal = torch.ones(s, s, dtype=torch.bool).tril()[None, None].expand(b, 1, s, s)
    mask = causal if bool_mask else torch.zeros(b, 1, s, s).masked_fill(~causal, torch.finfo(torch.float32).min)
    vis = torch.zeros(b, s, dtype=torch.bool)
    vis[:, 2:5] = True
    out = {}
    with vision_mask(vis):
        for backend in ("float", "int"):
            for mode in ("fused", "faithful"):
                mod = nn.Module()
                mod._spike_attn = SpikeAttentionSpec(coder=coder, t_text=tt, t_vision=tv, region="lm", mode=mode,
                                                     backend=backend)
                out[backend, mode] = spike_attention(mod, q, k, v, mask, scaling=0.35)
    for key, (o, p) in out.items():
        assert torch.equal(o, out["float", "fused"][0]) and torch.equal(p, out["float", "fused"][1]), key


def test_attention_int_backend_refuses_codes_beyond_int8():
    mod = nn.Module()
    mod._spike_attn = SpikeAttentionSpec(coder="tc-lif", t_text=8, t_vision=8, region="lm", backend="int")
    q = torch.randn(1, 2, 3, 4)
    with pytest.raises(ConfigError, match="backend"):
        spike_attention(mod, q, q, q, None)
    mod._spike_attn.backend = "auto"  # falls back to the float path
    assert spike_attention(mod, q, q, q, None)[0].shape == (1, 3, 2, 4)


def test_bf16_scales_and_bias_as_loaded_work_on_both_backends():
    """A checkpoint loaded with dtype=bfloat16 keeps scales and bias in bf16; the int8 weights are unchanged."""
    torch.manual_seed(6)
    for kw in (dict(), dict(act_group_size=8),
               dict(weight_spec=QuantSpec(bits=4, granularity="per-group", group_size=8))):
        m = SpikeLinear.from_linear(nn.Linear(32, 16), coder="tc-lif", t_text=4, **kw)
        m.wscale = m.wscale.bfloat16()
        m.bias = m.bias.bfloat16()
        x = torch.randn(5, 32)
        m.backend = "float"
        a = m(x)
        m.backend = "auto"
        assert m.backend_in_use() == "int" and torch.equal(m(x), a) and a.dtype == torch.float32
