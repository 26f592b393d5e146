"""spikemllm.placement: which device and dtype a model gets, offload to disk that changes no output, and MED
statistics that stay on the model's device until the end. Runs on the CPU everywhere and on CUDA when present."""
from __future__ import annotations

import contextlib

import pytest
import torch

import spikemllm
from spikemllm import placement as pl
from spikemllm.calibrate.offload import onload, settle
from spikemllm.errors import ConfigError
from spikemllm.models import describe, tiny_model
from spikemllm.msts.observe import observe
from spikemllm.msts.sensitivity import kl_divergence, log_probs, top1_agreement
from spikemllm.spikify import select_targets

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Every device test runs on the CPU, and again on CUDA where the machine has it."""
    return request.param


# --- device and dtype -------------------------------------------------------------------------------------
def _machine(monkeypatch, cuda: int = 0, mps: bool = False) -> None:
    """Pretend the machine has ``cuda`` CUDA devices and (or not) MPS."""
    monkeypatch.setattr(pl, "cuda_available", lambda: cuda > 0)
    monkeypatch.setattr(pl, "mps_available", lambda: mps)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)


def test_auto_is_the_cpu_without_accelerators(monkeypatch):
    _machine(monkeypatch)
    assert pl.resolve_device("auto") == torch.device("cpu")
    assert pl.resolve_device(None) == torch.device("cpu")


def test_auto_prefers_cuda_then_mps(monkeypatch):
    _machine(monkeypatch, cuda=2, mps=True)
    assert pl.resolve_device("auto") == torch.device("cuda", 0)
    _machine(monkeypatch, cuda=0, mps=True)
    assert pl.resolve_device("auto") == torch.device("mps")


def test_cuda_honours_torchrun_local_rank(monkeypatch):
    _machine(monkeypatch, cuda=4)
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert pl.resolve_device("auto") == torch.device("cuda", 2)
    assert pl.resolve_device("cuda") == torch.device("cuda", 2)
    assert pl.resolve_device("cuda:1") == torch.device("cuda", 1)  # an explicit index wins
    monkeypatch.setenv("LOCAL_RANK", "5")  # more processes than GPUs: they share round-robin
    assert pl.resolve_device("cuda") == torch.device("cuda", 1)


@pytest.mark.parametrize("spec,words", [("cuda", "no CUDA device; use --device cpu"),
                                        ("mps", "no Apple MPS device; use --device cpu"),
                                        ("tpu", "unknown"), ("cuda:x", "integer")])
def test_absent_or_unknown_device_is_a_one_line_config_error(monkeypatch, spec, words):
    _machine(monkeypatch)
    with pytest.raises(ConfigError, match=words) as e:
        pl.resolve_device(spec)
    assert "\n" not in str(e.value) and str(e.value).startswith(f"--device {spec}")


def test_cuda_index_beyond_the_machine(monkeypatch):
    _machine(monkeypatch, cuda=2)
    with pytest.raises(ConfigError, match=r"has 2 CUDA device\(s\) \(cuda:0..cuda:1\)"):
        pl.resolve_device("cuda:3")


def test_dtypes():
    assert pl.resolve_dtype("auto") is None
    assert pl.resolve_dtype("bfloat16") is torch.bfloat16
    assert pl.resolve_dtype("bf16") is torch.bfloat16
    assert pl.resolve_dtype(torch.float16) is torch.float16
    with pytest.raises(ConfigError, match="allowed: auto, float32, bfloat16, float16"):
        pl.resolve_dtype("int8")


def test_max_memory_parsing():
    assert pl.parse_max_memory("cpu=2GiB, 0=70GiB") == {"cpu": 2 * 2**30, 0: 70 * 2**30}
    assert pl.parse_max_memory("cuda:1=500MB") == {1: 500 * 10**6}
    assert pl.parse_max_memory({"cpu": "4MiB"}) == {"cpu": 4 * 2**20}
    assert pl.parse_max_memory(None) is None
    for bad in ("cpu", "gpu=1GiB", "cpu=lots", ","):
        with pytest.raises(ConfigError, match="--max-memory"):
            pl.parse_max_memory(bad)


def test_a_cpu_run_plans_onto_the_cpu_only():
    p = pl.Placement(torch.device("cpu"), None, None, {0: 10**9, "cpu": 10**6})
    assert pl.device_max_memory(p) == {"cpu": 10**6}


def test_transformers_arguments_for_each_placement(tmp_path):
    cpu = pl.Placement()
    assert pl.hf_load_kwargs(cpu) == {"dtype": "auto"}
    gpu = pl.Placement(torch.device("cuda", 1), torch.bfloat16)
    assert pl.hf_load_kwargs(gpu) == {"dtype": torch.bfloat16, "device_map": {"": "cuda:1"}}
    off = pl.Placement(torch.device("cpu"), None, tmp_path / "off", {"cpu": 2**20})
    kw = pl.hf_load_kwargs(off)
    assert kw["device_map"] == "auto" and kw["max_memory"] == {"cpu": 2**20}
    assert kw["offload_folder"] == str(tmp_path / "off") and (tmp_path / "off").is_dir()


# --- loading ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_open_model_places_and_casts(device, dtype):
    model, proc = spikemllm.open_model("bundled", device=device, dtype=dtype)
    dev = torch.device(device)
    assert all(p.device.type == dev.type and p.dtype == dtype for p in model.parameters())
    assert pl.input_device(model).type == dev.type
    assert proc is not None


def test_open_model_refuses_an_absent_device(monkeypatch):
    _machine(monkeypatch)
    with pytest.raises(ConfigError, match="no CUDA device"):
        spikemllm.open_model("bundled", device="cuda")


def test_checkpoint_is_placed_with_its_integer_engine_intact(device, tmp_path):
    model, proc = spikemllm.open_model("bundled")
    spikemllm.convert(model, spikemllm.SpikeConfig(), progress=False)
    spikemllm.save(model, tmp_path / "ck", tokenizer=proc)
    back, _ = spikemllm.open_model(tmp_path / "ck", device=device, dtype="bfloat16")
    spike = [m for m in back.modules() if isinstance(m, spikemllm.SpikeLinear)]
    assert spike and all(m.qweight.dtype == torch.int8 and m.wscale.dtype == torch.float32 for m in spike)
    assert all(m.qweight.device.type == torch.device(device).type for m in spike)
    floats = [p for n, p in back.named_parameters() if p.is_floating_point()]
    assert floats and all(p.dtype == torch.bfloat16 for p in floats)


def test_cast_leaves_spike_layers_and_rotary_tables_alone():
    model, _ = tiny_model("qwen2")
    spikemllm.convert(model, spikemllm.SpikeConfig(), progress=False)
    before = {n: b.dtype for n, b in model.named_buffers() if "inv_freq" in n}
    pl.cast_float_parts(model, torch.float16)
    assert before and all(b.dtype == before[n] for n, b in model.named_buffers() if "inv_freq" in n)
    for m in model.modules():
        if isinstance(m, spikemllm.SpikeLinear):
            assert m.wscale.dtype == torch.float32 and (m.bias is None or m.bias.dtype == torch.float32)
    assert model.get_input_embeddings().weight.dtype == torch.float16


# --- offload ----------------------------------------------------------------------------------------------
def _bundled_batch(model, proc):
    from spikemllm.msts.budget import calibration_set

    return calibration_set("minibench:2", model, proc)[0]


def test_offloaded_load_computes_what_ram_computes(tmp_path):
    ram, proc = spikemllm.open_model("bundled")
    disk, _ = spikemllm.open_model("bundled", offload=tmp_path / "off", max_memory="cpu=3MiB")
    assert "disk" in set(disk.hf_device_map.values())  # the bundled model is 11 MB: most of it is on disk
    batch = _bundled_batch(ram, proc)
    with torch.no_grad():
        assert torch.equal(ram(**batch).logits, disk(**batch).logits)
    cfg = spikemllm.SpikeConfig()
    spikemllm.convert(ram, cfg, progress=False)
    settle(spikemllm.convert(disk, cfg, progress=False))
    with torch.no_grad():
        assert torch.equal(ram(**batch).logits, disk(**batch).logits)
    onload(disk)  # an ordinary model again: no meta tensor, no hook, the same function
    assert all(t.device.type != "meta" for t in disk.state_dict().values())
    assert not hasattr(disk, "hf_device_map")
    assert disk.lm_head.weight is disk.get_input_embeddings().weight  # tied weights stay tied
    with torch.no_grad():
        assert torch.equal(ram(**batch).logits, disk(**batch).logits)


def test_max_memory_without_offload_folder(tmp_path):
    # a Hugging Face folder's offloaded weights are read from its own safetensors files: no folder needed
    model, _ = spikemllm.open_model("bundled", max_memory="cpu=3MiB")
    assert "disk" in set(model.hf_device_map.values())
    # a checkpoint is built in memory first: what does not fit must be written somewhere
    ck, proc = spikemllm.open_model("bundled")
    spikemllm.save(spikemllm.convert(ck, spikemllm.SpikeConfig(), progress=False), tmp_path / "ck", tokenizer=proc)
    with pytest.raises(ConfigError, match="give --offload DIR"):
        spikemllm.open_model(tmp_path / "ck", max_memory="cpu=2MiB")


def test_offloaded_checkpoint(tmp_path):
    model, proc = spikemllm.open_model("bundled")
    spikemllm.convert(model, spikemllm.SpikeConfig(), progress=False)
    spikemllm.save(model, tmp_path / "ck", tokenizer=proc)
    disk, _ = spikemllm.open_model(tmp_path / "ck", offload=tmp_path / "off", max_memory="cpu=2MiB")
    assert "disk" in set(disk.hf_device_map.values())
    batch = _bundled_batch(model, proc)
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, disk(**batch).logits)


# --- statistics stay on the device ------------------------------------------------------------------------
READS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__")


@contextlib.contextmanager
def count_host_reads(monkeypatch):
    """Count every call that copies a tensor's value to the host (the stalls a GPU pipeline must avoid)."""
    counts = {"n": 0}
    for name in READS:
        orig = getattr(torch.Tensor, name)

        def spy(self, *a, _orig=orig, **k):
            counts["n"] += 1
            return _orig(self, *a, **k)
        monkeypatch.setattr(torch.Tensor, name, spy)
    try:
        yield counts
    finally:
        monkeypatch.undo()


