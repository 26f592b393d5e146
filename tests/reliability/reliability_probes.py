"""The bad inputs and faults of issue 15, as a table: each probe sets up an input, runs the CLI (in process,
through ``spikemllm.cli.main.main``) or the library, and checks what a user must see (see
reliability_harness.py). tests/reliability/test_probes.py runs every probe; benchmarks/probe_reliability.py
prints the same table with counts.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from reliability_harness import Outcome, Probe, converted_tiny, copy, refused_call, refused_cli, run_cli
from reliability_inputs import Inputs
from reliability_probes_data import DATA_PROBES

# ---- 1. overwrite -----------------------------------------------------------------------------------------
def p_convert_out_is_model(inp: Inputs, w: Path) -> Outcome:
    m = copy(inp.hf, w / "m")
    return refused_cli(["convert", "--model", m, "--out", m, "--overwrite"], m, inp, w)


def p_convert_out_inside_model(inp: Inputs, w: Path) -> Outcome:
    m = copy(inp.hf, w / "m")
    return refused_cli(["convert", "--model", m, "--out", m / "spiking", "--overwrite"], m, inp, w)


def p_convert_out_contains_model(inp: Inputs, w: Path) -> Outcome:
    m = copy(inp.hf, w / "proj" / "m")
    return refused_cli(["convert", "--model", m, "--out", w / "proj", "--overwrite"], m, inp, w)


def _thesis(w: Path) -> Path:
    t = w / "thesis"
    t.mkdir()
    (t / "chapter1.tex").write_text("\\chapter{Introduction}\n")
    return t


def p_convert_out_foreign(inp: Inputs, w: Path) -> Outcome:
    t = _thesis(w)
    return refused_cli(["convert", "--model", inp.hf, "--out", t, "--overwrite"], t, inp, w)


def p_convert_out_other_checkpoint_kind(inp: Inputs, w: Path) -> Outcome:
    hf2 = copy(inp.hf, w / "hf-export")  # a HF folder (no spikemllm manifest) as --out
    return refused_cli(["convert", "--model", inp.hf, "--out", hf2, "--overwrite"], hf2, inp, w)


def p_save_foreign(inp: Inputs, w: Path) -> Outcome:
    import spikemllm

    model, t = converted_tiny(), _thesis(w)
    return refused_call(lambda: spikemllm.save(model, t, overwrite=True), t, inp, w, "OutputError")


def p_save_over_source(inp: Inputs, w: Path) -> Outcome:
    import spikemllm
    from spikemllm.opener import open_model

    m = copy(inp.ckpt, w / "ck")
    model, _ = open_model(m)
    return refused_call(lambda: spikemllm.save(model, m, overwrite=True), m, inp, w, "OutputError")


def p_convert_out_is_config(inp: Inputs, w: Path) -> Outcome:
    c = w / "c.json"
    shutil.copy(inp.config, c)
    return refused_cli(["convert", "--model", inp.hf, "--config", c, "--out", c, "--overwrite"], c, inp, w)


def p_demo_out_foreign(inp: Inputs, w: Path) -> Outcome:
    t = _thesis(w)
    return refused_cli(["demo", "--model", inp.hf, "--out", t], t, inp, w)


def p_demo_out_with_user_file(inp: Inputs, w: Path) -> Outcome:
    from spikemllm.runfolder import RunFolder

    out = w / "demo"
    with RunFolder(out, command="demo") as run:
        (run.path / "results.json").write_text("{}")
    (out / "notes.txt").write_text("my notes on this run")
    return refused_cli(["demo", "--model", inp.hf, "--out", out], out, inp, w)


def p_med_out_is_model(inp: Inputs, w: Path) -> Outcome:
    m = copy(inp.hf, w / "m")
    return refused_cli(["med", "--model", m, "--budget", "3.5", "--out", m, "--overwrite"], m, inp, w)


def p_eval_json_is_config(inp: Inputs, w: Path) -> Outcome:
    c = w / "c.json"
    shutil.copy(inp.config, c)
    return refused_cli(["eval", "--model", inp.hf, "--config", c, "--json", c], c, inp, w)


# ---- 2. model opening ---------------------------------------------------------------------------------------
def p_energy_on_checkpoint(inp: Inputs, w: Path) -> Outcome:
    """Not refused: counted with the checkpoint's own config and weights (the same counts as loading it)."""
    import spikemllm
    from spikemllm.energy.run import count_model_run
    from spikemllm.opener import open_model

    js = w / "e.json"
    rc, out, err = run_cli(["energy", "--model", str(inp.ckpt), "--summary", "--json", str(js)])
    if rc != 0:
        return Outcome(False, f"exit {rc}: {err.strip().splitlines()[-1:]}")
    got = json.loads(js.read_text())["totals"]
    model, proc = open_model(inp.ckpt)
    from spikemllm.cli.energy import _model_inputs
    import argparse

    counts = count_model_run(model, _model_inputs(argparse.Namespace(model=str(inp.ckpt),
                                                                     prompt="What is in the image?"), proc))
    from spikemllm.energy.report import EnergyOptions, energy_report

    want = energy_report(counts, EnergyOptions()).totals
    ok = "checkpoint's own SpikeConfig" in out and got == json.loads(json.dumps(want))
    return Outcome(ok, f"exit 0, counted with the checkpoint's own config; totals equal a direct count: {ok}")


