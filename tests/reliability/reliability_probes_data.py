"""Probes of issue 15, continued: bad benchmark data, hand-edited checkpoint manifests, and the minor items."""
from __future__ import annotations

import json
import os
from pathlib import Path

from reliability_harness import Outcome, Probe, converted_tiny, copy, refused_call, refused_cli, run_cli
from reliability_inputs import Inputs, ocr_entry, ocrbench_release, png_bytes, textvqa_parquet

def _load(name: str, path: Path, **kw):
    from spikemllm.bench import loaders

    return lambda: loaders.load(name, path, **kw)


# ---- 5. data ---------------------------------------------------------------------------------------------------
def p_non_image_file(inp: Inputs, w: Path):
    f = ocrbench_release(w / "ocr", [ocr_entry(image_path="notes.txt")], {"notes.txt": b"not an image at all"})
    return refused_call(_load("ocrbench", w / "ocr"), f, inp, w, "DataError")


def p_truncated_png(inp: Inputs, w: Path):
    f = ocrbench_release(w / "ocr", [ocr_entry(image_path="t.png")], {"t.png": png_bytes((64, 64))[:-40]})
    return refused_call(_load("ocrbench", w / "ocr"), f, inp, w, "DataError")


def p_garbage_parquet_image(inp: Inputs, w: Path):
    f = textvqa_parquet(w / "tv", [{"bytes": png_bytes(), "path": None}, {"bytes": b"\x89PNG garbage", "path": None}])
    outcome = refused_call(_load("textvqa", w / "tv"), f, inp, w, "DataError")
    outcome.ok = outcome.ok and "record 1" in outcome.got
    return outcome


def p_image_path_is_folder(inp: Inputs, w: Path):
    f = ocrbench_release(w / "ocr", [ocr_entry(image_path="sub")], {"sub/x.png": png_bytes()})
    return refused_call(_load("ocrbench", w / "ocr"), f, inp, w, "DataError")


def p_image_path_escapes(inp: Inputs, w: Path):
    (w / "secret.png").write_bytes(png_bytes())  # a readable image outside the data folder
    f = ocrbench_release(w / "data" / "ocr", [ocr_entry(image_path="../../../secret.png")])
    outcome = refused_call(_load("ocrbench", w / "data" / "ocr"), f, inp, w, "DataError")
    outcome.ok = outcome.ok and "outside the data folder" in outcome.got
    return outcome


def p_ocrbench_entries_lists(inp: Inputs, w: Path):
    f = ocrbench_release(w / "ocr", [["IIIT5K", 0, "ok.png", "what is written?", "HELLO"]])
    return refused_call(_load("ocrbench", w / "ocr"), f, inp, w, "DataError")


def p_ocrbench_json_malformed(inp: Inputs, w: Path):
    f = ocrbench_release(w / "ocr", [])
    f.write_text('[{"id": 0, "question": ')
    return refused_call(_load("ocrbench", w / "ocr"), f, inp, w, "DataError")


def p_parquet_garbage_file(inp: Inputs, w: Path):
    f = w / "tv" / "data" / "validation-00000-of-00001.parquet"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"PAR1 this is not parquet" * 10)
    return refused_call(_load("textvqa", w / "tv"), f, inp, w, "DataError")


def p_skip_bad_counts(inp: Inputs, w: Path):
    """``eval --skip-bad``: exit 0, the bad record reported and counted in the result."""
    good = {"bytes": png_bytes(), "path": None}
    textvqa_parquet(w / "data" / "textvqa", [good, {"bytes": b"garbage", "path": None}, good])
    js = w / "r.json"
    rc, _, err = run_cli(["eval", "--model", str(inp.hf), "--bench", "textvqa", "--data", str(w / "data"),
                               "--skip-bad", "--quiet", "--json", str(js), "--max-new-tokens", "2"])
    meta = json.loads(js.read_text())["meta"] if js.is_file() else {}
    ok = rc == 0 and meta.get("skipped_bad") == 1 and "record 1" in meta.get("bad_records", [""])[0]
    return Outcome(ok, f"exit {rc}, meta.skipped_bad={meta.get('skipped_bad')}")


# ---- 6. manifest -----------------------------------------------------------------------------------------------
def _edited_manifest(inp: Inputs, w: Path, edit) -> Path:
    ck = copy(inp.ckpt, w / "ck")
    m = json.loads((ck / "manifest.json").read_text())
    edit(m)
    (ck / "manifest.json").write_text(json.dumps(m))
    return ck


