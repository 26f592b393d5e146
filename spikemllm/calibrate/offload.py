"""Read and write parameters of models that accelerate dispatched with CPU or disk offload.

Why: on an offloaded module (``device_map`` with ``"cpu"``/``"disk"`` entries) the parameter outside a forward
pass is a ``meta`` tensor; accelerate's hook loads the real value from a weights map at each forward and drops
it afterwards. So ``module.weight`` can be neither read nor edited in place. Methods that edit weights
(SmoothQuant, rotation, sequential GPTQ) go through :func:`read_param` and :func:`write_param`, which work the
same on ordinary modules and offloaded ones.

Writes to a disk-offloaded weight go to a new ``<name>.dat`` file in the offload folder (accelerate's own
format) and update the loader's index, so memory stays bounded and the user's checkpoint files (which the index
may point into) are never modified. Without an offload folder the value is kept in the loader's in-memory map.
"""
from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import torch
from torch import nn


def _offload_slot(module: nn.Module, name: str) -> tuple[Any, str] | None:
    """``(weights_map, key)`` when ``module.<name>`` is served by an accelerate offload hook, else None."""
    hook = getattr(module, "_hf_hook", None)
    hooks = list(getattr(hook, "hooks", ())) or [hook]  # accelerate's SequentialHook holds several
    wm = next((h.weights_map for h in hooks if getattr(h, "offload", False) and getattr(h, "weights_map", None)
               is not None), None)
    if wm is None:
        return None
    prefix = ""
    while hasattr(wm, "dataset") and hasattr(wm, "prefix"):  # accelerate's PrefixedDataset
        prefix, wm = prefix + wm.prefix, wm.dataset
    key = prefix + name
    try:
        wm[key]
    except KeyError:
        return None
    return wm, key


def is_offloaded(module: nn.Module) -> bool:
    """True when any direct parameter of ``module`` lives in an accelerate offload map."""
    return any(_offload_slot(module, n) is not None for n, _ in module.named_parameters(recurse=False))


def read_param(module: nn.Module, name: str) -> torch.Tensor:
    """A detached copy of ``module.<name>`` (from the offload map when offloaded)."""
    slot = _offload_slot(module, name)
    if slot is not None:
        wm, key = slot
        return torch.as_tensor(wm[key]).detach().clone()
    t = getattr(module, name)
    if t is None:
        raise ValueError(f"{type(module).__name__} has no {name!r}")
    if t.device.type == "meta":
        raise ValueError(f"{type(module).__name__}.{name} is on the meta device and no accelerate offload map serves "
                         "it; load the model with its weights (or dispatch it with accelerate) before calibrating")
    return t.detach().clone()


def write_param(module: nn.Module, name: str, value: torch.Tensor) -> None:
    """Replace ``module.<name>`` by ``value`` (same shape; stored in the parameter's dtype)."""
    slot = _offload_slot(module, name)
    if slot is not None:
        wm, key = slot
        old = wm[key]
        if tuple(old.shape) != tuple(value.shape):
            raise ValueError(f"cannot write {key}: shape {tuple(value.shape)} != {tuple(old.shape)}")
        v = value.detach().to("cpu", old.dtype).contiguous()
        folder = getattr(wm, "save_folder", None)
        if folder is not None and hasattr(wm, "index"):
            from accelerate.utils import offload_weight
            getattr(wm, "state_dict", {}).pop(key, None)
            offload_weight(v, key, folder, index=wm.index)
        elif hasattr(wm, "state_dict"):
            wm.state_dict[key] = v
        elif isinstance(wm, MutableMapping):
            wm[key] = v
        else:
            raise ValueError(f"cannot write offloaded {key}: unknown weights map {type(wm).__name__}")
        return
    p = getattr(module, name)
    if tuple(p.shape) != tuple(value.shape):
        raise ValueError(f"cannot write {type(module).__name__}.{name}: shape {tuple(value.shape)} != {tuple(p.shape)}")
    with torch.no_grad():
        p.copy_(value.to(p.device, p.dtype))


