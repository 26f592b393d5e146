"""Fixture: spy on spiking attention through transformers' attention-function registry."""
from __future__ import annotations

from typing import Any, Callable

import pytest

from spikemllm.nn import spike_attention as sa


@pytest.fixture
def attention_spy(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[..., Any] | None], list]:
    """Replace the registered spiking-attention function by a wrapper; returns the list of calls.

    ``install(extra)`` makes every call append ``(module, query, key, value, attention_mask, kwargs)`` and, if
    given, run ``extra(orig, module, query, key, value, attention_mask, **kwargs)`` before the real call.
    """
    from transformers import AttentionInterface

    calls: list = []

    def install(extra: Callable[..., Any] | None = None) -> list:
        sa.register_spike_attention()
        orig = AttentionInterface._global_mapping[sa.ATTN_NAME]

        def wrapper(module, query, key, value, attention_mask=None, **kwargs):
            calls.append((module, query, key, value, attention_mask, kwargs))
            if extra is not None:
                extra(orig, module, query, key, value, attention_mask, **kwargs)
            return orig(module, query, key, value, attention_mask, **kwargs)

        monkeypatch.setitem(AttentionInterface._global_mapping, sa.ATTN_NAME, wrapper)
        return calls

    return install


