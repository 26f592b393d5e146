"""MEDResult: everything :func:`spikemllm.msts.med` measured, as plain numbers that round-trip through JSON.

Groups are keyed like :attr:`spikemllm.SpikeConfig.layer_timesteps` (``"lm.<i>"``, ``"vision.<i>"``) plus
``"rest"`` for converted linears outside the blocks (see :mod:`spikemllm.msts.units`).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import DataError
from .units import MODALITIES, REST, group_sort_key

RESULT_VERSION = 1
Cell = dict[str, Any]  # modality -> value


@dataclass
class MEDResult:
    """What MED measured on one model.

    Attributes:
        family: the model family (from its adapter).
        coder / signed: the coder the sensitivities were measured with (they bound the allocator's range).
        num_layers: ``{"lm": n, "vision": n}`` blocks.
        cosine: group -> modality -> mean ``cos(h_l, h_{l+1})`` over that modality's tokens (None: no token).
        macs: group -> modality -> MACs of the converted linears over the calibration set (cost weights).
        tokens: group -> modality -> tokens through the group over the calibration set.
        base_config: the SpikeConfig (as a dict) the sensitivities were measured at; allocations keep its
            other fields (method, weight bits, ...).
        sensitivity: group -> modality -> KL of next-token distributions when only that unit's timesteps drop
            by one from ``base_config`` (None: already at 1 step, or not measured).
        sensitivity_reference: what the KL is measured against: ``"converted"`` (the unchanged converted
            model) or ``"fp"`` (the float model).
        curves: group -> modality -> {T: KL} with every other unit at ``curve_reference_t`` steps, against
            the converted model with every unit there (empty unless ``levels`` were asked for). The
            search allocator reads these.
        curve_reference_t: the timesteps every unit has in the curves' reference model.
        fp_kl: KL of the base converted model against the float model (context for the numbers above).
        meta: calibration size, run time and anything else worth keeping.
    """

    family: str
    coder: str
    signed: bool
    num_layers: dict[str, int]
    cosine: dict[str, Cell]
    macs: dict[str, Cell]
    tokens: dict[str, Cell]
    base_config: dict[str, Any]
    sensitivity: dict[str, Cell] = field(default_factory=dict)
    sensitivity_reference: str = "converted"
    curves: dict[str, dict[str, dict[int, float]]] = field(default_factory=dict)
    curve_reference_t: int | None = None
    fp_kl: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    version: int = RESULT_VERSION

    # --- views -----------------------------------------------------------------------------------------
    def groups(self) -> list[str]:
        """Every group with a cost, in token-flow order (vision tower, rest, LM)."""
        return sorted(self.macs, key=group_sort_key)

    def units(self) -> list[tuple[str, str]]:
        """(group, modality) pairs whose tokens cost something: the allocator's decision variables."""
        return [(g, m) for g in self.groups() for m in MODALITIES if self.macs[g].get(m, 0) > 0]

    def cosine_curve(self, kind: str, modality: str) -> list[float | None]:
        """``cos(h_l, h_{l+1})`` per block ``l`` of ``kind`` (``"lm"``/``"vision"``) for ``modality``."""
        return [self.cosine.get(f"{kind}.{i}", {}).get(modality) for i in range(self.num_layers.get(kind, 0))]

    def med(self, kind: str = "lm") -> list[float | None]:
        """Modality Evolution Discrepancy per block: ``cos_vision - cos_text``.

        Positive where text tokens change more than vision tokens in that block (text evolves, vision is
        carried along), negative where vision changes more; None where a modality has no tokens.
        """
        out = []
        for v, t in zip(self.cosine_curve(kind, "vision"), self.cosine_curve(kind, "text")):
            out.append(None if v is None or t is None else v - t)
        return out

    def med_score(self, kind: str = "lm") -> float | None:
        """Mean absolute MED over the blocks of ``kind`` where both modalities are present."""
        vals = [abs(x) for x in self.med(kind) if x is not None]
        return sum(vals) / len(vals) if vals else None

    def has_curves(self) -> bool:
        return bool(self.curves)

    # --- serialisation ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["curves"] = {g: {m: {str(t): v for t, v in c.items()} for m, c in cm.items()}
                       for g, cm in self.curves.items()}
        d["med"] = {"lm": self.med("lm"), "lm_score": self.med_score("lm")}  # derived, for readers of the JSON
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MEDResult":
        d = dict(d)
        d.pop("med", None)
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise DataError(f"unknown MEDResult fields {sorted(unknown)}; allowed: {sorted(known)}")
        if d.get("version", RESULT_VERSION) != RESULT_VERSION:
            raise DataError(f"MEDResult version {d['version']} is not readable; this spikemllm reads {RESULT_VERSION}")
        d["curves"] = {g: {m: {int(t): float(v) for t, v in c.items()} for m, c in cm.items()}
                       for g, cm in d.get("curves", {}).items()}
        return cls(**d)

    def save(self, path: str | Path) -> Path:
        """Write JSON atomically (temporary file, then rename): never a half-written file."""
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "MEDResult":
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise DataError(f"cannot read a MEDResult from {path}: {e}") from None
        if not isinstance(d, dict):
            raise DataError(f"{path} does not hold a MEDResult (a JSON object)")
        return cls.from_dict(d)


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON through a unique temporary file and a rename (following the umask)."""
    from ..atomic import atomic_write_text

    return atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


__all__ = ["MEDResult", "REST", "RESULT_VERSION", "write_json"]
