"""Saving and loading converted models: safetensors only, atomic, verified before anything is loaded.

A checkpoint folder holds:

* ``model.safetensors``: every tensor; integer weights packed (two int4 codes per byte when weight bits <= 4);
* ``config.json``: the Hugging Face model config; ``spike_config.json``: the :class:`SpikeConfig`;
* ``manifest.json``: format version, library versions, model class, packing, input transforms, and the SHA-256
  and size of ``model.safetensors``.

:func:`save` writes into a temporary sibling folder and swaps it into place (:mod:`spikemllm.atomic`), so a
crash never leaves a half-written checkpoint or loses the previous one; it refuses to write over an input or
over a folder that is not a spikemllm checkpoint (:mod:`spikemllm.targets`). :func:`load` validates the
manifest (:mod:`spikemllm.manifest`) and every checksum first, and never unpickles.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from .atomic import TargetLock, follow_umask, leftovers, recover_leftovers, sha256_file, staging_folder, swap_in
from .config import SpikeConfig
from .errors import CheckpointError, OutputError
from .logs import get_logger
from .manifest import FORMAT, FORMAT_VERSION, WEIGHTS, read_manifest_file
from .nn.spike_linear import SpikeLinear
from .nn.transforms import build_transform, transform_spec
from .targets import check_target

log = get_logger(__name__)


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """Pack int codes in -8..7 two per byte (low nibble first) along the last dim; odd lengths get padded."""
    # The low nibble of a two's-complement code is the code mod 16, so int8 codes are masked as bytes: no
    # wider temporary (packing a 2B model's codes at int16 kept gigabytes of freed buffers in the heap).
    u = q.view(torch.uint8) & 0xF if q.dtype == torch.int8 else (q.to(torch.int16) & 0xF).to(torch.uint8)
    if u.shape[-1] % 2:
        u = torch.nn.functional.pad(u, (0, 1))
    return (u[..., 0::2] | (u[..., 1::2] << 4)).contiguous()


def _fits_int4(q: torch.Tensor) -> bool:
    """All codes in -7..7 (one pass, no copy of the codes)."""
    lo, hi = torch.aminmax(q)
    return int(lo) >= -7 and int(hi) <= 7


def unpack_int4(p: torch.Tensor, n: int) -> torch.Tensor:
    lo = (p & 0xF).to(torch.int16)
    hi = (p >> 4).to(torch.int16)
    q = torch.stack([lo, hi], dim=-1).reshape(*p.shape[:-1], -1)[..., :n]
    return torch.where(q >= 8, q - 16, q).to(torch.int8)



def _model_source(model: nn.Module) -> str | None:
    """The local folder the model was loaded from, if transformers or :func:`load` recorded one."""
    src = getattr(getattr(model, "config", None), "_name_or_path", None) or getattr(model, "name_or_path", None)
    return str(src) if src and Path(str(src)).exists() else None


def save(model: nn.Module, path: str | os.PathLike, *, overwrite: bool = False, tokenizer: Any = None,
         inputs: Iterable[str | os.PathLike | None] = ()) -> Path:
    """Save a converted model to folder ``path`` atomically; returns the path.

    ``path`` may not be, contain or lie inside an input: the folder the model was loaded from, or any of
    ``inputs`` (the CLI passes its config file too). An existing ``path`` is replaced only with
    ``overwrite=True`` and only if it is a spikemllm checkpoint (or empty); the replacement is an atomic swap
    (see :mod:`spikemllm.atomic`), and a concurrent save to the same path is refused.
    """
    from safetensors.torch import save_file
    import transformers

    from .version import __version__
    from .spikify.meta import release_memory

    cfg: SpikeConfig | None = getattr(model, "spike_config", None)
    if cfg is None:
        raise ValueError("save() takes a converted model; call spikemllm.convert(model, config) first")
    out = Path(path)
    sources = [*inputs, _model_source(model)]
    check_target(out, kind="checkpoint", inputs=sources, overwrite=overwrite)
    with TargetLock(out):
        recover_leftovers(out)
        check_target(out, kind="checkpoint", inputs=sources, overwrite=overwrite)  # as it is now, under the lock
        tmp = staging_folder(out)
        try:
            tensors: dict[str, torch.Tensor] = {}
            aliases: dict[str, str] = {}
            seen: dict[tuple[int, tuple, torch.dtype], str] = {}
            packed: dict[str, list[int]] = {}
            transforms: dict[str, dict[str, Any]] = {}
            for name, mod in model.named_modules():
                if isinstance(mod, SpikeLinear) and mod.input_transform is not None:
                    transforms[name] = transform_spec(mod.input_transform)
            for key, t in model.state_dict().items():
                if t.device.type == "meta":
                    raise ValueError(f"tensor {key} is on the meta device (offloaded); load the model fully before "
                                     "saving")
                sig = (t.data_ptr(), tuple(t.shape), t.dtype)
                if t.numel() and sig in seen:  # tied weights: stored once
                    aliases[key] = seen[sig]
                    continue
                seen[sig] = key
                if key.endswith(".qweight") and t.numel() and _fits_int4(t):
                    tensors[key] = pack_int4(t)
                    packed[key] = list(t.shape)
                else:
                    tensors[key] = t.detach().contiguous().cpu()
            release_memory()  # the packing temporaries, before the file is written
            save_file(tensors, str(tmp / WEIGHTS), metadata={"format": FORMAT})
            model.config.save_pretrained(tmp)
            cfg.to_json(str(tmp / "spike_config.json"))
            _save_layout(model, tmp / LAYOUT_FILE)
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp)
            manifest = {
                "format": FORMAT, "format_version": FORMAT_VERSION, "spikemllm": __version__,
                "torch": torch.__version__, "transformers": transformers.__version__,
                "model_class": type(model).__name__,
                "attn_implementation": getattr(model.config, "_attn_implementation", None),
                "packed_int4": packed, "aliases": aliases, "input_transforms": transforms,
                # Every file is checksummed (configs too): a missing or edited one is refused before loading.
                "files": {f.relative_to(tmp).as_posix(): {"sha256": sha256_file(f), "bytes": f.stat().st_size}
                          for f in sorted(tmp.rglob("*")) if f.is_file()},
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            for f in tmp.rglob("*"):  # whatever the writers used, the checkpoint follows the umask
                follow_umask(f, folder=f.is_dir())
            swap_in(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out


LAYOUT_FILE = "layout.json"  # a declared layout (--layout), so that load() converts the same modules


def _save_layout(model: nn.Module, path: Path) -> None:
    from .models.layout import LAYOUT_ATTR

    lay = getattr(model, LAYOUT_ATTR, None)
    if lay is None:
        return
    if lay.vision_mask_fn is not None:  # Python code: it cannot be written to a file
        log.warning("the model's declared layout recognises vision tokens with a Python function, which is not "
                    "saved: load this checkpoint with spikemllm.load(path, layout=...) giving the same layout")
        return
    path.write_text(json.dumps(lay.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def recover(path: str | os.PathLike) -> None:
    """Before reading ``path``: undo what a killed save left (see :func:`spikemllm.atomic.recover_leftovers`).

    Only when leftovers exist and no live writer holds the target; otherwise nothing is touched.
    """
    p = Path(path)
    if not any(True for _ in leftovers(p)):
        return
    try:
        with TargetLock(p, f"checkpoint {p}"):
            recover_leftovers(p)
    except OutputError:
        if not p.exists():
            raise CheckpointError(f"{p} is being written by another process right now; load it when that save "
                                  "has finished") from None
    except OSError as e:  # a read-only parent: leave the leftovers, load what is there
        log.warning(f"could not clean up after an interrupted save of {p}: {e}")


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The validated manifest of checkpoint ``path`` as a dict, after checking every file's size and SHA-256."""
    p = Path(path)
    recover(p)
    if not p.is_dir():
        raise CheckpointError(f"{p} is not a folder; give the folder written by spikemllm.save")
    mf = p / "manifest.json"
    if not mf.is_file():
        raise CheckpointError(f"{p} is not a spikemllm checkpoint (no manifest.json)")
    m = read_manifest_file(mf)
    for fname, info in m.files.items():
        f = p / fname
        if not f.is_file():
            raise CheckpointError(f"{p} is incomplete: {fname} is missing")
        if f.stat().st_size != info.bytes:
            raise CheckpointError(f"{f} is truncated or corrupt: {f.stat().st_size} bytes, expected {info.bytes}")
        if sha256_file(f) != info.sha256:
            raise CheckpointError(f"{f} is corrupt: its SHA-256 does not match the manifest")
    return m.model_dump()


