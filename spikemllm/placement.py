"""Where a model runs and in which dtype: ``--device``, ``--dtype``, ``--offload`` and ``--max-memory``, resolved once.

Every command that loads a model, and :func:`spikemllm.open_model`, take the same four options:

* ``device``: ``auto`` (CUDA when present -- device ``LOCAL_RANK`` under ``torchrun`` --, else Apple's MPS, else
  the CPU), ``cpu``, ``cuda`` (``cuda:N`` in Python) or ``mps``. Asking for a device the machine lacks is a
  one-line :class:`~spikemllm.errors.ConfigError` that says what to use instead, never a stack trace from deep
  inside torch.
* ``dtype``: ``auto`` (the dtype the weights are stored in: what the checkpoint's author ran), ``float32``,
  ``bfloat16`` or ``float16``. It applies to the float parts of a model; the integer engine of a converted model
  keeps its int8 codes and float32 scales whatever the dtype (:class:`~spikemllm.SpikeLinear` casts its output
  back to its input's dtype).
* ``offload``: a folder for weights that do not fit: the model is loaded with accelerate's ``device_map="auto"``,
  which fills ``device`` (and the CPU) up to ``max_memory`` and leaves the rest on disk in that folder, loading
  each block only while it runs. For models larger than memory.
* ``max_memory``: how much each device may hold, ``"cpu=2GiB"`` or ``"0=70GiB,cpu=100GiB"`` (accelerate's
  format; GPU ids as integers). Devices the string does not name get no share, except the chosen GPU, which
  gets what accelerate measures free.

Why here and not in each command: the rules (which CUDA device under torchrun, which dtype ``auto`` means, what
goes to disk) must be the same for convert, eval, med, energy and demo, and testable without a GPU.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .errors import ConfigError
from .logs import get_logger

log = get_logger(__name__)

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES: dict[str, torch.dtype | None] = {"auto": None, "float32": torch.float32, "bfloat16": torch.bfloat16,
                                         "float16": torch.float16}
_DTYPE_ALIASES = {"fp32": "float32", "float": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", flags=re.I)


def cuda_available() -> bool:
    """True when torch sees at least one CUDA device (a function so tests can pretend either way)."""
    return torch.cuda.is_available()


def mps_available() -> bool:
    """True when torch was built with Apple's Metal backend and it is usable here."""
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _local_rank() -> int:
    """The GPU index torchrun gives this process (``LOCAL_RANK``), 0 outside torchrun. More processes than
    GPUs share them round-robin."""
    try:
        rank = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        rank = 0
    n = torch.cuda.device_count() or 1
    return rank % n


def resolve_device(spec: str | torch.device | None = "auto", *, flag: str = "--device") -> torch.device:
    """The :class:`torch.device` that ``spec`` names on this machine; ConfigError when it is absent.

    ``auto`` picks CUDA (``cuda:LOCAL_RANK``), else MPS, else the CPU. ``cuda`` without an index also honours
    ``LOCAL_RANK``, so one command line serves every torchrun process.
    """
    text = "auto" if spec is None else str(spec).strip().lower()
    base, _, index = text.partition(":")
    if index and not index.isdigit():
        raise ConfigError(f"{flag} {spec}: the device index must be an integer (e.g. cuda:0)")
    if base == "auto":
        if cuda_available():
            return torch.device("cuda", _local_rank())
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if base == "cpu":
        return torch.device("cpu")
    if base == "cuda":
        if not cuda_available():
            raise ConfigError(f"{flag} {spec}: this machine has no CUDA device; use {flag} cpu (or {flag} auto)")
        n = torch.cuda.device_count()
        i = int(index) if index else _local_rank()
        if i >= n:
            raise ConfigError(f"{flag} {spec}: this machine has {n} CUDA device(s) (cuda:0..cuda:{n - 1}); "
                              "give one of those")
        return torch.device("cuda", i)
    if base == "mps":
        if not mps_available():
            raise ConfigError(f"{flag} {spec}: this machine has no Apple MPS device; use {flag} cpu "
                              f"(or {flag} auto)")
        return torch.device("mps")
    raise ConfigError(f"{flag} {spec} is unknown; allowed: {', '.join(DEVICES)} (or cuda:N)")


def resolve_dtype(spec: str | torch.dtype | None = "auto", *, flag: str = "--dtype") -> torch.dtype | None:
    """The torch dtype ``spec`` names, or None for ``auto`` (keep the dtype the weights are stored in)."""
    if spec is None or isinstance(spec, torch.dtype):
        if spec is not None and spec not in DTYPES.values():
            raise ConfigError(f"{flag} {spec}: not a model dtype; allowed: {', '.join(DTYPES)}")
        return spec
    key = str(spec).strip().lower().removeprefix("torch.")
    key = _DTYPE_ALIASES.get(key, key)
    if key not in DTYPES:
        raise ConfigError(f"{flag} {spec!r} is unknown; allowed: {', '.join(DTYPES)}")
    return DTYPES[key]


