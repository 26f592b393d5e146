"""Per-modality timesteps (MSTS): vision tokens never spike past Tv, text tokens never past Tt.

Trains are aligned on their last step (a token with ``T_i < T_max`` is silent for the first ``T_max - T_i``
steps), so "never past Tv" means: a vision token emits nothing in the first ``T_max - Tv`` steps. The spike planes
that the faithful path actually consumes are recorded by wrapping the coders' ``planes``; the module that asked
for them is tracked with forward hooks. The ground truth for which tokens are vision is the input itself
(``input_ids == image token id``), not the library's mask.
"""
from __future__ import annotations

import pytest
import torch

import spikemllm
from spikemllm.coding import IFCoder, TCLIFCoder
from spikemllm.models.tiny import IMAGE_ID, VLM_FAMILIES
from spikemllm.nn import SpikeLinear
from spikemllm.nn import spike_attention as sa
from spikify_helpers import TV_TT, converted, forward

TV, TT = TV_TT["vision"], TV_TT["text"]


def _record_planes(monkeypatch, model):
    """Record (owner module, planes [T_max, ...]) for every ``planes`` call made inside a SpikeLinear or a
    spiking-attention module."""
    stack, records = [], []
    owners = [m for m in model.modules() if isinstance(m, SpikeLinear) or hasattr(m, "_spike_attn")]
    hooks = []
    for m in owners:
        hooks.append(m.register_forward_pre_hook(lambda mod, a: stack.append(mod)))
        hooks.append(m.register_forward_hook(lambda mod, a, o: (stack.pop(), None)[1]))  # keep the output

    for cls in (IFCoder, TCLIFCoder):
        orig = cls.planes

        def planes(self, q, t, t_max, _orig=orig):
            ps = list(_orig(self, q, t, t_max))
            if stack:
                records.append((stack[-1], torch.stack(ps)))
            return iter(ps)

        monkeypatch.setattr(cls, "planes", planes)
    return records, hooks


def _row_flags(owner, planes, vision_tokens):
    """Per-row vision flags, and the planes reshaped to [T_max, rows, -1]."""
    t_max = planes.shape[0]
    if isinstance(owner, SpikeLinear):  # codes [N, in]: row = flattened token
        rows = planes.shape[1]
        flags = torch.ones(rows, dtype=torch.bool) if owner.region == "vision" else vision_tokens.reshape(-1)
        assert flags.numel() == rows, f"an LM layer got {rows} rows, expected every token of the prompt"
        return flags, planes.reshape(t_max, rows, -1)
    # attention: Q codes [B, H, Sq, D] or P~ codes [B, H, Sq, Sk]; a row is the query token (b, s)
    b, h, s = planes.shape[1:4]
    p = planes.permute(0, 1, 3, 2, 4).reshape(t_max, b * s, -1)
    if owner._spike_attn.region == "vision":
        return torch.ones(b * s, dtype=torch.bool), p
    assert (b, s) == tuple(vision_tokens.shape)
    return vision_tokens.reshape(-1), p


@pytest.mark.parametrize("coder", ["tc-lif", "if"])
@pytest.mark.parametrize("family", VLM_FAMILIES)
def test_vision_tokens_never_spike_past_tv_text_never_past_tt(family, coder, monkeypatch):
    model, inputs, _ = converted(family, coder=coder, timesteps=TV_TT, attention="spike", mode="faithful")
    vision_tokens = inputs["input_ids"] == IMAGE_ID
    records, hooks = _record_planes(monkeypatch, model)
    forward(model, inputs)
    for h in hooks:
        h.remove()
    seen = {"vision-linear": 0, "lm-linear-mixed": 0, "vision-attn": 0, "lm-attn-mixed": 0}
    for owner, planes in records:
        flags, p = _row_flags(owner, planes, vision_tokens)
        t_max = p.shape[0]
        assert t_max <= TT
        active = p.abs().flatten(2).sum(-1) > 0  # [T_max, rows]: did the row spike at this step?
        first_v, first_t = t_max - TV, t_max - TT
        # vision rows: silent before their window, and each spikes inside it (its largest code is Tv's q_max)
        assert not active[:max(first_v, 0), flags].any(), "a vision token spiked before its Tv window"
        # a row's largest code is its q_max, which needs the first step of its window (all-zero rows are silent)
        live = active.any(0)
        assert live.float().mean() > 0.9
        if (flags & live).any():
            assert active[first_v, flags & live].all()
        # text rows really use Tt steps: every live one spikes at the first of the Tt steps
        if (~flags & live).any():
            assert first_t == 0 and active[0, ~flags & live].all()
        region = owner.region if isinstance(owner, SpikeLinear) else owner._spike_attn.region
        kind = "linear" if isinstance(owner, SpikeLinear) else "attn"
        if region == "vision":
            seen[f"vision-{kind}"] += 1
        elif flags.any() and (~flags).any():
            seen[f"lm-{kind}-mixed"] += 1
    # both towers ran spiking, and LM layers really received vision and text tokens together
    assert all(v > 0 for v in seen.values()), seen