def _read_weights(f: Path, packed: dict[str, list[int]], window: int = 512 * 2 ** 20) -> dict[str, torch.Tensor]:
    """Every tensor of ``f``, int4-packed ones unpacked, each in memory of its own.

    Why not ``load_file``: its tensors are views of the file's memory map, so every page read (the packed codes
    too, unused once unpacked) would stay resident for the model's lifetime. Here each tensor is copied out (or
    unpacked) and the map is closed after every ``window`` bytes, so loading holds the model plus one window.
    """
    from safetensors import SafetensorError, safe_open

    state: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(f), framework="pt") as h:
            keys = list(h.keys())
        missing = [k for k in packed if k not in keys]
        if missing:
            raise CheckpointError(f"{f.parent / 'manifest.json'}: packed tensor {missing[0]!r} is not in {f.name}")
        i = 0
        while i < len(keys):
            read = 0
            with safe_open(str(f), framework="pt") as h:
                while i < len(keys) and read < window:
                    key = keys[i]
                    t = h.get_tensor(key)
                    read += t.numel() * t.element_size()
                    if key in packed:
                        shape = packed[key]
                        try:
                            state[key] = unpack_int4(t, shape[-1]).reshape(shape)
                        except RuntimeError as e:
                            raise CheckpointError(f"{f.parent / 'manifest.json'}: packed tensor {key!r} does not "
                                                  f"unpack to {shape}: {str(e).splitlines()[0]}") from None
                    else:
                        state[key] = t.clone()
                    del t
                    i += 1
    except SafetensorError as e:
        raise CheckpointError(f"{f} cannot be read: {e}") from None
    return state