def p_missing_weights(inp: Inputs, w: Path) -> Outcome:
    from safetensors.torch import load_file, save_file

    m = copy(inp.hf, w / "m")
    state = load_file(str(m / "model.safetensors"))
    state.pop(sorted(k for k in state if k.endswith("q_proj.weight"))[0])
    save_file(state, str(m / "model.safetensors"), metadata={"format": "pt"})
    return refused_cli(["convert", "--model", m, "--out", w / "out"], m, inp, w)


def p_hf_loader_on_checkpoint(inp: Inputs, w: Path) -> Outcome:
    """A spikemllm checkpoint whose manifest was lost: a HF load would see every weight missing."""
    m = copy(inp.ckpt, w / "ck")
    (m / "manifest.json").unlink()
    return refused_cli(["energy", "--model", m, "--summary"], m, inp, w)


def p_energy_nonexistent(inp: Inputs, w: Path) -> Outcome:
    missing = w / "nonexistent"
    outcome = refused_cli(["energy", "--model", missing], missing, inp, w)
    outcome.ok = outcome.ok and "does not exist" in outcome.got
    return outcome


# ---- 3. atomic overwrite (states a kill leaves; the real kills are in test_kill.py) ----------------------------
def p_load_after_kill_between_renames(inp: Inputs, w: Path) -> Outcome:
    import spikemllm

    ck = copy(inp.ckpt, w / "ck")
    aside = w / ".ck.spikemllm-old-123_abcd"
    ck.rename(aside)
    try:
        spikemllm.load(ck)
    except Exception as e:  # noqa: BLE001
        return Outcome(False, f"{type(e).__name__}: {e}")
    ok = ck.is_dir() and not aside.exists()
    return Outcome(ok, "load restored the checkpoint left aside" if ok else "not restored")


def p_save_removes_leftover_temp(inp: Inputs, w: Path) -> Outcome:
    import spikemllm

    ck = copy(inp.ckpt, w / "ck")
    tmp = w / ".ck.spikemllm-tmp-99_zz"
    tmp.mkdir()
    (tmp / "model.safetensors").write_bytes(b"\0" * 1000)
    spikemllm.save(converted_tiny(), ck, overwrite=True)
    left = sorted(p.name for p in w.iterdir())
    return Outcome(left == ["ck"], f"after the next save: {left}")


# ---- 4. concurrency ----------------------------------------------------------------------------------------
def p_second_run_refused(inp: Inputs, w: Path) -> Outcome:
    from spikemllm.runfolder import RunFolder

    out = w / "run"
    with RunFolder(out, command="demo") as first:
        (first.path / "results.json").write_text("{}")
        outcome = refused_call(lambda: RunFolder(out, command="demo").__enter__(), "--out", inp, w, "OutputError")
    ok = outcome.ok and "in use by another spikemllm run" in outcome.got and (out / "results.json").is_file()
    return Outcome(ok, outcome.got)


