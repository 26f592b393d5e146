"""Accelerator model, GPU roofline and workload shapes behave as their stated rules say (no RTL needed)."""
import math

import pytest

from spikemllm.hardware.accel_model import AcceleratorConfig, job_cost, run_accelerator
from spikemllm.hardware.gpu import get_gpu, gpu_phase, run_gpu
from spikemllm.hardware.report import compare, format_comparison
from spikemllm.hardware.workload import (AttentionShape, LinearOp, MatmulJob, ModelShape, Workload, decode_jobs,
                                         prefill_jobs)
from spikemllm.models import shape_of_config
from spikemllm.models.qwen2_vl import qwen2_vl_7b


def test_qwen2_vl_7b_shapes():
    m = qwen2_vl_7b()
    # LM linears per block: q,o 3584^2; k,v 3584x512; gate, up, down 3584x18944
    per_block = 2 * 3584 * 3584 + 2 * 3584 * 512 + 3 * 3584 * 18944
    assert m.params("lm") == 28 * per_block + 3584 * 152064
    w = Workload(m, image_size=448)
    assert (w.vision_patches, w.image_tokens, w.prompt_tokens) == (1024, 256, 320)


def test_the_adapter_reads_the_hand_written_shape_from_a_config():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.Qwen2VLConfig(
        text_config=dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                         num_key_value_heads=4, vocab_size=152064,
                         rope_parameters={"rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1e6}),
        vision_config=dict(depth=32, embed_dim=1280, hidden_size=3584, num_heads=16, mlp_ratio=4, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, in_channels=3))
    got, ref = shape_of_config(cfg), qwen2_vl_7b()
    for part in ("lm", "vision", "projector"):
        assert got.params(part) == ref.params(part)
    assert got.lm_attention == ref.lm_attention and got.vision_attention == ref.vision_attention


def test_shape_of_config_asks_the_family_adapter(monkeypatch):
    """The hardware model's shape comes from the adapter registered for the config's model_type; a type no
    adapter knows is read as a plain decoder LM (no vision tower)."""
    from types import SimpleNamespace

    from spikemllm.models import base

    text = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_hidden_layers=2, vocab_size=96)
    plain = shape_of_config(SimpleNamespace(model_type="no_such_family", **text))
    assert plain.name == "no_such_family" and plain.vision_linears == () and plain.params("lm") > 0

    class Toy(base.Adapter):
        family, model_types = "toy", ("toy_vlm",)

        def model_shape(self, config, name=None):
            return base.decoder_shape(config, "from the toy adapter")

    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    base.register_adapter(Toy())
    assert shape_of_config(SimpleNamespace(model_type="toy_vlm", **text)).name == "from the toy adapter"


def _tiny_model() -> ModelShape:
    return ModelShape(name="tiny", hidden=256, intermediate=512, vocab=1000,
                      lm_linears=(LinearOp("up", 256, 512, 2), LinearOp("down", 512, 256, 2)),
                      lm_attention=AttentionShape(layers=2, heads=4, kv_heads=2, head_dim=64),
                      lm_head=LinearOp("lm_head", 256, 1000, 1))


def test_job_counts_by_hand():
    job = MatmulJob("j", "lm", 300, 200, 2, (("vision", 10, 3.0, 0.5), ("text", 4, 4.0, 0.25)), weight_bits=4)
    assert job.dense_macs == 14 * 300 * 200 * 2
    assert job.acs == (10 * 300 * 3 * 0.5 + 4 * 300 * 4 * 0.25) * 200 * 2
    assert job.weight_bytes == 300 * 200 * 0.5 * 2


def test_dense_array_cycles_by_hand():
    cfg = AcceleratorConfig(rows=64, lanes=32, chunks=4, skip_zero_chunks=False, double_buffer_weights=True,
                            hbm_bandwidth=1e30)
    # in=300 -> K-tiles of 4 and 2 chunks (128+128+44 -> chunks 4, 4, 2); out=200 -> 4 row blocks
    job = MatmulJob("j", "lm", 300, 200, 1, (("text", 5, 3.0, 0.3),), weight_bits=4)
    per_tile = [5 * 3 * c + 1 for c in (4, 4, 2)]
    assert job_cost(job, cfg).array_cycles == 4 * sum(per_tile)


