"""Workload descriptions: a model's linear layers and attention by shape, and a request (tokens, timesteps).

Why shapes and not a model: the accelerator model, the GPU roofline and shape-based energy counting need only
how many weights each layer has and how many tokens of which modality pass through it. The shapes themselves
(:class:`~spikemllm.models.shape.ModelShape`, the named ``WORKLOADS``, and :func:`~spikemllm.models.shape_of_config`
for a transformers config) come from :mod:`spikemllm.models`, whose family adapters know how each family's config
reads; they are re-exported here.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from ..errors import ConfigError
from ..models.shape import WORKLOADS, AttentionShape, LinearOp, ModelShape, get_workload

__all__ = ["LinearOp", "AttentionShape", "ModelShape", "Workload", "MatmulJob", "WORKLOADS", "get_workload",
           "prefill_jobs", "decode_jobs"]


@dataclass(frozen=True)
class Workload:
    """One batch-1 request on a model: an image, a text prompt, generated tokens, timesteps and firing rates.

    Firing rate: the fraction of (input neuron, timestep) slots that carry a nonzero spike. ``tv``/``tt`` may be
    fractional (an average over layers under a per-layer timestep plan).
    """

    model: ModelShape
    image_size: int = 448
    images: int = 1
    prompt_text_tokens: int = 64
    output_tokens: int = 128
    tv: float = 3.0
    tt: float = 4.0
    firing_rate_vision: float = 0.3
    firing_rate_text: float = 0.3
    weight_bits: int = 4
    kv_bits: int = 8
    attn_timesteps: float | None = None  # spikes of attention probabilities; None: same as text (tt)
    spike_lm_head: bool = True

    def __post_init__(self) -> None:
        for f in ("tv", "tt"):
            if getattr(self, f) <= 0:
                raise ConfigError(f"{f} must be > 0")
        for f in ("firing_rate_vision", "firing_rate_text"):
            if not 0.0 <= getattr(self, f) <= 1.0:
                raise ConfigError(f"{f} must lie in [0, 1]")
        if self.image_size % self.model.patch_size:
            raise ConfigError(f"image_size {self.image_size} is not a multiple of patch {self.model.patch_size}")

    @property
    def vision_patches(self) -> int:
        """Tokens through the vision tower ((448/14)^2 = 1024 patches per image at patch 14)."""
        if not self.model.vision_linears:
            return 0
        return self.images * (self.image_size // self.model.patch_size) ** 2

    @property
    def image_tokens(self) -> int:
        """Image tokens in the language model after the spatial merge (1024 / 4 = 256 for a 2x2 merge at 448)."""
        return self.vision_patches // self.model.merge

    @property
    def prompt_tokens(self) -> int:
        return self.image_tokens + self.prompt_text_tokens

    def with_(self, **changes: Any) -> "Workload":
        return replace(self, **changes)

    def assumptions(self) -> list[tuple[str, str]]:
        return [
            ("model", self.model.name),
            ("image", f"{self.images} x {self.image_size}x{self.image_size} -> {self.vision_patches} vision patches, "
                      f"{self.image_tokens} LM image tokens"),
            ("prompt text tokens", str(self.prompt_text_tokens)),
            ("generated tokens", str(self.output_tokens)),
            ("timesteps Tv / Tt", f"{self.tv:g} / {self.tt:g}"),
            ("attention-probability timesteps", f"{self.attn_timesteps if self.attn_timesteps else self.tt:g}"),
            ("firing rate vision / text", f"{self.firing_rate_vision:g} / {self.firing_rate_text:g}"),
            ("weight bits (integer)", str(self.weight_bits)),
            ("KV cache bits", str(self.kv_bits)),
            ("lm_head spiking", str(self.spike_lm_head)),
        ]


@dataclass(frozen=True)
class MatmulJob:
    """A weight matrix (``out`` x ``in``) met by groups of spiking tokens: (tokens, timesteps, firing rate).

    ``weights_from`` says where the "weights" come from: "params" (model weights) or "kv" (the KV cache, for
    attention scores and values); ``weight_bits`` their width. ``repeat`` identical jobs (layers x heads).
    """

    name: str
    part: str
    in_features: int
    out_features: int
    repeat: int
    groups: tuple[tuple[str, int, float, float], ...]  # (modality, tokens, timesteps, firing_rate)
    weight_bits: int
    weights_from: str = "params"
    vector_ops_per_output: float = 2.0  # dequantise + requantise each output element

    @property
    def tokens(self) -> int:
        return sum(g[1] for g in self.groups)

    @property
    def dense_macs(self) -> float:
        return float(self.tokens) * self.in_features * self.out_features * self.repeat

    @property
    def acs(self) -> float:
        """Expected accumulates: spikes (tokens x in x T x rate) times fan-out (out)."""
        return sum(n * self.in_features * T * fr for _, n, T, fr in self.groups) * self.out_features * self.repeat

    @property
    def weight_bytes(self) -> float:
        return self.in_features * self.out_features * self.weight_bits / 8 * self.repeat


def _attention_jobs(part: str, a: AttentionShape, groups: tuple, ctx: float, p_T: float, p_fr: float,
                    kv_bits: int) -> list[MatmulJob]:
    """Scores (q spikes against K rows) and values (probability spikes against V) for one query block.

    ``ctx`` is the (average) number of keys each query sees. Queries of the ``heads/kv_heads`` heads sharing a KV
    head meet the same K/V "weights", so they count as that many tokens.
    """
    share = a.heads // a.kv_heads
    g = tuple((m, n * share, T, fr) for m, n, T, fr in groups)
    c = max(1, int(round(ctx)))
    prob = tuple((m, n * share, p_T, p_fr) for m, n, _, _ in groups)
    return [MatmulJob(f"{part}.attn.scores", part, a.head_dim, c, a.layers * a.kv_heads, g, kv_bits, "kv", 5.0),
            MatmulJob(f"{part}.attn.values", part, c, a.head_dim, a.layers * a.kv_heads, prob, kv_bits, "kv", 2.0)]


def prefill_jobs(w: Workload) -> list[MatmulJob]:
    """The matmuls of the prompt pass: vision tower on patches, projector on image tokens, LM on the prompt."""
    jobs: list[MatmulJob] = []
    m = w.model
    pT = w.attn_timesteps or w.tt
    if w.vision_patches:
        vg = (("vision", w.vision_patches, w.tv, w.firing_rate_vision),)
        jobs += [MatmulJob(f"vision.{op.name}", "vision", op.in_features, op.out_features, op.repeat, vg,
                           w.weight_bits) for op in m.vision_linears]
        if m.vision_attention is not None:  # full attention within each image
            per_img = (("vision", w.vision_patches // w.images * 1, w.tv, w.firing_rate_vision),)
            for j in _attention_jobs("vision", m.vision_attention, per_img, w.vision_patches / w.images, w.tv,
                                     w.firing_rate_vision, w.kv_bits):
                jobs.append(replace(j, repeat=j.repeat * w.images))
        pg = (("vision", w.image_tokens, w.tv, w.firing_rate_vision),)
        jobs += [MatmulJob(f"projector.{op.name}", "projector", op.in_features, op.out_features, op.repeat, pg,
                           w.weight_bits) for op in m.projector_linears]
    lg = tuple(g for g in (("vision", w.image_tokens, w.tv, w.firing_rate_vision),
                           ("text", w.prompt_text_tokens, w.tt, w.firing_rate_text)) if g[1] > 0)
    jobs += [MatmulJob(f"lm.{op.name}", "lm", op.in_features, op.out_features, op.repeat, lg, w.weight_bits)
             for op in m.lm_linears]
    M = w.prompt_tokens
    ctx = (M + 1) / 2 if m.lm_attention.causal else M
    jobs += _attention_jobs("lm", m.lm_attention, lg, ctx, pT, w.firing_rate_text, w.kv_bits)
    # only the last prompt position needs logits (the first generated token)
    jobs.append(_lm_head_job(w))
    return jobs


def _lm_head_job(w: Workload) -> MatmulJob:
    h = w.model.lm_head
    bits = w.weight_bits if w.spike_lm_head else 16
    return MatmulJob("lm.lm_head", "lm", h.in_features, h.out_features, 1,
                     (("text", 1, w.tt, w.firing_rate_text),), bits)


def decode_jobs(w: Workload, context: int) -> list[MatmulJob]:
    """The matmuls of one generated token when ``context`` tokens (itself included) are in the KV cache."""
    m = w.model
    tg = (("text", 1, w.tt, w.firing_rate_text),)
    jobs = [MatmulJob(f"lm.{op.name}", "lm", op.in_features, op.out_features, op.repeat, tg, w.weight_bits)
            for op in m.lm_linears]
    jobs += _attention_jobs("lm", m.lm_attention, tg, context, w.attn_timesteps or w.tt, w.firing_rate_text,
                            w.kv_bits)
    jobs.append(_lm_head_job(w))
    return jobs


def kv_cache_bytes(w: Workload, context: int) -> float:
    """Bytes of K and V for ``context`` tokens across all LM layers."""
    a = w.model.lm_attention
    return 2.0 * a.layers * a.kv_heads * a.head_dim * context * w.kv_bits / 8


__all__.append("kv_cache_bytes")
