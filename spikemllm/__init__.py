"""spikemllm: spike-driven multimodal LLMs that compute exactly what the quantized model computes.

    import spikemllm
    model = spikemllm.convert(model, spikemllm.SpikeConfig(coder="tc-lif", timesteps={"vision": 3, "text": 4}))
    with spikemllm.collect_stats(model) as stats:
        model(**inputs)
    spikemllm.save(model, "out/")
"""
from .coding import IFCoder, TCLIFCoder
from .config import SpikeConfig
from .io import load, save
from .levels import level_spec
from .models import describe, supported_model_types, tiny_model
from .msts import MEDResult, allocate, med, search
from .opener import open_model
from .nn import RunStats, SpikeLinear, collect_stats, set_mode
from .quant import QuantSpec, quantize
from .spikify import convert

from .version import __version__

__all__ = ["IFCoder", "TCLIFCoder", "SpikeLinear", "SpikeConfig", "convert", "save", "load", "QuantSpec",
           "quantize", "level_spec", "collect_stats", "RunStats", "set_mode", "describe", "supported_model_types",
           "tiny_model", "open_model", "med", "allocate", "search", "MEDResult", "__version__"]