def parse_size(text: str, *, flag: str = "--max-memory") -> int:
    """Bytes in ``"2GiB"``, ``"500MB"``, ``"1.5GiB"`` or a plain integer (accelerate's units)."""
    m = _SIZE.match(str(text))
    if not m:
        raise ConfigError(f"{flag}: {text!r} is not a size; write e.g. 2GiB, 500MiB or 800MB")
    value, unit = float(m.group(1)), (m.group(2) or "B").upper()
    scale = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
             "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}[unit]
    return int(value * scale)


def parse_max_memory(spec: str | Mapping[Any, Any] | None, *, flag: str = "--max-memory"
                     ) -> dict[int | str, int] | None:
    """``"cpu=2GiB,0=70GiB"`` (or a mapping) as accelerate's ``max_memory``: ``{"cpu": bytes, 0: bytes}``."""
    if spec is None:
        return None
    items = spec.items() if isinstance(spec, Mapping) else (
        part.split("=", 1) if "=" in part else (part, None) for part in str(spec).split(",") if part.strip())
    out: dict[int | str, int] = {}
    for key, size in items:
        k = str(key).strip().lower()
        if size is None:
            raise ConfigError(f"{flag} {spec!r}: each entry is DEVICE=SIZE, e.g. cpu=2GiB or 0=70GiB")
        if k.startswith("cuda:"):
            k = k[5:]
        if k.isdigit():
            dev: int | str = int(k)
        elif k in ("cpu", "mps", "disk"):
            dev = k
        else:
            raise ConfigError(f"{flag} {spec!r}: unknown device {key!r}; use cpu, mps or a GPU index (0, 1, ...)")
        out[dev] = size if isinstance(size, int) else parse_size(size, flag=flag)
    if not out:
        raise ConfigError(f"{flag} {spec!r} names no device; write e.g. cpu=2GiB")
    return out


