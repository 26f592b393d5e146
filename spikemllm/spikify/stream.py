"""Streaming conversion of a Hugging Face checkpoint folder: never the whole float model in memory.

``convert_folder(path, config)`` (what ``spikemllm convert --model DIR`` runs on a HF folder):

1. **checks, before any work**: the shard files the index names exist and are readable; every tensor the
   model needs is in them with the shape its config implies (and nothing else is); the memory the conversion
   needs (:func:`estimate`) fits in the memory available now. Each failure is one :class:`CheckpointError`
   line naming the file and the tensor, or an :class:`InsufficientMemory` line with advice.
2. **the model is built on the meta device** (no storage) and the tensors outside the blocks (embeddings,
   norms, projector, ``lm_head``) are loaded as they are, in ``dtype``.
3. **methods that calibrate or transform** (SmoothQuant, rotation, GPTQ) run on the model with every block
   served from the shards by accelerate's offload hooks: the calibration pipeline loads one block at a time,
   and weights a method edits are written to a temporary offload folder (the checkpoint is never modified).
4. **block by block** (vision blocks, then decoder layers; one progress bar with an ETA): the block's tensors
   are loaded (edited values where a method changed them), its target layers are quantized (RTN, or the codes
   a method chose) and swapped for SpikeLinear, and the float weights are dropped.

Peak memory: the finished spiking model, plus one float block, plus the embeddings (which the spiking model
holds anyway). The result equals, bit for bit, loading the folder with transformers and calling
:func:`spikemllm.convert` on it in place.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from ..config import SpikeConfig
from ..errors import CheckpointError, InsufficientMemory
from ..logs import get_logger
from ..methods import apply_methods
from ..methods.base import get_method
from ..models.base import ModelMap
from ..placement import DTYPES
from .convert import finish, prepare, spikify_layer
from .meta import assign, empty_model, meta_tensors, parse_dtype, release_memory

log = get_logger(__name__)

INDEX = "model.safetensors.index.json"
GiB = 1024 ** 3
AUTO_CLASSES = ("AutoModelForImageTextToText", "AutoModelForCausalLM", "AutoModel")


class NeedsInPlace(Exception):
    """The checkpoint's tensors need more than renaming to fit the model (merged or split tensors): streaming
    cannot serve them one by one, the caller converts in place instead."""


# --- the checkpoint folder ---------------------------------------------------------------------------------
@dataclass
class Entry:
    """One checkpoint tensor: its file, its name there, its shape and dtype (from the file header)."""

    file: Path
    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def nbytes(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n * torch.empty((), dtype=self.dtype).element_size()


_ST_DTYPES = {"F64": torch.float64, "F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16,
              "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
              "BOOL": torch.bool}


def scan_folder(folder: Path) -> dict[str, Entry]:
    """Checkpoint key -> :class:`Entry` from the safetensors headers (no tensor is read).

    Sharded folders are read through ``model.safetensors.index.json``: a shard it names that is missing, or
    a tensor it places in a shard that does not hold it, is refused by file and tensor name.
    """
    from safetensors import safe_open

    idx = folder / INDEX
    if idx.is_file():
        try:
            wmap = json.loads(idx.read_text())["weight_map"]
            if not isinstance(wmap, dict):
                raise TypeError("weight_map is not an object")
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{idx} is not a safetensors index ({e}); re-save the model with "
                                  "save_pretrained") from None
        files: dict[str, list[str]] = {}
        for key, fname in wmap.items():
            files.setdefault(str(fname), []).append(key)
    else:
        shards = sorted(folder.glob("*.safetensors"))
        if not shards:
            raise CheckpointError(f"{folder} holds no *.safetensors file (and no {INDEX}); only safetensors "
                                  "checkpoints can be converted: re-save the model with save_pretrained")
        files = {f.name: [] for f in shards}
    out: dict[str, Entry] = {}
    for fname, keys in files.items():
        f = folder / fname
        if not f.is_file():
            raise CheckpointError(f"{f} is missing: {INDEX} places {len(keys)} tensor(s) there, e.g. {keys[0]}; "
                                  "copy the whole checkpoint folder again")
        try:
            with safe_open(str(f), framework="pt") as h:
                names = list(h.keys())
                for name in names:
                    sl = h.get_slice(name)
                    out[name] = Entry(f, name, tuple(int(d) for d in sl.get_shape()),
                                      _ST_DTYPES.get(sl.get_dtype(), torch.float32))
        except Exception as e:  # noqa: BLE001  (safetensors raises its own error types, OSError, ...)
            raise CheckpointError(f"cannot load {f}: {' '.join(str(e).split())}; the file is truncated or "
                                  "corrupt: copy it again") from None
        for key in keys:
            if key not in names:
                raise CheckpointError(f"{f} does not hold tensor {key}, which {INDEX} places there; the shard is "
                                      "stale or from another model: copy the checkpoint again")
    return out


def model_class(folder: Path, hf_cfg: Any) -> Any:
    """The transformers class the folder was saved from (``architectures``), else the first Auto class that
    maps its config."""
    import transformers

    arch = getattr(hf_cfg, "architectures", None) or []
    for a in arch:
        if isinstance(a, str) and hasattr(transformers, a):
            return getattr(transformers, a)
    for auto in AUTO_CLASSES:
        mapping = getattr(getattr(transformers, auto, None), "_model_mapping", None)
        try:
            return mapping[type(hf_cfg)]
        except (KeyError, TypeError):
            continue
    raise CheckpointError(f"{folder / 'config.json'}: no transformers class loads model_type "
                          f"{getattr(hf_cfg, 'model_type', None)!r}")


def key_mapper(model: nn.Module) -> Callable[[str], str]:
    """Checkpoint key -> model state key, with transformers' own renaming rules for this model (the Hub's
    Qwen2-VL checkpoints say ``model.layers.0...`` where the model has ``model.language_model.layers.0...``).
    Raises :class:`NeedsInPlace` for a key that needs a tensor conversion, not just a new name."""
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key
    except ImportError:  # another transformers: names as they are
        return lambda k: k
    transforms = get_model_conversion_mapping(model)
    renamings = [t for t in transforms if isinstance(t, WeightRenaming)]
    converters = [t for t in transforms if isinstance(t, WeightConverter)]
    meta_sd = model.state_dict()
    prefix = getattr(model, "base_model_prefix", None)

    def rename(key: str) -> str:
        new, pattern = rename_source_key(key, renamings, converters, prefix, meta_sd)
        if pattern is not None:
            raise NeedsInPlace(f"{key} needs a tensor conversion ({pattern})")
        return new

    return rename


# --- memory ------------------------------------------------------------------------------------------------
def available_memory() -> int | None:
    """Bytes of memory available now (``MemAvailable`` of /proc/meminfo, else psutil); None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001
        return None


