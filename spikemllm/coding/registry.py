"""The one registry of coders: ``SpikeConfig.coder``, :mod:`spikemllm.levels` and the layers all look names up here.

A coder registers itself where it is defined (``@register_coder`` on the class); importing
:mod:`spikemllm.coding` registers the shipped ones (``if``, ``tc-lif``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from .base import Coder

#: The paper's coder, the default of SpikeConfig and of a layer spec.
DEFAULT_CODER = "tc-lif"

#: name -> coder class; read it through :func:`get_coder` / :func:`coder_names`.
CODERS: dict[str, type["Coder"]] = {}


def register_coder(cls: type["Coder"]) -> type["Coder"]:
    """Class decorator: register ``cls`` under ``cls.coding``; a second coder with the same name is refused."""
    name = getattr(cls, "coding", "")
    if not isinstance(name, str) or not name:
        raise ValueError(f"coder class {cls.__name__} needs a non-empty 'coding' name")
    if name in CODERS and CODERS[name] is not cls:
        raise ValueError(f"coder {name!r} is already registered ({CODERS[name].__name__})")
    CODERS[name] = cls
    return cls


def unregister_coder(name: str) -> None:
    """Remove a registered coder (tests that register a toy coder clean up with this)."""
    CODERS.pop(name, None)


def coder_names() -> tuple[str, ...]:
    return tuple(sorted(CODERS))


def get_coder(name: str, what: str = "coder") -> type["Coder"]:
    """The coder class registered as ``name``; ConfigError listing the registered names otherwise."""
    cls = CODERS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError(f"{what}={name!r} is unknown; allowed values: {', '.join(coder_names())}")
    return cls


def make_coder(name: str, *, bits: int | None = None, timesteps: int | None = None, signed: bool = True) -> "Coder":
    """Build a coder by name from bits or timesteps."""
    return get_coder(name)(bits, timesteps=timesteps, signed=signed)
