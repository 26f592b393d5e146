"""Native kernels, compiled on first use with the machine's C compiler and loaded through ctypes.

Why compiled here and not shipped as a wheel: the kernel is a single C file that builds in about a second with
``-march=native`` (the AVX512-VNNI int8 dot products exist only where the CPU has them), and a pure-Python
package stays installable everywhere. The library is cached under ``~/.cache/spikemllm/native`` (or
``$SPIKEMLLM_CACHE/native``), keyed by the source, the flags, the compiler and the CPU, and written atomically, so
concurrent first uses are safe.

When no compiler is found, the build fails, or ``SPIKEMLLM_NATIVE=0`` is set, :func:`group_kernel` returns ``None``
and callers use their torch path: the same numbers (bit for bit, tested), only slower. The reason is logged once
and shown in each affected layer's ``repr``.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch

from ...logs import get_logger

log = get_logger(__name__)

SOURCE = Path(__file__).with_name("group_matmul.c")
# -ffp-contract=off: the kernel's float products and sums must round like torch's separate multiply and add.
FLAGS = ["-O3", "-std=c11", "-ffp-contract=off", "-fno-fast-math", "-fPIC", "-shared", "-pthread"]
NATIVE_FLAGS = ["-march=native"]

_lock = threading.Lock()
_state: dict[str, object] = {}


class GroupKernel:
    """``spk_group_matmul`` from the compiled library; see ``group_matmul.c`` for the exact contract."""

    def __init__(self, lib: ctypes.CDLL, path: Path) -> None:
        self.path = path
        self._fn = lib.spk_group_matmul
        p, i64 = ctypes.c_void_p, ctypes.c_int64
        self._fn.argtypes = [p, i64, i64, p, i64, i64, p, p, p, i64, ctypes.c_int]
        self._fn.restype = ctypes.c_int
        self.vnni = bool(lib.spk_has_vnni())

    def __call__(self, a: torch.Tensor, w: torch.Tensor, group: int, s: torch.Tensor | None,
                 wg: torch.Tensor | None, vnni: bool | None = None) -> torch.Tensor:
        """``[N, O]`` float32 from int8 ``a [N, K]``, int8 ``w [O, K]``, float32 ``s [N, G]`` / ``wg [O, G]``."""
        n, k = a.shape
        o = w.shape[0]
        g = k // group
        for name, t, shape, dtype in (("a", a, (n, k), torch.int8), ("w", w, (o, k), torch.int8),
                                      ("s", s, (n, g), torch.float32), ("wg", wg, (o, g), torch.float32)):
            if t is not None and (tuple(t.shape) != shape or t.dtype != dtype or not t.is_contiguous()
                                  or t.device.type != "cpu"):
                raise ValueError(f"group kernel: {name} must be a contiguous CPU {dtype} tensor of shape {shape}; "
                                 f"got {tuple(t.shape)} {t.dtype} on {t.device}")
        use_vnni = self.vnni and group % 4 == 0 if vnni is None else vnni
        out = torch.empty(n, o, dtype=torch.float32)
        rc = self._fn(a.data_ptr(), n, k, w.data_ptr(), o, group, 0 if s is None else s.data_ptr(),
                      0 if wg is None else wg.data_ptr(), out.data_ptr(), torch.get_num_threads(), int(use_vnni))
        if rc == 1:
            raise ValueError(f"group kernel refused its arguments (N={n}, K={k}, O={o}, group={group}, vnni={use_vnni})")
        if rc:
            raise MemoryError(f"group kernel could not allocate its buffers (N={n}, K={k}, O={o})")
        return out


def _cache_dir() -> Path:
    root = os.environ.get("SPIKEMLLM_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "spikemllm") / "native"


def _cpu_tag() -> str:
    """The CPU's feature flags: a library built with -march=native must not be reused on another CPU."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


# Tried in order: without OpenMP (a compiler lacking it) the kernel starts threads of its own; without
# -march=native it still builds its portable scalar path.
VARIANTS = (NATIVE_FLAGS + ["-fopenmp"], NATIVE_FLAGS, [])


def _compile(cc: str, out: Path, variants: tuple[list[str], ...] = VARIANTS) -> str | None:
    """Build into ``out``; returns None on success or the compiler's last error line."""
    last = ""
    for extra in variants:
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            target = Path(tmp) / out.name
            proc = subprocess.run([cc, *FLAGS, *extra, str(SOURCE), "-o", str(target)], capture_output=True,
                                  text=True, timeout=120)
            if proc.returncode == 0:
                os.replace(target, out)  # atomic: a concurrent user sees the old file or the whole new one
                return None
            last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
    return last


def _compiler() -> tuple[str, str] | str:
    """(compiler, its version text), or why there is none."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        return "no C compiler found (install gcc, or set CC)"
    try:
        return cc, subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return f"the C compiler {cc} did not run: {e}"


def library_path(version: str) -> Path:
    """Where the library built by a compiler with this ``--version`` text is cached on this CPU."""
    key = hashlib.sha256("\0".join([SOURCE.read_text(), " ".join(FLAGS + NATIVE_FLAGS + ["-fopenmp"]), version,
                                    _cpu_tag()]).encode()).hexdigest()[:16]
    return _cache_dir() / f"group_matmul-{key}.so"


def _build() -> GroupKernel | str:
    if os.environ.get("SPIKEMLLM_NATIVE", "1") == "0":
        return "disabled by SPIKEMLLM_NATIVE=0"
    found = _compiler()
    if isinstance(found, str):
        return found
    cc, version = found
    path = library_path(version)
    try:
        for attempt in range(2):
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                err = _compile(cc, path)
                if err:
                    return f"compiling {SOURCE.name} with {cc} failed: {err}"
            try:
                return GroupKernel(ctypes.CDLL(str(path)), path)
            except (OSError, AttributeError) as e:  # a damaged cached file (disk full, killed copy): build it again
                if attempt:
                    raise OSError(str(e)) from None
                log.warning("cached native kernel %s cannot be loaded (%s); rebuilding it", path, e)
                path.unlink(missing_ok=True)
        raise AssertionError("unreachable")
    except (OSError, subprocess.SubprocessError) as e:
        return f"building or loading {path} failed: {e}"


def group_kernel() -> GroupKernel | None:
    """The compiled grouped-product kernel, built on first call; ``None`` (reason: :func:`why_unavailable`)."""
    with _lock:
        if "kernel" not in _state:
            got = _build()
            if isinstance(got, str):
                log.warning("native group kernel unavailable (%s): activation groups use torch ops, with the same "
                            "results, slower", got)
                _state["kernel"], _state["why"] = None, got
            else:
                _state["kernel"], _state["why"] = got, ""
        return _state["kernel"]  # type: ignore[return-value]


_enabled = True


def set_enabled(flag: bool) -> bool:
    """Switch the native kernels on or off for every layer at once (benchmarks compare both paths in one run);
    returns the previous setting. Off, layers take their torch path: the same outputs, slower."""
    global _enabled
    before, _enabled = _enabled, bool(flag)
    return before


def is_enabled() -> bool:
    return _enabled


def why_unavailable() -> str:
    """Why :func:`group_kernel` returned ``None`` ("" when it is available or not tried yet)."""
    return str(_state.get("why", ""))


def reset() -> None:
    """Forget the loaded kernel (tests: rebuild under another environment)."""
    with _lock:
        _state.clear()