def _manifest_probe(edit):
    def probe(inp: Inputs, w: Path):
        import spikemllm

        ck = _edited_manifest(inp, w, edit)
        return refused_call(lambda: spikemllm.load(ck), ck / "manifest.json", inp, w, "CheckpointError")
    return probe


def _set(key, value):
    return lambda m: m.__setitem__(key, value)


MANIFEST_EDITS = {
    "missing bytes": lambda m: m["files"]["model.safetensors"].pop("bytes"),
    "model_class AutoConfig": _set("model_class", "AutoConfig"),
    "model_class BertModel": _set("model_class", "BertModel"),
    "unknown key": _set("colour", "blue"),
    "files entry a string": lambda m: m["files"].__setitem__("config.json", "abc"),
    "files entry ../ path": lambda m: m["files"].__setitem__("../outside.json", m["files"]["config.json"]),
    "packed tensor not in weights": lambda m: m["packed_int4"].__setitem__("nope.qweight", [4, 4]),
}


# ---- 7. minor --------------------------------------------------------------------------------------------------
def p_ignore_matches_nothing(inp: Inputs, w: Path):
    c = w / "c.json"
    c.write_text(json.dumps({"ignore": ["lm_head", "vision_towr"]}))
    outcome = refused_cli(["convert", "--model", inp.hf, "--config", c, "--out", w / "out"], "vision_towr", inp, w)
    return outcome


def p_eval_limit_negative(inp: Inputs, w: Path):
    return refused_cli(["eval", "--model", inp.hf, "--limit", "-1"], "--limit", inp, w)


def p_eval_batch_size_zero(inp: Inputs, w: Path):
    return refused_cli(["eval", "--model", inp.hf, "--batch-size", "0"], "--batch-size", inp, w)


def p_config_json_parse_error(inp: Inputs, w: Path):
    c = w / "c.json"
    c.write_text('{"coder": "tc-lif",')
    return refused_cli(["convert", "--model", inp.hf, "--config", c, "--out", w / "out"], c, inp, w)


def p_config_json_bad_value(inp: Inputs, w: Path):
    c = w / "c.json"
    c.write_text('{"weight_bits": 99}')
    return refused_cli(["convert", "--model", inp.hf, "--config", c, "--out", w / "out"], c, inp, w)


def p_umask(inp: Inputs, w: Path):
    import spikemllm

    model = converted_tiny()
    modes = {}
    for mask in (0o022, 0o077):
        old = os.umask(mask)
        try:
            out = spikemllm.save(model, w / f"ck{mask:o}")
        finally:
            os.umask(old)
        modes[mask] = {oct(p.stat().st_mode & 0o777) for p in [out, *out.rglob("*")]}
    ok = modes == {0o022: {"0o755", "0o644"}, 0o077: {"0o700", "0o600"}}
    return Outcome(ok, f"umask 022 -> {sorted(modes[0o022])}, 077 -> {sorted(modes[0o077])}")


DATA_PROBES: list[Probe] = [
    Probe("image_path -> a text file", "data", "traceback (exit 1)", p_non_image_file),
    Probe("truncated PNG", "data", "traceback (exit 1)", p_truncated_png),
    Probe("garbage bytes in a parquet image cell", "data", "traceback (exit 1)", p_garbage_parquet_image),
    Probe("image_path -> a folder", "data", "traceback (exit 1)", p_image_path_is_folder),
    Probe("image_path ../../ escaping the data folder", "data", "read a file outside the data folder",
         p_image_path_escapes),
    Probe("OCRBench entries that are lists", "data", "traceback (exit 1)", p_ocrbench_entries_lists),
    Probe("OCRBench.json parse error", "data", "message without the file name", p_ocrbench_json_malformed),
    Probe("parquet parse error", "data", "message without the file name", p_parquet_garbage_file),
    Probe("eval --skip-bad with a bad record", "data", "(no --skip-bad)", p_skip_bad_counts),
    *[Probe(f"manifest: {k}", "manifest", "raw KeyError/AttributeError/TypeError", _manifest_probe(e))
      for k, e in MANIFEST_EDITS.items()],
    Probe("ignore pattern matching nothing", "minor", "accepted silently", p_ignore_matches_nothing),
    Probe("eval --limit -1", "minor", "accepted", p_eval_limit_negative),
    Probe("eval --batch-size 0", "minor", "accepted", p_eval_batch_size_zero),
    Probe("config JSON parse error", "minor", "message without the file name", p_config_json_parse_error),
    Probe("config JSON bad value", "minor", "message without the file name", p_config_json_bad_value),
    Probe("checkpoint modes under umask 022 / 077", "minor", "0700/0600 regardless of umask", p_umask),
]