def p_stale_lock_taken_over(inp: Inputs, w: Path) -> Outcome:
    import logging

    from spikemllm.runfolder import RunFolder

    out = w / "run"
    (w / ".run.lock").write_text("999999999\n")  # a pid that cannot exist
    records: list[logging.LogRecord] = []
    h = logging.Handler()
    h.emit = records.append  # type: ignore[method-assign]
    log = logging.getLogger("spikemllm")
    log.addHandler(h)
    try:
        with RunFolder(out, command="demo") as run:
            (run.path / "results.json").write_text("{}")
    finally:
        log.removeHandler(h)
    notes = [r.getMessage() for r in records if "stale lock" in r.getMessage()]
    ok = len(notes) == 1 and (out / "results.json").is_file() and not (w / ".run.lock").exists()
    return Outcome(ok, notes[0] if notes else "no note")


def p_save_json_two_writers(inp: Inputs, w: Path) -> Outcome:
    from reliability_concurrency import hammer_save_json

    errors, torn = hammer_save_json(w / "r.json", calls=200)
    return Outcome(errors == 0 and torn == 0, f"2 writers x 200 calls: {errors} errors, {torn} torn reads")


PROBES: list[Probe] = [
    Probe("convert --out = --model, --overwrite", "overwrite", "exit 0, source weights deleted",
          p_convert_out_is_model),
    Probe("convert --out inside --model", "overwrite", "wrote into the source folder", p_convert_out_inside_model),
    Probe("convert --out contains --model", "overwrite", "deleted the folder holding the source",
          p_convert_out_contains_model),
    Probe("convert --out ~/thesis --overwrite", "overwrite", "deleted a folder that was no checkpoint",
          p_convert_out_foreign),
    Probe("convert --out <HF folder> --overwrite", "overwrite", "deleted a HF model folder",
          p_convert_out_other_checkpoint_kind),
    Probe("save(model, thesis, overwrite=True)", "overwrite", "deleted a folder that was no checkpoint",
          p_save_foreign),
    Probe("save(model, its own source, overwrite=True)", "overwrite", "replaced the folder it was loaded from",
          p_save_over_source),
    Probe("convert --out = --config file", "overwrite", "replaced the config file", p_convert_out_is_config),
    Probe("demo --out ~/thesis", "overwrite", "wrote into a foreign folder", p_demo_out_foreign),
    Probe("demo --out <demo folder + a user's notes>", "overwrite", "(would delete the notes)",
          p_demo_out_with_user_file),
    Probe("med --out = --model --overwrite", "overwrite", "wrote over the model folder", p_med_out_is_model),
    Probe("eval --json = --config", "overwrite", "replaced the config file", p_eval_json_is_config),
    Probe("energy --model <spikemllm checkpoint>", "model", "exit 0, random LLaVA, made-up numbers",
          p_energy_on_checkpoint),
    Probe("convert --model <HF folder missing a weight>", "model", "random init of the missing weight",
          p_missing_weights),
    Probe("energy --model <checkpoint without manifest>", "model", "every weight MISSING, random model",
          p_hf_loader_on_checkpoint),
    Probe("energy --model /nonexistent", "model", "'no bundled model ... reinstall'", p_energy_nonexistent),
    Probe("load after a kill between the two renames", "atomic", "target missing, old one hidden",
          p_load_after_kill_between_renames),
    Probe("save after a killed save's temp folder", "atomic", ".ck.tmp-* never cleaned", p_save_removes_leftover_temp),
    Probe("two runs on one --out", "concurrency", "both exit 0, outputs mixed", p_second_run_refused),
    Probe("stale lock of a dead pid", "concurrency", "(no lock before)", p_stale_lock_taken_over),
    Probe("bench.runner.save_json, 2 writers", "concurrency", "575 FileNotFoundError / 2000, 1125 torn reads",
          p_save_json_two_writers),
    *DATA_PROBES,
]


