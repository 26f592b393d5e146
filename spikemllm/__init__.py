"""spikemllm: spike-driven multimodal LLMs that compute exactly what the quantized model computes."""
from .coding import IFCoder, TCLIFCoder
from .levels import level_spec
from .nn import RunStats, SpikeLinear, collect_stats, set_mode
from .quant import QuantSpec, quantize

__version__ = "0.1.0"

__all__ = ["IFCoder", "TCLIFCoder", "SpikeLinear", "QuantSpec", "quantize", "level_spec", "collect_stats",
           "RunStats", "set_mode", "__version__"]
