"""The command line's edges, the same for every subcommand: -v/--verbose and -q/--quiet set the log level; a
user error (SpikeMLLMError) is one line and exit code 2; anything else is a bug and keeps its traceback."""
from __future__ import annotations

import logging

import pytest

from spikemllm.cli import main as cli
from spikemllm.errors import ConfigError


@pytest.fixture
def restore_logger():
    log = logging.getLogger("spikemllm")
    saved = (log.level, list(log.handlers), log.propagate)
    yield log
    log.setLevel(saved[0])
    log.handlers[:] = saved[1]
    log.propagate = saved[2]


def _subparsers():
    ap = cli.build_parser()
    sub = next(a for a in ap._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices


def test_every_subcommand_has_verbose_and_quiet():
    for name, p in _subparsers().items():
        flags = {s for a in p._actions for s in a.option_strings}
        assert {"--verbose", "--quiet"} <= flags, name


@pytest.mark.parametrize("flag,level", [([], logging.INFO), (["--verbose"], logging.DEBUG),
                                        (["-q"], logging.WARNING)])
def test_verbosity_sets_the_log_level(flag, level, monkeypatch, restore_logger):
    seen = {}
    monkeypatch.setattr("spikemllm.cli.hw.run", lambda args: seen.setdefault("level", restore_logger.level) and 0)
    assert cli.main(["hw", *flag]) == 0
    assert seen["level"] == level


def test_user_errors_are_one_line_and_exit_2(monkeypatch, capsys, restore_logger):
    def boom(args):
        raise ConfigError("first line\nsecond line: what to do")
    monkeypatch.setattr("spikemllm.cli.hw.run", boom)
    assert cli.main(["hw"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "spikemllm hw: error: first line second line: what to do"


def test_bugs_keep_their_traceback(monkeypatch, restore_logger):
    def bug(args):
        raise ValueError("a bug, not a user error")
    monkeypatch.setattr("spikemllm.cli.hw.run", bug)
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["hw"])
