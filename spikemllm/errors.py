"""The package's exception types: what the user can fix, told apart from bugs.

Every error a user can act on (a bad config value, a broken checkpoint, a bad data file, a model family we do
not support) is a :class:`SpikeMLLMError`. The command line turns these into one line on stderr and exit code 2;
anything else is a bug and keeps its traceback. The subclasses also derive from ``ValueError`` (or
``FileNotFoundError`` where a path is missing) so code written against the built-in types keeps working.
"""
from __future__ import annotations


class SpikeMLLMError(Exception):
    """Base class: an error the user can fix; the message says what to do."""


class ConfigError(SpikeMLLMError, ValueError):
    """A configuration value (SpikeConfig, method options, CLI flag) is invalid."""


class CheckpointError(SpikeMLLMError, ValueError):
    """A checkpoint folder is missing, incomplete, corrupt or does not fit this spikemllm."""


class DataError(SpikeMLLMError, ValueError):
    """A data file or record (benchmark, calibration) is missing or malformed; the message names it."""


class UnsupportedModel(SpikeMLLMError, ValueError):
    """The model's family has no adapter (and no user-declared layout)."""


class OutputError(SpikeMLLMError, ValueError):
    """An output target is unsafe to write (it overlaps an input, is not ours, or another run holds it)."""


class OutputExists(OutputError, FileExistsError):
    """An output target exists and replacing it was not asked for (``--overwrite``)."""


class PathNotFound(SpikeMLLMError, FileNotFoundError):
    """A path the user gave (model folder, config file, data file) does not exist or is not what is needed."""


class InsufficientMemory(SpikeMLLMError, ValueError):
    """A job would need more memory than is available; refused before it starts, with advice."""


__all__ = ["SpikeMLLMError", "ConfigError", "CheckpointError", "DataError", "UnsupportedModel", "OutputError",
           "OutputExists", "PathNotFound", "InsufficientMemory"]