@dataclass
class Estimate:
    """What a streaming conversion will hold, in bytes."""

    spiking: int          # the finished spiking model: int8 codes, float32 scales and biases, the rest in dtype
    block: int            # the largest float block as loaded, plus float32 work copies of its largest layer
    float_model: int      # the float model in dtype, for comparison (an in-place conversion holds this)
    saving: int = 0       # spikemllm.save's int4-packed copy of the codes (the CLI saves the model it built)
    overhead: int = int(0.5 * GiB)  # interpreter, torch, calibration activations

    @property
    def peak(self) -> int:
        return self.spiking + max(self.block, self.saving) + self.overhead

    def describe(self) -> str:
        return (f"memory estimate: {self.peak / GiB:.1f} GiB peak (spiking model {self.spiking / GiB:.1f} GiB + "
                f"one float block {self.block / GiB:.2f} GiB or, when saving, the packed codes "
                f"{self.saving / GiB:.2f} GiB + {self.overhead / GiB:.1f} GiB working memory; the float model alone "
                f"is {self.float_model / GiB:.1f} GiB)")


# --- the plan ----------------------------------------------------------------------------------------------
@dataclass
class Plan:
    """A checked streaming conversion: the meta model, where every tensor comes from, and what it costs."""

    folder: Path
    model: nn.Module
    mm: ModelMap
    dtype: torch.dtype
    sources: dict[str, Entry]                 # model state key -> checkpoint tensor
    blocks: list[tuple[str, list[str]]]       # (block prefix, its state keys), in data-flow order
    outside: list[str]                        # state keys outside every block
    estimate: Estimate