def test_med_observer_reads_the_device_once(device, monkeypatch):
    model, inputs = tiny_model("qwen2_vl")
    model.to(device)
    mm = describe(model)
    linears = select_targets(mm, spikemllm.SpikeConfig())
    batches = [inputs, inputs, inputs]
    with count_host_reads(monkeypatch) as plain, torch.no_grad():
        for b in batches:
            model(**pl.to_device(b, device))  # what the model's own forward reads, hooks or not
    with count_host_reads(monkeypatch) as hooked:
        obs = observe(mm, linears, batches)
    # the hooks add no read per layer or batch: only the final copy of the sums (floats, then integers)
    assert hooked["n"] - plain["n"] <= 2, hooked["n"] - plain["n"]
    assert obs.macs and all(isinstance(v, int) for cell in obs.macs.values() for v in cell.values())
    ref = observe(mm, linears, [pl.to_device(b, "cpu") for b in batches]) if device != "cpu" else obs
    assert obs.macs == ref.macs and obs.tokens == ref.tokens


def test_kl_is_read_once_however_many_batches(device, monkeypatch):
    model, inputs = tiny_model("qwen2")
    model.to(device)
    mm = describe(model)
    ref = log_probs(model, mm, [inputs] * 4)
    assert all(r.device.type == torch.device(device).type for r in ref)  # kept where the model runs
    noisy = [r + 0.01 * torch.randn_like(r) for r in ref]
    with count_host_reads(monkeypatch) as reads:
        kl = kl_divergence(ref, noisy)
        agree = top1_agreement(ref, noisy)
    assert reads["n"] == 2 and kl > 0 and 0 <= agree <= 1
    # the same value the former per-batch host sums gave
    want = sum(float((r.exp().double() * (r.double() - q.double())).sum(-1).clamp(min=0).sum())
               for r, q in zip(ref, noisy)) / sum(r.shape[0] for r in ref)
    assert kl == want


def test_settle_puts_new_layers_where_their_block_runs():
    """A layer built after dispatch (convert's SpikeLinear) joins its nearest dispatched ancestor's execution
    device. The meta device stands in for a GPU, so the rule is tested on any machine."""
    from accelerate.hooks import AlignDevicesHook, add_hook_to_module

    root = torch.nn.Module()
    root.block = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Module())
    root.free = torch.nn.Linear(2, 2)
    add_hook_to_module(root.block, AlignDevicesHook(execution_device="meta"))
    root.block[1].new = torch.nn.Linear(2, 2)  # built on the CPU after dispatch
    settle(root)
    assert root.block[1].new.weight.device.type == "meta" and root.block[0].weight.device.type == "meta"
    assert root.free.weight.device.type == "cpu"  # no dispatched ancestor: left alone
