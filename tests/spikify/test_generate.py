"""Greedy generate() with the KV cache on converted models.

faithful and fused must give the same tokens and the same step logits bit for bit. Against fakequant (the ANN
reference with float matmuls) a rounding tie may flip one activation code and, a few steps later, a token; the
cases below were checked to agree (qwen2_vl, qwen2_5_vl, internvl at TC-LIF 3/4) and are pinned as such.
"""
from __future__ import annotations

import pytest
import torch

import spikemllm
from spikify_helpers import TV_TT, converted

NEW = 6


def _greedy(model, inputs, mode, **kw):
    spikemllm.set_mode(model, mode)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=NEW, do_sample=False, return_dict_in_generate=True,
                             output_logits=True, **kw)
    return out.sequences[:, inputs["input_ids"].shape[1]:], torch.stack(out.logits)


@pytest.mark.parametrize("attention", ["spike", "dense"])
@pytest.mark.parametrize("family", ["qwen2_vl", "llava", "idefics3"])
def test_faithful_generate_equals_fused(family, attention):
    model, inputs, _ = converted(family, coder="tc-lif", timesteps=TV_TT, attention=attention)
    tok_f, log_f = _greedy(model, inputs, "fused")
    tok_s, log_s = _greedy(model, inputs, "faithful")
    assert tok_f.shape == (2, NEW)
    assert torch.equal(tok_f, tok_s)
    assert torch.equal(log_f, log_s)


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "internvl"])
def test_spiking_generate_equals_fakequant_where_no_tie_flips(family):
    model, inputs, _ = converted(family, coder="tc-lif", timesteps=TV_TT, attention="spike")
    tok_s, log_s = _greedy(model, inputs, "faithful")
    tok_q, log_q = _greedy(model, inputs, "fakequant")
    assert torch.equal(tok_s, tok_q)
    torch.testing.assert_close(log_s, log_q, rtol=0, atol=0.05 * float(log_q.abs().max()))


@pytest.mark.parametrize("family", ["qwen2_vl", "llava"])
def test_cache_gives_the_tokens_of_full_recompute(family):
    """With the cache each step runs one new token through the spiking layers and keeps the prompt's image keys
    at Tv; without it every step recomputes the whole sequence. Per-token quantization makes both the same."""
    model, inputs, _ = converted(family, coder="tc-lif", timesteps=TV_TT, attention="spike")
    with_cache, logits_c = _greedy(model, inputs, "faithful", use_cache=True)
    no_cache, logits_n = _greedy(model, inputs, "faithful", use_cache=False)
    assert torch.equal(with_cache, no_cache)
    torch.testing.assert_close(logits_c, logits_n, rtol=1e-4, atol=1e-4)


def test_generate_output_depends_on_the_image():
    """The image really reaches the spiking LM: other pixels, other logits."""
    model, inputs, _ = converted("llava", coder="tc-lif", timesteps=TV_TT, attention="spike")
    _, a = _greedy(model, inputs, "fused")
    other = dict(inputs, pixel_values=inputs["pixel_values"].flip(-1))
    _, b = _greedy(model, other, "fused")
    assert not torch.equal(a[0], b[0])