@dataclass(frozen=True)
class Placement:
    """A resolved placement: the device the model computes on, its float dtype (None: as stored), and
    where weights that do not fit go (``offload`` folder, ``max_memory`` per device)."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype | None = None
    offload: Path | None = None
    max_memory: dict[int | str, int] | None = None

    @property
    def dispatched(self) -> bool:
        """True when accelerate spreads the model (offload folder or per-device limits)."""
        return self.offload is not None or self.max_memory is not None

    def describe(self) -> str:
        """One line for logs: ``cuda:0, bfloat16, offload to out/off (cpu=2GiB)``."""
        s = f"{self.device}, {str(self.dtype or 'stored dtype').removeprefix('torch.')}"
        if self.dispatched:
            mem = ",".join(f"{k}={v / 2**20:.0f}MiB" for k, v in (self.max_memory or {}).items())
            s += (f", offload to {self.offload}" if self.offload else ", spread by accelerate") + \
                (f" ({mem})" if mem else "")
        return s


def placement(device: str | torch.device | None = "auto", dtype: str | torch.dtype | None = "auto",
              offload: str | os.PathLike | None = None, max_memory: str | Mapping[Any, Any] | None = None
              ) -> Placement:
    """Resolve the four options into a :class:`Placement` (errors name the CLI flag)."""
    return Placement(device=resolve_device(device), dtype=resolve_dtype(dtype),
                     offload=None if offload is None else Path(os.fspath(offload)).expanduser(),
                     max_memory=parse_max_memory(max_memory))


def device_max_memory(p: Placement) -> dict[int | str, int] | None:
    """The ``max_memory`` accelerate gets: the user's limits, plus the chosen GPU's free memory when the user
    named none for it; only the CPU (and disk) for a CPU run, so accelerate never plans onto another device."""
    if not p.dispatched:
        return None
    mem = dict(p.max_memory or {})
    if p.device.type == "cuda" and p.device.index not in mem:
        free, _ = torch.cuda.mem_get_info(p.device.index)
        mem[p.device.index] = int(free * 0.9)  # headroom for activations
    elif p.device.type == "mps" and "mps" not in mem:
        mem["mps"] = int(torch.mps.recommended_max_memory() * 0.9) if hasattr(torch.mps, "recommended_max_memory") \
            else 0
    if "cpu" not in mem:
        import psutil

        mem["cpu"] = int(psutil.virtual_memory().available * 0.9)
    # a CPU run plans onto the CPU only: a stray GPU id would make accelerate place blocks there
    return {k: v for k, v in mem.items() if k in ("cpu", "disk") or p.device.type != "cpu"}


def hf_load_kwargs(p: Placement) -> dict[str, Any]:
    """Keyword arguments for transformers' ``from_pretrained`` that load straight into placement ``p``
    (weights never pass through a full CPU copy on the way to the GPU)."""
    kw: dict[str, Any] = {"dtype": p.dtype if p.dtype is not None else "auto"}
    if p.dispatched:
        kw.update(device_map="auto", max_memory=device_max_memory(p))
        if p.offload is not None:
            p.offload.mkdir(parents=True, exist_ok=True)
            kw["offload_folder"] = str(p.offload)
    elif p.device.type != "cpu":
        kw["device_map"] = {"": str(p.device)}
    return kw


def cast_float_parts(model: nn.Module, dtype: torch.dtype | None) -> nn.Module:
    """Cast the float parameters and persistent buffers of ``model`` to ``dtype``, leaving the integer engine
    (SpikeLinear: int8 codes, float32 scales) and non-persistent buffers (rotary ``inv_freq``, kept float32 by
    transformers too) as they are. What ``from_pretrained(dtype=...)`` gives a float model."""
    if dtype is None:
        return model
    from .nn.spike_linear import SpikeLinear

    skip = {id(m) for sl in model.modules() if isinstance(sl, SpikeLinear) for m in sl.modules()}
    for mod in model.modules():
        if id(mod) in skip:
            continue
        for name, prm in list(mod.named_parameters(recurse=False)):
            if prm.is_floating_point() and prm.dtype != dtype and prm.device.type != "meta":
                prm.data = prm.data.to(dtype)
        for name, buf in list(mod.named_buffers(recurse=False)):
            persistent = name not in getattr(mod, "_non_persistent_buffers_set", set())
            if buf is not None and persistent and buf.is_floating_point() and buf.dtype != dtype:
                setattr(mod, name, buf.to(dtype))
    if getattr(model, "config", None) is not None and hasattr(model.config, "dtype"):
        try:
            model.config.dtype = dtype
        except (AttributeError, TypeError):  # pragma: no cover - a config without a settable dtype
            pass
    return model


def place(model: nn.Module, p: Placement) -> nn.Module:
    """Put an already built ``model`` (a spikemllm checkpoint, a tiny test model) where ``p`` says: cast its float
    parts, then move it, or dispatch it with accelerate when ``p`` offloads. Returns the model."""
    cast_float_parts(model, p.dtype)
    if not p.dispatched:
        return model.to(p.device)
    import accelerate

    no_split = list(getattr(model, "_no_split_modules", None) or [])
    device_map = accelerate.infer_auto_device_map(model, max_memory=device_max_memory(p),
                                                  no_split_module_classes=no_split)
    if any(v == "disk" for v in device_map.values()) and p.offload is None:
        raise ConfigError("the model does not fit --max-memory: give --offload DIR for the part that does not")
    if p.offload is not None:
        p.offload.mkdir(parents=True, exist_ok=True)
    main = p.device if p.device.type != "cpu" else "cpu"
    return accelerate.dispatch_model(model, device_map=device_map, main_device=str(main),
                                     offload_dir=None if p.offload is None else str(p.offload))


def input_device(model: nn.Module) -> torch.device:
    """Where a batch for ``model`` must be: its first device that computes (accelerate's execution device when
    the model is dispatched; never ``meta``/``disk``)."""
    dm = getattr(model, "hf_device_map", None)
    if isinstance(dm, Mapping) and dm:
        for v in dm.values():
            if v not in ("cpu", "disk", "meta"):
                return torch.device("cuda", v) if isinstance(v, int) else torch.device(v)
        return torch.device("cpu")
    for prm in model.parameters():
        if prm.device.type != "meta":
            return prm.device
    for buf in model.buffers():
        if buf.device.type != "meta":
            return buf.device
    return torch.device("cpu")


def to_device(batch: Mapping[str, Any], device: torch.device | str) -> dict[str, Any]:
    """``batch`` with every tensor on ``device`` (non-blocking where the copy allows it)."""
    dev = torch.device(device)
    return {k: v.to(dev, non_blocking=True) if isinstance(v, torch.Tensor) and v.device != dev else v
            for k, v in batch.items()}


__all__ = ["DEVICES", "DTYPES", "Placement", "cast_float_parts", "cuda_available", "device_max_memory",
           "hf_load_kwargs", "input_device", "mps_available", "parse_max_memory", "parse_size", "place",
           "placement", "resolve_device", "resolve_dtype", "to_device"]
