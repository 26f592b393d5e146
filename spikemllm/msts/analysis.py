"""``med(model, calib)``: the Modality Evolution Discrepancy analysis and per-unit sensitivities.

Three measurements, cheapest first:

1. cosines ``cos(h_l, h_{l+1})`` per block and modality, and the MAC cost per group and modality, from one
   pass of the float model (:mod:`.observe`);
2. ``sensitivity``: for every unit (block x modality), the KL of next-token distributions when only that
   unit's timesteps drop by one from the base config -- one pass per unit;
3. optional ``curves`` (``levels=[2, 3, 4, 5]``): every unit at each level with all others at the top level,
   the measured loss table the search allocator optimises over -- one pass per unit and level.
"""
from __future__ import annotations

import copy
import time
from typing import Any, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from ..calibrate.offload import settle  # a dispatched model: new layers join their block's device
from ..spikify.state import converted_config
from ..errors import ConfigError, DataError
from ..config import SpikeConfig
from ..models.base import describe
from ..spikify import convert, select_targets
from .observe import observe
from .result import MEDResult
from .sensitivity import current_timesteps, kl_divergence, log_probs, spike_groups, timesteps_override
from .units import MODALITIES, coder_max_timesteps

REFERENCES = ("converted", "fp")


def _check_calib(calib: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    batches = list(calib) if calib is not None else []
    if not batches or not all(isinstance(b, dict) for b in batches):
        raise DataError("calib must be a non-empty list of input dicts for model(**batch) "
                        "(for example spikemllm.msts.calibration_from_examples(processor, examples))")
    return batches


def _check_levels(levels: Iterable[int] | None, coder: str, signed: bool) -> list[int]:
    if levels is None:
        return []
    lv = sorted(set(levels))
    hi = coder_max_timesteps(coder, signed)
    if len(lv) < 2 or any(isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= hi for t in lv) \
            or lv != list(range(lv[0], lv[-1] + 1)):
        raise ConfigError(f"levels={list(levels)!r} is invalid; allowed: two or more consecutive integers in 1..{hi} "
                          f"(timesteps of coder {coder!r}), e.g. range(2, 6)")
    return lv


@torch.no_grad()
def med(model: nn.Module, calib: Iterable[dict[str, Any]], *, config: SpikeConfig | None = None,
        sensitivity: bool = True, reference: str = "converted", levels: Iterable[int] | None = None,
        progress: bool = False) -> MEDResult:
    """Measure MED (cosine curves per modality), costs and sensitivities of ``model`` on ``calib``.

    Args:
        model: a float Hugging Face model (left unchanged: sensitivities run on a converted copy), or a model
            already converted by :func:`spikemllm.convert` (then its own config is the base and cosines are
            those of the spiking model).
        calib: batches, each a dict for ``model(**batch)`` with image and text tokens.
        config: the base SpikeConfig (default ``SpikeConfig()``: TC-LIF, Tv/Tt = 3/4, W4, RTN). Its
            timesteps are where single-step drops are measured; its other fields carry into allocations.
        sensitivity: measure the drop-by-one sensitivity of every unit.
        reference: ``"converted"`` (KL against the unchanged converted model) or ``"fp"`` (increase of the KL
            against the float model).
        levels: timesteps at which to measure each unit's loss curve for the search allocator, e.g.
            ``range(2, 6)``; the largest is the reference every other unit sits at.
        progress: show a progress bar over the measurements.
    """
    if reference not in REFERENCES:
        raise ConfigError(f"reference={reference!r} is unknown; allowed values: {', '.join(REFERENCES)}")
    batches = _check_calib(calib)
    t0 = time.time()
    converted_in = converted_config(model) is not None
    if converted_in and config is not None and config != converted_config(model):
        raise ConfigError("model is already converted with another config; pass config=None or a float model")
    config = converted_config(model) if converted_in else (config or SpikeConfig())
    lv = _check_levels(levels, config.coder, config.signed)
    if converted_in and reference == "fp":
        raise ConfigError("reference='fp' needs the float model; pass the unconverted model")
    mm = describe(model)
    if converted_in:
        linears = {n: model.get_submodule(n) for names in spike_groups(model, mm).values() for n in names}
    else:
        linears = select_targets(mm, config)
    ob = observe(mm, linears, batches)
    result = MEDResult(
        family=mm.family, coder=config.coder, signed=config.signed,
        num_layers={k: mm.num_layers(k) for k in ("lm", "vision")}, cosine=ob.cosine(), macs=ob.macs,
        tokens=ob.tokens, base_config=config.to_dict(), sensitivity_reference=reference,
        meta={"batches": len(batches), "cosine_model": "converted" if converted_in else "fp"})
    if not (sensitivity or lv):
        result.meta["seconds"] = round(time.time() - t0, 2)
        return result

    fp_lp = None if converted_in else log_probs(model, mm, batches)
    spk = model if converted_in else settle(convert(copy.deepcopy(model), config, calib=batches, progress=False))
    smm = describe(spk)
    base_lp = log_probs(spk, smm, batches)
    result.fp_kl = None if fp_lp is None else kl_divergence(fp_lp, base_lp)
    result.meta["scored_positions"] = sum(int(x.shape[0]) for x in base_lp)
    base_t = current_timesteps(spk, smm)
    units = [u for u in result.units() if u[0] in base_t]
    steps = (len(units) if sensitivity else 0) + len(units) * max(len(lv) - 1, 0) + (1 if lv else 0)
    bar = tqdm(total=steps, desc="med", unit="run", disable=not progress)

    if sensitivity:
        base_fp_kl = result.fp_kl
        for g, m in units:
            t = base_t[g][m]
            if t <= 1:
                result.sensitivity.setdefault(g, {})[m] = None
            else:
                with timesteps_override(spk, smm, {g: {m: t - 1}}):
                    lp = log_probs(spk, smm, batches)
                val = kl_divergence(base_lp, lp) if reference == "converted" else kl_divergence(fp_lp, lp) - base_fp_kl
                result.sensitivity.setdefault(g, {})[m] = val
            bar.update(1)
    if lv:
        top = lv[-1]
        with timesteps_override(spk, smm, {g: {m: top for m in MODALITIES} for g in base_t}):
            ref_lp = log_probs(spk, smm, batches)
            bar.update(1)
            for g, m in units:
                curve = {top: 0.0}
                for t in lv[:-1]:
                    with timesteps_override(spk, smm, {g: {m: t}}):
                        curve[t] = kl_divergence(ref_lp, log_probs(spk, smm, batches))
                    bar.update(1)
                result.curves.setdefault(g, {})[m] = dict(sorted(curve.items()))
        result.curve_reference_t = top
    bar.close()
    result.meta["seconds"] = round(time.time() - t0, 2)
    return result