def _block_prefixes(mm: ModelMap) -> list[str]:
    out = []
    for prefix in (mm.vision_layers, mm.lm_layers):
        if prefix:
            out += [f"{prefix}.{i}" for i in range(len(mm.model.get_submodule(prefix)))]
    return out


def _numel(shape: Iterable[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def plan(folder: str | os.PathLike, config: SpikeConfig, *, dtype: str | torch.dtype | None = None,
         layout: Any = None) -> Plan:
    """Check the folder against its config and estimate memory; builds only the meta model (see module doc)."""
    import transformers

    from ..models import describe
    from .convert import _check_fits
    from .select import select_targets

    p = Path(folder)
    try:
        hf_cfg = transformers.AutoConfig.from_pretrained(str(p))
    except (ValueError, OSError, KeyError, TypeError) as e:
        raise CheckpointError(f"{p / 'config.json'} cannot be read as a transformers config: "
                              f"{' '.join(str(e).split())}") from None
    entries = scan_folder(p)
    want = parse_dtype(dtype)
    if want is None:
        cfg_dtype = getattr(hf_cfg, "dtype", None) or getattr(hf_cfg, "torch_dtype", None)
        cfg_dtype = DTYPES.get(str(cfg_dtype).replace("torch.", "")) if cfg_dtype is not None else None
        stored = next((e.dtype for e in entries.values() if e.dtype.is_floating_point), torch.float32)
        want = cfg_dtype or stored
    cls = model_class(p, hf_cfg)
    model = empty_model(cls, hf_cfg, dtype=want)
    if layout is not None:
        from ..models.layout import declare_layout

        declare_layout(model, layout)
    model.config._name_or_path = str(p)  # save() refuses to write over the folder a model came from
    mm = describe(model)
    rename = key_mapper(model)
    state = model.state_dict(keep_vars=True)
    sources: dict[str, Entry] = {}
    for key, e in entries.items():
        mkey = rename(key)
        if mkey not in state:
            raise CheckpointError(f"{e.file} holds tensor {key}, which {cls.__name__} does not have; the folder "
                                  "is not a checkpoint of this model (config.json and weights disagree)")
        if tuple(state[mkey].shape) != e.shape:
            raise CheckpointError(f"{e.file}: tensor {key} has shape {list(e.shape)} but config.json implies "
                                  f"{list(state[mkey].shape)}; the weights do not fit the config")
        sources[mkey] = e
    tied = _tied_keys(model)
    persistent = set(model.state_dict().keys())
    missing = sorted(k for k in persistent if k not in sources and k not in tied)
    if missing:
        where = p / INDEX if (p / INDEX).is_file() else ", ".join(sorted({str(e.file) for e in entries.values()}))
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CheckpointError(f"{where}: tensor {missing[0]} is missing{more}; the checkpoint is incomplete or of "
                              "another model: copy it again")
    prefixes = _block_prefixes(mm)
    blocks = [(b, [k for k in sources if k.startswith(b + ".")]) for b in prefixes]
    in_block = {k for _, ks in blocks for k in ks}
    outside = [k for k in sources if k not in in_block]
    _check_fits(mm, config)
    targets = select_targets(mm, config)
    est = _estimate(model, sources, targets, blocks, config, want)
    del targets  # a reference kept here would keep every float layer alive through the conversion
    return Plan(p, model, mm, want, sources, blocks, outside, est)


def _tied_keys(model: nn.Module) -> set[str]:
    tied = getattr(model, "all_tied_weights_keys", None) or getattr(model, "_tied_weights_keys", None) or {}
    tie_cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    if not getattr(tie_cfg, "tie_word_embeddings", getattr(model.config, "tie_word_embeddings", False)):
        return set()
    return set(tied) if isinstance(tied, (dict, list, tuple, set)) else set()


def _estimate(model: nn.Module, sources: dict[str, Entry], targets: dict[str, nn.Module],
              blocks: list[tuple[str, list[str]]], config: SpikeConfig, dtype: torch.dtype) -> Estimate:
    size = torch.empty((), dtype=dtype).element_size()
    tw = {f"{n}.weight": lin for n, lin in targets.items()}
    tb = {f"{n}.bias" for n in targets}
    state = model.state_dict(keep_vars=True)
    spiking = 0
    float_model = 0
    codes = 0
    for key, t in state.items():
        n = t.numel()
        float_model += n * size if t.is_floating_point() else n * t.element_size()
        if key in tw:
            lin = tw[key]
            groups = lin.in_features // config.group_size if config.weight_granularity == "per-group" else 1
            spiking += n + lin.out_features * groups * 4
            codes += n
        elif key in tb:
            spiking += n * 4
        elif t.is_floating_point():
            spiking += n * size
        else:
            spiking += n * t.element_size()
    largest_block = max((sum(_numel(state[k].shape) for k in ks) * size for _, ks in blocks), default=0)
    largest_layer = max((lin.in_features * lin.out_features for lin in targets.values()), default=0)
    # a layer being quantized: the float32 copy, the scaled units and the rounded codes
    return Estimate(spiking=spiking, block=largest_block + 3 * 4 * largest_layer, float_model=float_model,
                    saving=(codes + 1) // 2 if config.weight_bits <= 4 else 0)


def check_memory(est: Estimate, *, available: int | None = None) -> None:
    """Refuse (InsufficientMemory, with advice) when the estimate exceeds the memory available now."""
    avail = available_memory() if available is None else available
    if avail is None or est.peak <= avail:
        return
    raise InsufficientMemory(
        f"converting needs about {est.peak / GiB:.1f} GiB but only {avail / GiB:.1f} GiB is available; free memory, "
        "or convert with --dtype bfloat16 (halves the layers kept in float), or use --offload to keep blocks on "
        "disk, or run on a machine with more memory; --no-memory-check tries anyway")


# --- loading -----------------------------------------------------------------------------------------------
class _Reader:
    """Tensors by model key, through accelerate's offload loader (so weights a method edited are read back
    from the offload folder) and cast to the conversion dtype (integers stay as stored)."""

    def __init__(self, plan_: Plan, offload_dir: Path) -> None:
        from accelerate.utils import OffloadedWeightsLoader

        self.dtype = plan_.dtype
        index = {}
        for key, e in plan_.sources.items():
            info: dict[str, Any] = {"safetensors_file": str(e.file), "weight_name": e.name}
            if e.dtype.is_floating_point and e.dtype != plan_.dtype:
                info["dtype"] = str(plan_.dtype).replace("torch.", "")
            index[key] = info
        self.loader = OffloadedWeightsLoader(index=index, save_folder=str(offload_dir))

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.loader[key]

    def read(self, keys: Iterable[str]) -> dict[str, torch.Tensor]:
        """The tensors ``keys``, each in its own memory: a tensor served straight from a safetensors file is
        copied out of the file's memory map, which is closed right after (a tensor kept as a view of the map
        would keep every page read through it resident, up to the whole checkpoint)."""
        from safetensors import safe_open

        out: dict[str, torch.Tensor] = {}
        by_file: dict[str, list[str]] = {}
        for k in keys:
            info = self.loader.index.get(k, {})
            if k in getattr(self.loader, "state_dict", {}) or info.get("safetensors_file") is None:
                out[k] = self.loader[k]  # written by a method into the offload folder
            else:
                by_file.setdefault(info["safetensors_file"], []).append(k)
        for f, ks in by_file.items():
            with safe_open(f, framework="pt") as h:
                for k in ks:
                    info = self.loader.index[k]
                    t = h.get_tensor(info.get("weight_name", k))
                    want = getattr(torch, info["dtype"]) if "dtype" in info else t.dtype
                    out[k] = t.to(want) if want != t.dtype else t.clone()
                    del t
        return out

    def load(self, model: nn.Module, keys: Iterable[str]) -> None:
        """Assign the tensors ``keys`` to ``model`` (their meta placeholders are replaced, no copy)."""
        state = self.read(keys)
        current = model.state_dict(keep_vars=True)
        for k, t in state.items():
            want = current[k].dtype
            if t.dtype != want and t.is_floating_point() and want.is_floating_point:
                state[k] = t.to(want)
        missing, unexpected = assign(model, state)
        assert not unexpected, unexpected


def _attach_offload(model: nn.Module, reader: _Reader, prefixes: list[str]) -> None:
    """Serve every block from ``reader`` through accelerate hooks (loaded per forward, dropped after)."""
    from accelerate.hooks import attach_align_device_hook

    for prefix in prefixes:
        attach_align_device_hook(model.get_submodule(prefix), execution_device="cpu", offload=True,
                                 weights_map=reader.loader, module_name=prefix)


def _detach_offload(block: nn.Module) -> None:
    from accelerate.hooks import remove_hook_from_module

    remove_hook_from_module(block, recurse=True)


def needs_forward(config: SpikeConfig) -> bool:
    """True when a method of ``config`` runs the model or edits float weights (all but RTN)."""
    return any(get_method(m).name != "rtn" for m in config.methods)


def convert_folder(folder: str | os.PathLike, config: SpikeConfig | None = None,
                   calib: Iterable[dict[str, Any]] | Callable[[nn.Module], Any] | None = None, *,
                   dtype: str | torch.dtype | None = None, progress: bool = True, memory_check: bool = True,
                   layout: Any = None, plan_: Plan | None = None) -> nn.Module:
    """Convert the HF checkpoint folder ``folder`` block by block (see the module doc); returns the spiking
    model. ``calib`` may be a function of the (meta) model that returns the calibration batches.
    ``dtype`` (``auto``: as stored) sets the dtype of everything that is not a spiking layer."""
    config = config or SpikeConfig()
    pl = plan_ or plan(folder, config, dtype=dtype, layout=layout)
    log.info(pl.estimate.describe())
    if memory_check:
        check_memory(pl.estimate)
    model, mm = pl.model, pl.mm
    t0 = time.time()
    offload_dir = Path(tempfile.mkdtemp(prefix="spikemllm-stream-"))
    try:
        reader = _Reader(pl, offload_dir)
        reader.load(model, pl.outside)
        if hasattr(model, "tie_weights"):
            model.tie_weights()
        batches = calib(model) if callable(calib) else calib
        ctx = prepare(model, config, batches, progress=progress)
        hooked = needs_forward(config)
        if hooked:
            _attach_offload(model, reader, [b for b, _ in pl.blocks])
            apply_methods(ctx, rtn=False)
        by_block: dict[str, list[str]] = {}
        for name in list(ctx.targets):
            where = mm.layer_of(name)
            key = f"{mm.vision_layers if where[0] == 'vision' else mm.lm_layers}.{where[1]}" if where else ""
            by_block.setdefault(key, []).append(name)
        bar = tqdm(total=len(pl.blocks) + 1, desc="convert", unit="block", disable=not progress)
        for prefix, keys in pl.blocks:
            block = model.get_submodule(prefix)
            if hooked:
                _detach_offload(block)
            reader.load(model, keys)
            for name in by_block.pop(prefix, []):
                spikify_layer(model, mm, ctx, name, ctx.targets.pop(name))
            release_memory()  # the block's float weights: back to the system before the next block
            bar.update(1)
        for name in by_block.pop("", []):  # projector, heads: already in memory
            spikify_layer(model, mm, ctx, name, ctx.targets.pop(name))
        bar.update(1)
        bar.close()
    finally:
        shutil.rmtree(offload_dir, ignore_errors=True)
    left = meta_tensors(model)
    if left:
        raise CheckpointError(f"{pl.folder}: no tensor for {left[:3]} in the checkpoint")
    release_memory()
    log.info(f"converted {pl.folder} block by block in {time.time() - t0:.1f}s")
    return finish(model, mm, config)


__all__ = ["Estimate", "NeedsInPlace", "Plan", "available_memory", "check_memory", "convert_folder", "plan",
           "scan_folder"]
