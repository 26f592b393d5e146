"""The native grouped-product kernel and the one group summation order.

Every path that sums per-group partials (the native kernel, the torch int path, the float backend, faithful mode)
must give the same float32 outputs bit for bit; the order is torch's own CPU cascade (group_sum.py), so outputs
equal the engine's earlier ``x.sum(0)`` wherever torch took its main vectorised path.
"""
from __future__ import annotations

import logging

import pytest
import torch

from spikemllm.nn import SpikeLinear, native, set_backend
from spikemllm.nn.group_sum import cascade_step, ordered_group_sum
from spikemllm.quant import QuantSpec

from group_reference import cascade_sum

KERNEL = native.group_kernel()
needs_kernel = pytest.mark.skipif(KERNEL is None, reason=f"native kernel unavailable: {native.why_unavailable()}")


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_cascade_step_follows_torch_levels():
    assert cascade_step(1) == (4, 16) and cascade_step(17) == (4, 16) and cascade_step(2 ** 16) == (4, 16)
    assert cascade_step(2 ** 20 + 1) == (5, 32)  # ceil(log2) / 4 = 5 beyond 2**20 groups


@pytest.mark.parametrize("g", [1, 2, 15, 16, 17, 18, 31, 32, 33, 64, 100, 255, 256, 257, 300, 512, 560, 4096, 4113])
def test_ordered_sum_equals_torch_sum_on_its_main_path(g, one_thread):
    # 64 contiguous columns: torch's vectorised multi-row sum (the path the engine used to take for whole tiles)
    torch.manual_seed(g)
    x = torch.randn(g, 2, 64) * torch.rand(g, 1, 1) * 1000
    assert torch.equal(ordered_group_sum(x), x.sum(0))
    assert torch.equal(ordered_group_sum(x.double()), x.double().sum(0))


@pytest.mark.parametrize("g", [3, 16, 18, 40, 256, 300])
def test_ordered_sum_equals_the_stated_order_for_any_shape(g):
    torch.manual_seed(g)
    x = torch.randn(g, 7, 5) * torch.rand(g, 1, 1) * 1000
    assert torch.equal(ordered_group_sum(x), cascade_sum(x))
    assert not x.isnan().any() and torch.equal(x, x.clone())  # the input is left as it was


def _torch_path(a, w, group, s, wg):
    """The torch path's arithmetic: int32 partials per group, float32, * s, * wg, the ordered sum."""
    n, k = a.shape
    g = k // group
    acc = torch.stack([torch._int_mm(a[:, i * group:(i + 1) * group].contiguous(),
                                     w[:, i * group:(i + 1) * group].t().contiguous())
                       if n > 16 and group % 8 == 0 else
                       a[:, i * group:(i + 1) * group].int() @ w[:, i * group:(i + 1) * group].int().t()
                       for i in range(g)])
    f = acc.float()
    if s is not None:
        f = f * s.t().unsqueeze(-1)
    if wg is not None:
        f = f * wg.t().unsqueeze(1)
    return ordered_group_sum(f)


SHAPES = [(128, 256, 256, 16), (5, 1024, 33, 16), (7, 16 * 272, 20, 16), (3, 24, 5, 8), (9, 96, 17, 12),
          (1, 512, 64, 32), (19, 192, 48, 64), (2, 8, 3, 4), (4, 4, 1, 4)]


