"""MSTS: Modality Evolution Discrepancy (MED) analysis and automatic per-modality, per-layer timesteps.

    import spikemllm
    from spikemllm.msts import med, allocate

    result = med(model, calib, levels=range(2, 6))       # cosines, costs, sensitivities, loss curves
    cfg = allocate(result, budget=3.5, strategy="med")     # cheap: SpikeConfig from the cosine curves
    alloc, _ = search(model, calib, 3.5, result=result)    # measured: plans run and compared on calib
    spikemllm.convert(model, alloc.to_config(result.base_config))

Files: :mod:`.observe` (cosines and costs from one float pass), :mod:`.sensitivity` (in-place timestep
overrides and KL), :mod:`.analysis` (``med``), :mod:`.result` (``MEDResult``, JSON), :mod:`.allocate`
(budgeted greedy over loss tables), :mod:`.search` (measured search), :mod:`.budget` (the one budget unit:
MAC-weighted average timesteps over the calibration tokens), :mod:`.plots`, :mod:`.calib` (calibration
batches from benchmark items).
"""
from .allocate import STRATEGIES, WEIGHTINGS, Allocation, allocate, average_timesteps, budget_range, plan
from .analysis import med
from .budget import REFERENCE_CALIB, Budget, Pricer, mac_weighted_timesteps, model_budget
from .result import MEDResult
from .search import search
from .sensitivity import kl_divergence, log_probs, timesteps_override

__all__ = ["med", "MEDResult", "Budget", "Pricer", "REFERENCE_CALIB", "mac_weighted_timesteps", "model_budget",
           "allocate", "plan", "search", "Allocation", "average_timesteps", "budget_range", "STRATEGIES",
           "WEIGHTINGS", "timesteps_override", "kl_divergence", "log_probs"]