def load(path: str | os.PathLike, *, progress: bool = False, dtype: str | torch.dtype | None = None,
         device: str | torch.device | None = None, layout: Any = None) -> nn.Module:
    """Load a converted model saved by :func:`save`; outputs are bit-identical to the saved model's.

    Lean: the model is built on the meta device and the saved tensors are put in place (no random
    initialisation, no second copy). ``dtype`` (``"auto"``/None: as saved; ``"float32"``, ``"bfloat16"``,
    ``"float16"`` or a torch dtype) applies to the float tensors outside the spiking layers (embeddings, norms,
    ``lm_head``); integer weight codes stay int8 and SpikeLinear scales and biases stay float32 under any dtype.
    ``device`` places every tensor there (default: CPU). A model converted with a declared layout (``--layout``,
    :func:`spikemllm.models.declare_layout`) is rebuilt with the layout saved beside it; ``layout`` (a file, a dict,
    a Layout or a ModelMap) overrides it, and is needed only when that layout recognised vision tokens with a Python
    function (not saved).
    """
    import transformers
    from .spikify import convert
    from .spikify.meta import assign, cast_state, empty_model, meta_tensors, parse_dtype, release_memory

    want_dtype = parse_dtype(dtype)
    p = Path(path)
    m = read_manifest(p)
    try:
        spike_cfg = SpikeConfig.from_json(str(p / "spike_config.json"))
    except ValueError as e:
        raise CheckpointError(f"{p / 'spike_config.json'} is invalid: {e}") from None
    cls = getattr(transformers, m["model_class"], None)
    if cls is None:
        raise CheckpointError(f"model class {m['model_class']} is not in transformers {transformers.__version__}")
    try:
        hf_cfg = transformers.AutoConfig.from_pretrained(str(p))
    except (ValueError, OSError, KeyError) as e:
        msg = " ".join(str(e).split())
        raise CheckpointError(f"{p / 'config.json'} cannot be read: {msg}") from None
    want = getattr(cls, "config_class", None)
    if want is None or not isinstance(hf_cfg, want):
        raise CheckpointError(f"{p / 'manifest.json'}: model_class {m['model_class']} does not fit config.json "
                              f"(model_type {getattr(hf_cfg, 'model_type', None)!r})")
    attn = m["attn_implementation"]
    attn = attn if attn in ("eager", "sdpa") else "eager"
    extra = {"dtype": want_dtype} if want_dtype is not None else {}
    model = empty_model(cls, hf_cfg, attn_implementation=attn, **extra)
    model.config._name_or_path = str(p)  # save() refuses to write over the folder a model came from
    if layout is None and LAYOUT_FILE in m["files"]:
        layout = p / LAYOUT_FILE
    if layout is not None:
        from .errors import ConfigError
        from .models.layout import declare_layout

        try:
            declare_layout(model, layout)
        except ConfigError as e:
            raise CheckpointError(f"{p}: its layout does not fit the model: {e}") from None
    convert(model, spike_cfg, progress=progress, quantize_weights=False)
    for name, spec in m["input_transforms"].items():
        try:
            model.get_submodule(name).input_transform = build_transform(spec)
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{p / 'manifest.json'}: input transform of {name!r} cannot be built: {e}") from None
    state = _read_weights(p / WEIGHTS, m["packed_int4"])
    for key, src in m["aliases"].items():
        if src not in state:
            raise CheckpointError(f"{p / 'manifest.json'}: alias {key!r} points to {src!r}, which is not in {WEIGHTS}")
        state[key] = state[src]
    shapes = {k: tuple(v.shape) for k, v in model.state_dict(keep_vars=True).items()}
    bad = next((k for k, t in state.items() if k in shapes and tuple(t.shape) != shapes[k]), None)
    if bad is not None:  # the weights do not fit the config
        raise CheckpointError(f"{p} does not fit {m['model_class']}: size mismatch for {bad}: copying a param with "
                              f"shape {tuple(state[bad].shape)} from checkpoint, the shape in current model is "
                              f"{shapes[bad]}")
    state = cast_state(model, state, want_dtype, device)
    missing, unexpected = assign(model, state)
    del state
    if missing or unexpected:
        raise CheckpointError(f"{p} does not fit {m['model_class']}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    left = meta_tensors(model)
    if left:
        raise CheckpointError(f"{p} does not fit {m['model_class']}: no saved value for {left[:5]}")
    if device is not None:
        model.to(device)  # the buffers the model computes itself (rotary frequencies)
    release_memory()  # the int4 unpacking temporaries
    return model
