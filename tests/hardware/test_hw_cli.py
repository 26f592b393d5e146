"""The ``hw`` and ``energy`` subcommands parse, run and print their reports (wired by the lead's cli/main.py)."""
import argparse

from spikemllm.cli import energy, hw


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="spikemllm")
    sub = ap.add_subparsers(dest="command")
    hw.add_parser(sub)
    energy.add_parser(sub)
    return ap


def test_hw_subcommand_prints_both_sides_and_ratios(capsys, tmp_path):
    args = _parser().parse_args(["hw", "--workload", "qwen2-vl-7b", "--tv", "3", "--tt", "4", "--output-tokens", "8",
                                 "--gpu", "h200", "--gpu-power", "184", "--plot", str(tmp_path / "sweep")])
    assert args.func is hw.run and hw.run(args) == 0
    out = capsys.readouterr().out
    for needle in ("Accelerator results", "GPU results (H200", "decode power, chip", "Ratios", "184 W",
                   "timesteps Tv / Tt                3 / 4"):
        assert needle in out
    assert (tmp_path / "sweep.png").stat().st_size > 0 and (tmp_path / "sweep.svg").stat().st_size > 0


def test_hw_subcommand_refuses_bad_values(capsys):
    args = _parser().parse_args(["hw", "--firing-rate", "1.5"])
    assert hw.run(args) == 2
    assert "firing_rate" in capsys.readouterr().err


def test_energy_subcommand_on_a_workload(capsys, tmp_path):
    js = tmp_path / "e.json"
    args = _parser().parse_args(["energy", "--workload", "qwen2-vl-7b", "--phase", "decode", "--output-tokens", "4",
                                 "--table", "28nm", "--ac", "int", "--summary", "--json", str(js)])
    assert energy.run(args) == 0
    out = capsys.readouterr().out
    assert "compute only" in out and "with memory" in out and "28nm" in out
    assert js.stat().st_size > 0
