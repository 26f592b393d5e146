"""compressed-tensors pack-quantized checkpoints: our reader gives the integers compressed-tensors wrote, and the
spiked model computes what the checkpoint computes."""
from __future__ import annotations

import json

import pytest
import torch

from spikemllm import SpikeConfig, convert, set_mode, tiny_model
from spikemllm.methods.external import load_float_model, read_compressed_tensors, unpack_int32

ct = pytest.importorskip("compressed_tensors")


def _checkpoint(folder, strategy: str, denom: float, bits: int = 4, group: int = 32):
    """A tiny Qwen2 quantized and packed by compressed-tensors (scales set here: absmax / denom)."""
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.quantization import (QuantizationArgs, QuantizationConfig, QuantizationScheme,
                                                 apply_quantization_config)
    model, inputs = tiny_model("qwen2")
    args = QuantizationArgs(num_bits=bits, type="int", symmetric=True, strategy=strategy,
                            group_size=group if strategy == "group" else None)
    apply_quantization_config(model, QuantizationConfig(
        config_groups={"g": QuantizationScheme(targets=["Linear"], weights=args)}, ignore=["lm_head"],
        quantization_status="calibration"))
    for mod in model.modules():
        if hasattr(mod, "weight_scale"):
            w = mod.weight.detach()
            w = w.reshape(w.shape[0], -1, group) if strategy == "group" else w.unsqueeze(1)
            mod.weight_scale.data.copy_((w.abs().amax(-1) / denom).reshape(mod.weight_scale.shape))
    comp = ModelCompressor.from_pretrained_model(model, quantization_format="pack-quantized")
    comp.compress_model(model)
    model.save_pretrained(folder)
    comp.update_config(folder)
    return inputs


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_unpack_matches_compressed_tensors(bits):
    from compressed_tensors.compressors.pack_quantized.helpers import pack_to_int32
    lim = 2 ** (bits - 1)
    codes = torch.randint(-lim, lim, (5, 77), dtype=torch.int8)
    assert torch.equal(unpack_int32(pack_to_int32(codes, bits), bits, 77), codes.long())


@pytest.mark.parametrize("strategy", ["group", "channel"])
def test_spiked_checkpoint_computes_what_the_checkpoint_computes(strategy, tmp_path):
    inputs = _checkpoint(tmp_path, strategy, denom=7.0)
    ck = read_compressed_tensors(str(tmp_path))
    assert ck.bits == 4 and ck.bits_needed() == 4 and len(ck.weights) == 14
    from transformers import Qwen2ForCausalLM
    model = load_float_model(str(tmp_path), Qwen2ForCausalLM)
    with torch.no_grad():
        ref = model(**inputs).logits                       # float activations, the checkpoint's weights
    gran = "per-group" if strategy == "group" else "per-channel"
    convert(model, SpikeConfig(method="external", method_options={"external": {"path": str(tmp_path)}},
                               weight_granularity=gran, group_size=32, timesteps=15), progress=False)
    q = model.model.layers[0].self_attn.q_proj
    assert torch.equal(q.qweight.float().reshape(-1), ck.weights["model.layers.0.self_attn.q_proj"].q.reshape(-1))
    with torch.no_grad():
        fused = model(**inputs).logits
        set_mode(model, "faithful")
        assert torch.equal(model(**inputs).logits, fused)
    assert float((fused - ref).pow(2).sum() / ref.pow(2).sum()) < 1e-6   # only 16-bit activation rounding


def test_full_int_range_needs_one_more_bit(tmp_path):
    _checkpoint(tmp_path, "group", denom=7.5)               # compressed-tensors' own convention: codes -8..7
    ck = read_compressed_tensors(str(tmp_path))
    assert int(min(q.q.min() for q in ck.weights.values())) == -8 and ck.bits_needed() == 5
    from transformers import Qwen2ForCausalLM
    model = load_float_model(str(tmp_path), Qwen2ForCausalLM)
    opts = {"external": {"path": str(tmp_path)}}
    with pytest.raises(ValueError, match="weight_bits=5"):
        convert(model, SpikeConfig(method="external", method_options=opts, weight_granularity="per-group",
                                   group_size=32), progress=False)
    with pytest.raises(ValueError, match="group_size=32"):
        convert(load_float_model(str(tmp_path), Qwen2ForCausalLM),
                SpikeConfig(method="external", method_options=opts, weight_bits=5), progress=False)
    convert(load_float_model(str(tmp_path), Qwen2ForCausalLM),
            SpikeConfig(method="external", method_options=opts, weight_bits=5, weight_granularity="per-group",
                        group_size=32), progress=False)


def test_unsupported_checkpoints_are_refused(tmp_path):
    _checkpoint(tmp_path, "group", denom=7.0)
    cfg_path = tmp_path / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["quantization_config"]["transform_config"] = {"config_groups": {"u": {}}}
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="transform_config"):
        read_compressed_tensors(str(tmp_path))
    cfg["quantization_config"]["transform_config"] = {}
    next(iter(cfg["quantization_config"]["config_groups"].values()))["weights"]["symmetric"] = False
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="symmetric int"):
        read_compressed_tensors(str(tmp_path))
