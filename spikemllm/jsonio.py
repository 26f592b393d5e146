"""Reading a JSON file so that every failure is one typed error naming the file (never a bare JSONDecodeError)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import DataError, SpikeMLLMError


def read_json(path: str | os.PathLike, error: type[SpikeMLLMError] = DataError, what: str = "a JSON file") -> Any:
    """The decoded content of ``path``; ``error`` (a SpikeMLLMError type) naming the file if it cannot be read."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise error(f"{p} is a folder, not {what}") from None
    except FileNotFoundError:
        raise error(f"{p} does not exist (expected {what})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"cannot read {what} from {p}: {e}") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:  # JSONDecodeError; absurdly deep nesting
        raise error(f"{p} is not valid JSON ({what}): {str(e)[:200]}") from None


__all__ = ["read_json"]
