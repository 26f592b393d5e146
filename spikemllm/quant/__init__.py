"""Integer quantization primitives shared by every method and every coder."""
from .quantizer import (GRANULARITIES, Quantized, QuantSpec, compute_scale, dequantize, fake_quantize, quantize,
                        quantize_int8, to_units)
from .rounding import check_finite, round_half_away

__all__ = ["GRANULARITIES", "QuantSpec", "Quantized", "quantize", "quantize_int8", "dequantize", "fake_quantize",
           "compute_scale", "to_units", "round_half_away", "check_finite"]
