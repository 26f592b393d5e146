"""Spike coders (neurons) and the factory that builds one from a name."""
from __future__ import annotations

from .base import Coder
from .if_coder import IFCoder
from .tclif import TCLIFCoder

CODERS: dict[str, type[Coder]] = {"if": IFCoder, "tc-lif": TCLIFCoder}


def make_coder(name: str, *, bits: int | None = None, timesteps: int | None = None, signed: bool = True) -> Coder:
    """Build a coder by name (``"if"`` or ``"tc-lif"``) from bits or timesteps."""
    if name not in CODERS:
        raise ValueError(f"coder={name!r} is unknown; allowed values: {', '.join(CODERS)}")
    if name == "tc-lif":
        if not signed:  # TC-LIF is signed only; say so instead of silently building a signed coder
            raise ValueError("signed=False is not supported for coder='tc-lif'; allowed: signed=True "
                             "(use 'if' for unsigned codes)")
        return TCLIFCoder(bits, timesteps=timesteps)
    return IFCoder(bits, signed=signed, timesteps=timesteps)


__all__ = ["Coder", "IFCoder", "TCLIFCoder", "CODERS", "make_coder"]