@needs_kernel
@pytest.mark.parametrize("n,k,o,group", SHAPES)
@pytest.mark.parametrize("scales", ["act", "weight", "both"])
def test_kernel_equals_torch_path_bit_for_bit(n, k, o, group, scales):
    torch.manual_seed(n * 7 + k + o)
    a = torch.randint(-127, 128, (n, k), dtype=torch.int8)
    w = torch.randint(-127, 128, (o, k), dtype=torch.int8)
    s = torch.rand(n, k // group) * 0.01 if scales in ("act", "both") else None
    wg = torch.rand(o, k // group) * 0.1 + 1e-3 if scales in ("weight", "both") else None
    ref = _torch_path(a, w, group, s, wg)
    for vnni in ([True, False] if KERNEL.vnni else [False]):  # the AVX512 path and the portable scalar path
        assert torch.equal(KERNEL(a, w, group, s, wg, vnni=vnni), ref), vnni


def _codes(seed: int, n: int, k: int, o: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    return (torch.randint(-15, 16, (n, k), dtype=torch.int8), torch.randint(-7, 8, (o, k), dtype=torch.int8),
            torch.rand(n, k // 16))


def _on_threads(threads: int, fn, *args):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(before)


@needs_kernel
def test_kernel_threads_agree():
    a, w, s = _codes(3, 70, 1536, 300)
    assert torch.equal(_on_threads(1, KERNEL, a, w, 16, s, None), _on_threads(2, KERNEL, a, w, 16, s, None))


@needs_kernel
def test_kernel_refuses_bad_arguments_with_a_message():
    a = torch.zeros(2, 32, dtype=torch.int8)
    with pytest.raises(ValueError, match="w must be a contiguous CPU torch.int8"):
        KERNEL(a, torch.zeros(3, 32, dtype=torch.int16), 16, None, None)
    with pytest.raises(ValueError, match="s must be"):
        KERNEL(a, torch.zeros(3, 32, dtype=torch.int8), 16, torch.zeros(2, 3), None)


def _layer(**kw) -> SpikeLinear:
    torch.manual_seed(0)
    return SpikeLinear.from_linear(torch.nn.Linear(256, 72), coder="tc-lif", t_text=4, **kw)


@pytest.mark.parametrize("kw", [dict(act_group_size=16), dict(act_group_size=32, weight_spec=QuantSpec(
    bits=4, granularity="per-group", group_size=32)), dict(weight_spec=QuantSpec(bits=4, granularity="per-group",
                                                                                 group_size=64))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_layer_native_equals_float_backend_and_faithful(kw, dtype):
    m = _layer(**kw).to(dtype)
    x = (torch.randn(2, 9, 256) * torch.linspace(0.1, 5, 256)).to(dtype)
    with torch.inference_mode():
        fused = m(x)
        m.mode = "faithful"
        faithful = m(x)
        m.mode = "fused"
        ref = set_backend(m, "float")(x)
    if KERNEL is not None and KERNEL.vnni:
        assert m.backend == "float"
        set_backend(m, "auto")
        assert "groups=native avx512-vnni" in repr(m)
    assert fused.dtype == dtype
    assert torch.equal(fused, ref) and torch.equal(fused, faithful)


def test_layer_without_groups_says_nothing_of_groups():
    assert "groups=" not in repr(_layer())


def test_unavailable_kernel_falls_back_with_the_same_outputs(monkeypatch, tmp_path, caplog):
    m = _layer(act_group_size=16)
    x = torch.randn(11, 256)
    with torch.inference_mode():
        before = m(x)
    monkeypatch.setenv("SPIKEMLLM_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "/bin/false")  # a compiler that fails: the build is refused, the layer still runs
    native.reset()
    try:
        with caplog.at_level(logging.WARNING, logger="spikemllm.nn.native"):
            m2 = _layer(act_group_size=16)
            with torch.inference_mode():
                after = m2(x)
        assert native.group_kernel() is None
        assert "compiling group_matmul.c with /bin/false failed" in native.why_unavailable()
        assert "groups=torch (compiling group_matmul.c" in repr(m2)
        assert sum("native group kernel unavailable" in r.message for r in caplog.records) == 1
        assert torch.equal(before, after)
        assert not list(tmp_path.rglob("*.so"))
        monkeypatch.setenv("SPIKEMLLM_NATIVE", "0")
        native.reset()
        assert native.group_kernel() is None and "SPIKEMLLM_NATIVE=0" in native.why_unavailable()
    finally:
        native.reset()


@needs_kernel
def test_build_is_cached_and_written_once(monkeypatch, tmp_path):
    monkeypatch.setenv("SPIKEMLLM_CACHE", str(tmp_path))
    native.reset()
    try:
        k1 = native.group_kernel()
        libs = list(tmp_path.rglob("*.so"))
        assert k1 is not None and len(libs) == 1 and k1.path == libs[0]
        mtime = libs[0].stat().st_mtime_ns
        native.reset()
        k2 = native.group_kernel()
        assert k2.path == libs[0] and libs[0].stat().st_mtime_ns == mtime  # reused, not rebuilt
        assert not [p for p in tmp_path.rglob("*") if p.is_dir() and p != libs[0].parent]  # no temp folder left
    finally:
        native.reset()


def test_switching_native_kernels_off_keeps_outputs_and_says_so():
    m = _layer(act_group_size=16)
    x = torch.randn(13, 256)
    with torch.inference_mode():
        on = m(x)
        before = native.set_enabled(False)
        try:
            off = m(x)
            assert "groups=torch" in repr(m)
        finally:
            native.set_enabled(before)
    assert torch.equal(on, off)


@needs_kernel
def test_kernel_built_without_openmp_starts_its_own_threads(tmp_path):
    # the fallback for a compiler without OpenMP: pthreads of its own, same outputs as one thread
    import ctypes
    import shutil

    path = tmp_path / "group_matmul-noomp.so"
    assert native._compile(shutil.which("cc") or "gcc", path, (native.NATIVE_FLAGS,)) is None
    kern = native.GroupKernel(ctypes.CDLL(str(path)), path)
    a, w, s = _codes(5, 40, 1024, 200)
    two = _on_threads(2, kern, a, w, 16, s, None)
    assert torch.equal(two, KERNEL(a, w, 16, s, None)) and torch.equal(two, _torch_path(a, w, 16, s, None))


def test_a_group_layer_that_has_run_still_copies_and_pickles(tmp_path):
    # the plan cache must not hold the ctypes kernel (it cannot be deep-copied nor pickled)
    import copy

    m = _layer(act_group_size=16)
    x = torch.randn(5, 256)
    with torch.no_grad():
        y = m(x)
        assert torch.equal(copy.deepcopy(m)(x), y)
        torch.save(m, tmp_path / "layer.pt")
        assert torch.equal(torch.load(tmp_path / "layer.pt", weights_only=False)(x), y)


@needs_kernel
def test_a_damaged_cached_library_is_rebuilt(monkeypatch, tmp_path):
    monkeypatch.setenv("SPIKEMLLM_CACHE", str(tmp_path))
    native.reset()
    try:
        path = native.library_path(native._compiler()[1])  # not loaded in this process yet: a fresh cache folder
        path.parent.mkdir(parents=True)
        path.write_bytes(b"\x7fELF truncated")  # what a full disk or a killed copy can leave
        kern = native.group_kernel()
        assert kern is not None and kern.path == path and path.stat().st_size > 1000
        a, w, s = _codes(7, 3, 64, 5)
        assert torch.equal(kern(a, w, 16, s, None), _torch_path(a, w, 16, s, None))
    finally:
        native.reset()