def offload_blocks_to_disk(model: nn.Module, folder: str) -> nn.Module:
    """Dispatch ``model`` with accelerate so that every decoder/vision block lives in ``folder`` on disk and is
    loaded only while it runs (the rest stays in RAM): the path for models larger than memory. Calibration and
    :func:`spikemllm.convert` work on the result and give what they give in RAM."""
    import accelerate

    from ..models import describe

    mm = describe(model)
    device_map = {"": "cpu"}
    for prefix in (mm.lm_layers, mm.vision_layers):
        if prefix:
            device_map.update({f"{prefix}.{i}": "disk" for i in range(len(model.get_submodule(prefix)))})
    return accelerate.dispatch_model(model, device_map=device_map, offload_dir=str(folder))


def _hooks_of(module: nn.Module) -> list[Any]:
    hook = getattr(module, "_hf_hook", None)
    return [h for h in (list(getattr(hook, "hooks", ())) or [hook]) if h is not None]


def _execution_device(module: nn.Module) -> Any:
    """The device accelerate runs ``module`` on, or None when no hook of accelerate manages it."""
    return next((h.execution_device for h in _hooks_of(module) if getattr(h, "execution_device", None) is not None),
                None)


def settle(model: nn.Module) -> nn.Module:
    """After :func:`spikemllm.convert` on a dispatched model: put every module that accelerate does not manage
    (the new SpikeLinear layers, built on the CPU where the float layer was offloaded) on the execution device
    of its nearest dispatched ancestor, so a block that accelerate runs on a GPU finds its layers there. A
    no-op on a model that is not dispatched, or on a CPU-only dispatch."""
    if getattr(model, "hf_device_map", None) is None and not any(_hooks_of(m) for m in model.modules()):
        return model

    def walk(mod: nn.Module, device: Any) -> None:
        own = _execution_device(mod)
        if own is not None:
            device = own
        elif device is not None:
            mine = [*mod.parameters(recurse=False), *(b for b in mod.buffers(recurse=False) if b is not None)]
            target = torch.device(device) if not isinstance(device, int) else torch.device("cuda", device)
            if mine and all(t.device.type != "meta" for t in mine) and any(t.device != target for t in mine):
                mod.to(target)
        for child in mod.children():
            walk(child, device)

    walk(model, None)
    return model


def onload(model: nn.Module) -> nn.Module:
    """Bring every offloaded parameter and buffer back into its module (the CPU, or the GPU it ran on) and
    remove accelerate's hooks: an ordinary model again, e.g. to save it. Call it once the model is small enough
    to hold: after :func:`spikemllm.convert`, whose integer codes take a byte per weight. Tied weights stay tied.
    A model that is not dispatched is returned as it is."""
    hooked = [m for m in model.modules() if _hooks_of(m)]
    if not hooked:
        return model
    from accelerate.hooks import remove_hook_from_module

    for mod in hooked:
        # an offloaded weight comes back to the CPU (it did not fit the GPU); the others stay where they ran
        dev = "cpu" if any(getattr(h, "offload", False) for h in _hooks_of(mod)) else (_execution_device(mod) or "cpu")
        for name, t in [*mod.named_parameters(recurse=False), *mod.named_buffers(recurse=False)]:
            if t is None or t.device.type != "meta":
                continue
            value = read_param(mod, name).to(dev)
            if isinstance(t, nn.Parameter):
                setattr(mod, name, nn.Parameter(value, requires_grad=t.requires_grad))
            else:
                mod._buffers[name] = value
    remove_hook_from_module(model, recurse=True)
    for attr in ("hf_device_map",):
        if hasattr(model, attr):
            try:
                delattr(model, attr)
            except AttributeError:  # pragma: no cover - a class attribute
                pass
    if hasattr(model, "tie_weights"):
        model.tie_weights()  # each tied parameter was read from the map on its own; tie them again
    return model