def test_lm_layers_receive_both_modalities_in_stats():
    """collect_stats splits counts by modality: every LM layer sees exactly the image tokens of the input as
    vision (at Tv) and the rest as text (at Tt); vision-tower layers see only vision; vision spikes never land
    in the first step of a Tt window."""
    model, inputs, _ = converted("qwen2_vl", coder="tc-lif", timesteps=TV_TT, mode="faithful")
    n_img = int((inputs["input_ids"] == IMAGE_ID).sum())
    n_txt = inputs["input_ids"].numel() - n_img
    with spikemllm.collect_stats(model) as stats:
        forward(model, inputs)
    mm = spikemllm.describe(model)
    lm_layers = [n for n in stats.layers if mm.region_of(n) == "lm"]
    vis_layers = [n for n in stats.layers if mm.region_of(n) in ("vision", "projector")]
    assert len(lm_layers) == 2 * 7 and vis_layers
    for name in lm_layers:
        v, t = stats.layers[name].per_modality["vision"], stats.layers[name].per_modality["text"]
        assert (v.tokens, t.tokens) == (n_img, n_txt)
        assert (v.mean_timesteps, t.mean_timesteps) == (TV, TT)
        assert len(v.spikes_per_step) == TT and v.spikes_per_step[0] == 0 and v.spikes_per_step[1] > 0
        assert t.spikes_per_step[0] > 0
        assert v.spikes == sum(v.spikes_per_step) and v.neuron_steps == n_img * TV * stats.layers[name].in_features
    for name in vis_layers:
        v, t = stats.layers[name].per_modality["vision"], stats.layers[name].per_modality["text"]
        assert t.tokens == 0 and v.tokens > 0
        assert v.mean_timesteps == TV and len(v.spikes_per_step) == TV


def test_per_layer_overrides_set_each_blocks_timesteps():
    cfg = dict(coder="tc-lif", timesteps=TV_TT, layer_timesteps={"lm.1": {"vision": 2, "text": 5}, "vision.0": 6})
    model, inputs, _ = converted("llava", **cfg)
    mm = spikemllm.describe(model)
    for name, m in model.named_modules():
        if not isinstance(m, SpikeLinear):
            continue
        where = mm.layer_of(name)
        want = {("lm", 1): (2, 5), ("vision", 0): (6, 6)}.get(where, (TV, TT))
        assert (m.t_vision, m.t_text) == want, name
    out = {}
    for mode in ("fused", "faithful"):
        spikemllm.set_mode(model, mode)
        out[mode] = forward(model, inputs)
    assert torch.equal(out["fused"], out["faithful"])


@pytest.mark.parametrize("family", ["qwen2_vl", "llava"])
def test_generate_keeps_the_modality_of_cached_keys(family, monkeypatch):
    """During generate() with the KV cache, spiking attention quantizes every key at its own token's T: the
    prompt's image positions at Tv, everything else (new tokens included) at Tt; new queries are text."""
    model, inputs, _ = converted(family, coder="tc-lif", timesteps=TV_TT, attention="spike")
    seen = []
    orig = sa._token_t

    def spy(spec, mask, b, s, device):
        t = orig(spec, mask, b, s, device)
        if spec.region == "lm":
            seen.append(t.clone())
        return t

    monkeypatch.setattr(sa, "_token_t", spy)
    prompt_vision = inputs["input_ids"] == IMAGE_ID
    new = 4
    with torch.no_grad():
        model.generate(**inputs, max_new_tokens=new, do_sample=False)
    p = prompt_vision.shape[1]
    expected_keys = torch.where(prompt_vision, TV, TT)
    lengths = set()
    for q_t, k_t in zip(seen[0::2], seen[1::2]):  # _token_t is called for queries, then for keys
        sk = k_t.shape[1]
        lengths.add(sk)
        assert torch.equal(k_t[:, :p], expected_keys), "a cached image key lost its Tv"
        assert bool((k_t[:, p:] == TT).all())
        if q_t.shape[1] == 1:
            assert bool((q_t == TT).all())  # generated tokens are text
    assert lengths == {p + i for i in range(new)}  # prefill and every decode step with the cache