def test_decode_becomes_hbm_bound_when_bandwidth_is_low_and_scales_with_it():
    w = Workload(_tiny_model(), image_size=28, prompt_text_tokens=8, output_tokens=4)
    slow = run_accelerator(w, AcceleratorConfig(rows=16, lanes=16, chunks=2, hbm_bandwidth=1e6))
    slower = run_accelerator(w, AcceleratorConfig(rows=16, lanes=16, chunks=2, hbm_bandwidth=0.5e6))
    assert slow.decode.seconds * 2 == pytest.approx(slower.decode.seconds, rel=1e-9)
    assert all(j.bound == "hbm" for j in slow.decode.jobs if j.name.startswith("lm.u"))


def test_power_has_static_floor_and_hbm_share():
    w = Workload(_tiny_model(), image_size=28, prompt_text_tokens=8, output_tokens=4)
    r = run_accelerator(w, AcceleratorConfig(rows=16, lanes=16, chunks=2, static_power_w=0.25))
    assert r.decode.chip_power_w > 0.25 and r.decode.system_power_w > r.decode.chip_power_w
    assert r.decode.energy_j["static"] == pytest.approx(0.25 * r.decode.seconds)


def test_gpu_roofline_by_hand():
    spec = get_gpu("a800")
    job = MatmulJob("j", "lm", 1000, 1000, 10, (("text", 1, 4.0, 0.3),), weight_bits=4)
    ph = gpu_phase("d", [job], spec, tokens=1)
    assert ph.bytes == 1000 * 1000 * 2 * 10 and ph.bound == "memory"
    assert ph.seconds == pytest.approx(ph.bytes / 2.039e12)
    big = MatmulJob("j", "lm", 1000, 1000, 10, (("text", 10000, 4.0, 0.3),), weight_bits=4)
    assert gpu_phase("p", [big], spec, tokens=10000).bound == "compute"


def test_qwen2_vl_report_prints_both_sides_assumptions_and_ratios():
    w = Workload(qwen2_vl_7b(), tv=3, tt=4, output_tokens=16)
    c = compare(w, AcceleratorConfig(), get_gpu("a800"), gpu_power_w=184.0)
    text = format_comparison(c)
    for needle in ("tok/s", "W chip", "with HBM", "throughput", "power (GPU W / accel W)", "HBM bandwidth",
                   "firing rate", "Tv / Tt", "393.7", "A800"):
        assert needle in text
    # the ideal A800 roofline: 14+ GB of FP16 weights per token at 2.039 TB/s
    assert 120 < c.gpu.decode_tokens_per_s < 150
    assert c.throughput_ratio == pytest.approx(c.accel.decode_tokens_per_s / c.gpu.decode_tokens_per_s)
    assert c.energy_per_token_ratio(True) == pytest.approx(c.throughput_ratio * c.power_ratio(True))
    assert math.isfinite(c.power_ratio(False)) and c.power_ratio(False) > c.power_ratio(True)


def test_more_text_timesteps_cost_decode_throughput_and_firing_rate_costs_energy():
    base = Workload(qwen2_vl_7b(), output_tokens=4)
    cfg = AcceleratorConfig(hbm_bandwidth=1e15)  # array-bound
    t4 = run_accelerator(base.with_(tt=4), cfg).decode
    t8 = run_accelerator(base.with_(tt=8), cfg).decode
    assert t8.seconds == pytest.approx(2 * t4.seconds, rel=0.02)
    lo = run_accelerator(base.with_(firing_rate_text=0.1), cfg).decode
    hi = run_accelerator(base.with_(firing_rate_text=0.4), cfg).decode
    assert hi.energy_j["ac"] == pytest.approx(4 * lo.energy_j["ac"], rel=1e-6)


def test_jobs_cover_all_parts():
    w = Workload(qwen2_vl_7b())
    names = {j.name for j in prefill_jobs(w)}
    assert {"vision.qkv", "projector.merger.fc2", "lm.down_proj", "lm.attn.scores", "lm.lm_head"} <= names
    assert all(j.tokens == 1 or j.weights_from == "kv" for j in decode_jobs(w, 400))
    assert run_gpu(w, get_gpu("h200")).decode_tokens_per_s > run_gpu(w, get_gpu("a800")).decode_tokens_per_s
