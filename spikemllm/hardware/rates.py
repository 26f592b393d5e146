"""Throughput of a batch-1 request from its prefill and decode phases, shared by the accelerator and GPU models."""
from __future__ import annotations


class PrefillDecodeRates:
    """Mixin for results with ``prefill`` and ``decode`` phases (each with ``tokens``, ``seconds``, ``tokens_per_s``)."""

    prefill: object
    decode: object

    @property
    def decode_tokens_per_s(self) -> float:
        return self.decode.tokens_per_s

    @property
    def end_to_end_tokens_per_s(self) -> float:
        """Generated tokens over prefill + decode time."""
        return self.decode.tokens / (self.prefill.seconds + self.decode.seconds)
