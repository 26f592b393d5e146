"""SpikeLinear: a drop-in for ``nn.Linear`` whose input arrives as spikes and whose weights are integers.

Per token ``i`` with ``T_i`` timesteps (vision and text tokens may differ, see :mod:`spikemllm.nn.modality`):

1. quantize the input per token: ``q_i = clamp(round(x_i / s_i), -q_max(T_i), q_max(T_i))`` with
   ``s_i = clip * max|x_i| / q_max(T_i)`` (dynamic, symmetric; unsigned IF uses a zero point);
2. the input neurons emit ``q_i`` as spikes over ``T_max`` steps (a token with fewer steps fires only in the
   last ``T_i``);
3. **faithful** mode accumulates integer weight rows gated by each step's spikes, combining steps in Horner
   form for TC-LIF (``acc = 2*acc + W s_t``) and as a plain sum for IF; **fused** mode decodes once and runs
   one integer-valued matmul; **fakequant** mode is the ANN reference: ``F.linear(dequant(q), dequant(W))``;
4. ``y = acc * s_i * s_w + bias``.

Backends (chosen per layer, shown in ``extra_repr``; :func:`set_backend` overrides it for tests and benchmarks):

* ``int``: int8 codes times int8 weights into int32 (``torch._int_mm``), exact while the bound
  ``|acc| <= part * max|W_q| * q_max`` stays below ``2**31``. The weights stay resident as int8 only.
* ``float32`` / ``float64``: the same integers as integer-valued floats, exact while the bound stays below
  ``2**24`` (float32) or ``2**53`` (float64). Used only where the integer path cannot run: codes beyond int8
  (``q_max > 127``, e.g. TC-LIF with ``T >= 8``), a bound of ``2**31`` or more, or a device without the op.

Groups (``act_group_size``, per-group weights): each group's integer sum is converted to float32, times its
activation and weight scales, and the groups are summed in one order (:mod:`.group_sum`) on every path. On CPU the
fused integer path runs the native kernel (:mod:`.native`, AVX512-VNNI) that keeps each group's sum in a register
rather than writing ``[G, N, out]`` partials; elsewhere the partials are materialised and summed in torch ops.

Both give the same exact integer sums; ``_finish`` turns them into float32 the same way (an exact int32 or
float64 integer rounds to the same float32), so every backend, and faithful and fused, return identical
outputs, bit for bit; all equal fakequant up to float rounding of the scales.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..coding import make_coder
from ..errors import ConfigError
from ..quant import QuantSpec, Quantized, quantize, quantize_int8
from ..quant.quantizer import INT8_QMAX
from . import native
from .group_sum import ordered_group_sum
from .modality import current_vision_mask
from .spike_matmul import _CAT_BYTES, INT_BOUND, exact_dtype, int_mm, int_mm_available, scratch, spike_matmul
from .spec import MODES, SpikeLinearSpec, spec_kwargs
from .stats import LayerStats, RecordsStats

BACKENDS = ("auto", "int", "float")


class SpikeLinear(RecordsStats, nn.Module):
    """Spike-driven linear layer: ``SpikeLinear(in_features, out_features, spec)`` with a frozen
    :class:`~spikemllm.nn.spec.SpikeLinearSpec`; build it with :meth:`from_linear` (or :func:`spikemllm.convert`).

    ``spec`` holds every setting; rebuild a layer with other settings as
    ``SpikeLinear(m.in_features, m.out_features, dataclasses.replace(m.spec, ...))`` (:meth:`respec` does it and
    keeps the weights). The keyword arguments of the spec (``coder=``, ``t_text=``, ...) are still accepted in
    place of ``spec`` (the compatibility path).
    """

    _backend = "auto"  # class defaults: modules pickled before the integer engine still load and run
    _plan_cache: dict[str, Any] = {}

    def __init__(self, in_features: int, out_features: int, spec: SpikeLinearSpec | bool | None = None, *,
                 bias: bool = True, input_transform: nn.Module | None = None, **legacy: Any) -> None:
        super().__init__()
        if isinstance(spec, bool):  # the old positional ``bias``
            bias, spec = spec, None
        if spec is None:
            spec = spec_kwargs(legacy)
        elif legacy:
            raise TypeError(f"SpikeLinear takes a spec or its keyword arguments, not both (got {sorted(legacy)})")
        if not isinstance(in_features, int) or in_features < 1 or not isinstance(out_features, int) or out_features < 1:
            raise ValueError(f"in_features/out_features must be positive integers; got {in_features}, {out_features}")
        self.in_features, self.out_features = in_features, out_features
        groups = spec.weight_groups(in_features)
        self._spec = spec
        self.coder = make_coder(spec.coder, timesteps=spec.t_max, signed=spec.signed)
        self.act_spec = spec.act_spec(self.coder.bits)
        self.input_transform = input_transform
        # Integer partial sums run over this many inputs: the activation or weight group, else the whole row.
        self._part = spec.act_group_size or (spec.weight_spec.group_size if groups > 1 else in_features)
        self.register_buffer("qweight", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("wscale", torch.ones(out_features, groups, dtype=torch.float32))
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)
        self._cache: dict[str, Any] = {}  # float weights: only for a layer on the float backend
        self._plan_cache: dict[str, Any] = {}
        self.backend = "auto"

    # --- the spec ----------------------------------------------------------------------------------------
    @property
    def spec(self) -> SpikeLinearSpec:
        return self._spec

    def respec(self, spec: SpikeLinearSpec) -> "SpikeLinear":
        """A new layer with ``spec`` and this layer's weights, bias, transform and backend (self is unchanged)."""
        new = type(self)(self.in_features, self.out_features, spec, bias=self.bias is not None,
                         input_transform=self.input_transform)
        new.to(self.qweight.device)
        new.load_state_dict(self.state_dict())
        new.backend = self.backend
        return new

    # read-only views of the spec, under the names the layer always had
    t_text = property(lambda self: self._spec.t_text, doc="timesteps of text tokens")
    t_vision = property(lambda self: self._spec.t_vision, doc="timesteps of vision tokens")
    region = property(lambda self: self._spec.region, doc="'vision' or 'lm' (see SpikeLinearSpec)")
    weight_spec = property(lambda self: self._spec.weight_spec, doc="the integer weights' QuantSpec")
    act_group_size = property(lambda self: self._spec.act_group_size, doc="activation group size or None")

    # --- construction ----------------------------------------------------------------------------------
    @classmethod
    def from_linear(cls, linear: nn.Linear, spec: SpikeLinearSpec | None = None, *, weight: Quantized | None = None,
                    bias: torch.Tensor | None = None, quantize_weight: bool = True,
                    input_transform: nn.Module | None = None, **kwargs: Any) -> "SpikeLinear":
        """Quantize ``linear``'s weight (RTN with ``weight_spec``) unless a method already did (``weight``).

        ``bias`` overrides ``linear.bias`` (e.g. read from an offload map). A layer whose weight sits on the meta
        device (offloaded by accelerate) becomes a CPU SpikeLinear: its integer weights are small enough to keep.
        ``quantize_weight=False`` builds the layer with zero weights (its state is loaded afterwards).
        """
        m = cls(linear.in_features, linear.out_features, spec, bias=linear.bias is not None,
                input_transform=input_transform, **kwargs)
        dev = linear.weight.device
        dev = torch.device("cpu") if dev.type == "meta" else dev
        if not quantize_weight:
            return m.to(dev)
        if weight is None:
            weight = quantize(linear.weight.detach().float(), m.weight_spec)
        if bias is None and linear.bias is not None:
            bias = linear.bias.detach()
        m.load_quantized(weight, bias)
        return m.to(dev)

    def load_quantized(self, weight: Quantized, bias: torch.Tensor | None = None) -> None:
        q = weight.q.reshape(self.out_features, self.in_features)
        lim = 2 ** (self.weight_spec.bits - 1) - 1
        if bool((q.abs() > lim).any()) or not bool((q == torch.round(q)).all()):
            raise ValueError(f"weight codes must be integers in -{lim}..{lim} for weight bits={self.weight_spec.bits}")
        self.qweight.copy_(q.to(torch.int8))
        sc = weight.scale.reshape(1, 1) if weight.scale.numel() == 1 else weight.scale.reshape(self.out_features, -1)
        self.wscale.copy_(sc.expand_as(self.wscale).float())  # a per-tensor scale is shared by every row
        if bias is not None:
            self.bias.copy_(bias.float())
        self._cache.clear()
        self._plan_cache.clear()

    # --- properties ------------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self._spec.mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ConfigError(f"mode={value!r} is unknown; allowed values: {', '.join(MODES)}")
        self._spec = replace(self._spec, mode=value)

    @property
    def timesteps(self) -> int:
        """Largest per-token T of this layer."""
        return self.coder.timesteps

    @property
    def backend(self) -> str:
        """Requested backend: ``auto`` (integer kernels where exact), ``int`` (required) or ``float``."""
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        if value not in BACKENDS:
            raise ConfigError(f"backend={value!r} is unknown; allowed values: {', '.join(BACKENDS)}")
        self._backend = value
        self._plan_cache = {}

    def backend_in_use(self) -> str:
        """``int``, ``float32`` or ``float64``: what fused and faithful run on (decided once per weight version)."""
        return self._plan()[0]

    def _plan(self) -> tuple[str, str]:
        """(backend, why) for the current weights, device and requested backend."""
        key = (self.qweight._version, self.qweight.data_ptr(), self.qweight.device, self._backend)
        if self.__dict__.get("_plan_cache", {}).get("key") != key:
            bound = self.accumulation_bound()
            why = ""
            if self._backend == "float":
                why = "requested"
            elif self.coder.qmax > INT8_QMAX:
                why = f"codes up to {self.coder.qmax} exceed int8"
            elif bound >= INT_BOUND:
                why = f"sums up to {bound} exceed int32"
            elif not int_mm_available(self.qweight.device):
                why = f"no int8 matmul on {self.qweight.device.type}"
            if why and self._backend == "int":
                raise ConfigError(f"backend='int' cannot run this layer exactly: {why}; use backend 'auto'")
            name = "int" if not why else str(exact_dtype(bound)).replace("torch.", "")
            self._plan_cache = {"key": key, "plan": (name, why)}
            self._cache = {}  # a float copy of the weights is built only by the float backend
        return self._plan_cache["plan"]

    def accumulation_bound(self) -> int:
        """Largest possible ``|integer partial sum|``: decides float32 or float64 accumulation."""
        return self._part * int(self.qweight.abs().max().item() if self.qweight.numel() else 0) * self.coder.qmax

    def dequantized_weight(self) -> torch.Tensor:
        g = self.wscale.shape[1]
        w = self.qweight.float().reshape(self.out_features, g, -1) * self.wscale.unsqueeze(-1)
        return w.reshape(self.out_features, self.in_features)

    def _weights(self) -> tuple[torch.Tensor, torch.dtype]:
        key = (self.qweight._version, self.qweight.data_ptr(), self.qweight.device)
        if self._cache.get("key") != key:
            acc_dtype = exact_dtype(self.accumulation_bound())
            g = self.in_features // self._part
            wf = self.qweight.to(acc_dtype)
            # whole rows: [in, out] for x @ w; groups: [G, group, out] for a batched matmul.
            wt = wf.t().contiguous() if g == 1 else wf.reshape(self.out_features, g, -1).permute(1, 2, 0).contiguous()
            self._cache = {"key": key, "wt": wt, "dtype": acc_dtype, "rowsum": wf.sum(1)}
        return self._cache["wt"], self._cache["dtype"]

    # --- forward ---------------------------------------------------------------------------------------
    def token_timesteps(self, lead_shape: torch.Size, device: torch.device) -> torch.Tensor | int:
        """Per-token T: ``t_vision`` in the vision tower; in the LM, from the current vision mask."""
        if self.region == "vision" or self.t_vision == self.t_text:
            return self.t_vision if self.region == "vision" else self.t_text
        mask = current_vision_mask()
        n = 1
        for d in lead_shape:
            n *= d
        if mask is None:
            return self.t_text
        if mask.numel() != n:
            raise ValueError(
                f"the vision mask has {mask.numel()} tokens but this layer got {n} ({tuple(lead_shape)}); the mask "
                "comes from the model's input_ids. Call the converted top-level model (not a submodule), or run "
                "the submodule inside spikemllm.nn.vision_mask(mask)."
            )
        m = mask.reshape(n).to(device)
        return torch.where(m, self.t_vision, self.t_text).to(torch.int64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"input has {x.shape[-1]} features but this SpikeLinear expects {self.in_features}")
        out_dtype = x.dtype if x.is_floating_point() else torch.float32
        lead = x.shape[:-1]
        if self.input_transform is not None:
            x = self.input_transform(x)
        x2 = x.reshape(-1, self.in_features)
        t = self.token_timesteps(lead, x2.device)
        t_col = t.unsqueeze(1) if isinstance(t, torch.Tensor) else t
        qmax = self.coder.qmax_for(t_col)
        n = x2.shape[0]
        use_int = self.mode != "fakequant" and self._plan()[0] == "int"
        quant = quantize_int8 if use_int else quantize
        if self.act_group_size:  # one scale per (token, group): quantize [N, G, group]
            qmax = qmax.unsqueeze(-1) if isinstance(qmax, torch.Tensor) else qmax
            qz = quant(x2.reshape(n, -1, self.act_group_size), self.act_spec, qmax=qmax)
        else:
            qz = quant(x2, self.act_spec, qmax=qmax)
        q, scale, zero = qz.q.reshape(n, self.in_features), qz.scale, qz.zero
        t_max = t if isinstance(t, int) else int(t.max())  # no silent steps (e.g. the vision tower at Tv < Tt)
        if self._stats is not None:
            self._record(q, t, t_max)
        if self.mode == "fakequant":
            xd = qz.dequantize().reshape(n, self.in_features)  # float32, or float64 for float64 inputs: the weight and bias follow it
            bias = None if self.bias is None else self.bias.to(xd.dtype)
            wd = self.dequantized_weight()  # built per call: never resident next to the integer weights
            y = F.linear(xd, wd.to(xd.dtype), bias)
            return y.reshape(*lead, self.out_features).to(out_dtype)
        # float64 scales (float64 inputs) multiply in float64 on the torch path: the kernel's float32 would differ
        kernel = self._group_kernel() if use_int and self.mode == "fused" and zero is None \
            and torch.float64 not in (scale.dtype, self.wscale.dtype) else None
        if kernel is not None:
            s = scale.reshape(n, -1).float().contiguous() if scale.dim() == 3 else None
            wg = self.wscale.float().contiguous() if self.wscale.shape[1] > 1 else None
            y = self._after_groups(kernel(q, self.qweight, self._part, s, wg), scale)
            y = self._add_bias(y)
            return y.reshape(*lead, self.out_features).to(out_dtype)
        if use_int:
            acc = self._int_products(q, t_col, t_max)
            if zero is not None:  # W (q - z) = W q - z * rowsum(W), in int32: still exact
                acc = acc - (zero.to(torch.int32) * self._int_rowsum() if acc.dim() == 2
                             else self._group_rowsum(zero, torch.int32))
            y = self._finish(acc, scale)
            return y.reshape(*lead, self.out_features).to(out_dtype)
        wt, acc_dtype = self._weights()
        qa = q.to(acc_dtype)
        if wt.dim() == 3:  # groups: [G, N, group] against [G, group, out]
            qa = qa.reshape(qa.shape[0], wt.shape[0], -1).transpose(0, 1)
            t_col = t_col.unsqueeze(0) if isinstance(t_col, torch.Tensor) else t_col
        acc = spike_matmul(qa, t_col, t_max, self.coder, wt, faithful=self.mode == "faithful")
        if zero is not None:  # W (q - z) = W q - z * rowsum(W): still integer, still exact
            acc = acc - (zero.to(acc_dtype) * self._cache["rowsum"] if acc.dim() == 2
                         else self._group_rowsum(zero, acc_dtype))
        y = self._finish(acc, scale)
        return y.reshape(*lead, self.out_features).to(out_dtype)

    def _int_rowsum(self) -> torch.Tensor:
        if "rowsum" not in self._plan_cache:
            self._plan_cache["rowsum"] = self.qweight.to(torch.int32).sum(1, dtype=torch.int32)
        return self._plan_cache["rowsum"]

    def _int_products(self, q: torch.Tensor, t_col: torch.Tensor | int, t_max: int) -> torch.Tensor:
        """Integer sums ``W q`` from int8 codes ``q [N, in]``: ``[N, out]``, or ``[G, N, out]`` per group, int32.

        Fused: one int8 matmul per group. Faithful: the coder's spike planes (int8), stacked into one matmul
        while the step outputs stay small, combined in int32 (Horner ``2*acc + part`` for TC-LIF, a sum for IF).
        """
        wt = self.qweight.t()  # [in, out] view of the int8 weights: no copy
        g = self.in_features // self._part
        faithful = self.mode == "faithful"

        def products(a: torch.Tensor) -> torch.Tensor:
            if g == 1:
                return int_mm(a, wt)
            out = scratch("group_i32", (g, a.shape[0], self.out_features), torch.int32, a.device)
            # G small products: the per-call Python and dispatch cost is a large share at K = group size, so
            # the views come from one split/unbind each (weight views cached) and CPU calls the op directly.
            mm = torch._int_mm if a.device.type == "cpu" else int_mm
            for a_j, w_j, o_j in zip(a.split(self._part, dim=1), self._weight_groups(), out.unbind(0)):
                mm(a_j, w_j, out=o_j)
            return out

        if not faithful:
            return products(q)
        n = q.shape[0]
        planes = self.coder.planes(q, t_col, t_max)
        if t_max * n * self.out_features * g * 4 <= _CAT_BYTES:  # same products as per step, one matmul
            p = products(torch.cat(list(planes)))
            parts = list(p.view(t_max, n, -1).unbind(0) if g == 1 else p.view(g, t_max, n, -1).unbind(1))
        else:
            parts = (products(s) for s in planes)
        acc = None
        for part in parts:
            acc = part.clone() if acc is None else self.coder.combine_(acc, part)
        return acc

    def _weight_groups(self) -> tuple[torch.Tensor, ...]:
        """Views ``[group, out]`` of the int8 weights per activation group (no copy), cached with the plan."""
        if "wgroups" not in self._plan_cache:
            self._plan_cache["wgroups"] = self.qweight.t().split(self._part, dim=0)
        return self._plan_cache["wgroups"]

    def _group_rowsum(self, zero: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Per-group zero-point correction ``z * rowsum(W_g)``, shape ``[G, N, out]``."""
        g = self.in_features // self._part
        rs = self.qweight.to(dtype).reshape(self.out_features, g, -1).sum(-1, dtype=dtype).t()  # [G, out]
        z = zero.to(dtype)
        z = z.permute(1, 0, 2) if z.dim() == 3 else z.unsqueeze(0)  # [G, N, 1] or [1, N, 1]
        return z * rs.unsqueeze(1)

    def _finish(self, acc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Integer sums to real outputs; one code path for every mode so results agree bit for bit."""
        if acc.dim() == 3:  # group partials [G, N, out]
            # Same products and the same sum(0) as ever (bit for bit), computed in place: a fresh [G, N, out]
            # tensor per step cost more than the arithmetic (page faults). int32 partials (a scratch buffer or a
            # fresh faithful sum, never used again) are converted to float32 where they lie, through a float32
            # view of the same memory: each element is read and written at its own place, the same rounding as
            # ``.float()``, at half the memory traffic of converting into a second buffer (a mixed int32 *
            # float32 multiply would make a hidden converted copy).
            first = scale.permute(1, 0, 2) if scale.dim() == 3 else (
                self.wscale.t().unsqueeze(1) if self.wscale.shape[1] > 1 else None)
            if acc.dtype == torch.int32:
                f = acc.view(torch.float32)
                f.copy_(acc)
                acc = f if first is None else f.mul_(first)
            else:
                acc = acc.float() if acc.dtype != torch.float32 else acc
                if first is not None:
                    acc = acc.mul_(first)
            if scale.dim() == 3 and self.wscale.shape[1] > 1:
                acc = acc.mul_(self.wscale.t().unsqueeze(1))
            # a fresh [N, out] in the one order every path shares (group_sum.py): the rescale and bias run in place
            y = self._after_groups(ordered_group_sum(acc), scale)
        else:
            y = (acc.float() * scale) * self.wscale.t()
        return self._add_bias(y)

    def _after_groups(self, y: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """The scales not applied per group: a per-token activation scale, per-channel weight scales."""
        if scale.dim() == 2:
            y = _mul_fresh(y, scale)
        if self.wscale.shape[1] == 1:
            y = _mul_fresh(y, self.wscale.t())
        return y

    def _add_bias(self, y: torch.Tensor) -> torch.Tensor:
        if self.bias is not None:  # y is fresh on every path (never the caller's tensor nor a scratch buffer)
            y = y.add_(self.bias) if torch.result_type(y, self.bias) == y.dtype else y + self.bias
        return y

    def _group_kernel(self) -> native.GroupKernel | None:
        """The native grouped-product kernel when it runs this layer (see :meth:`group_path`), else None."""
        if not native.is_enabled():
            return None
        use = self._plan_cache["group_native"] if "group_native" in self._plan_cache else self._group_plan()[0]
        return native.group_kernel() if use else None

    def _group_plan(self) -> tuple[bool, str]:
        """(native kernel or not, how grouped products run), decided with the backend plan and cached with it.
        The cache holds a flag, not the kernel (a ctypes object): the layer still deep-copies and pickles."""
        self._plan()
        if "group_native" not in self._plan_cache:
            kern, how = None, ""
            if self.in_features // self._part > 1:
                if self._plan_cache["plan"][0] != "int":
                    how = "torch"
                elif self.qweight.device.type != "cpu":
                    how = f"torch (no native kernel on {self.qweight.device.type})"
                elif self._part % 4:
                    how = f"torch (group of {self._part} not a multiple of 4)"
                else:
                    kern = native.group_kernel()
                    if kern is None:
                        how = f"torch ({native.why_unavailable()})"
                    elif not kern.vnni:
                        kern, how = None, "torch (this CPU has no AVX512-VNNI)"
                    else:
                        how = "native avx512-vnni"
            self._plan_cache["group_native"], self._plan_cache["group_how"] = kern is not None, how
        return self._plan_cache["group_native"], self._plan_cache["group_how"]

    def group_path(self) -> str:
        """How fused grouped products run: ``native avx512-vnni``, ``torch (why)``, or "" without groups."""
        how = self._group_plan()[1]
        return "torch (native kernels switched off)" if how.startswith("native") and not native.is_enabled() else how

    # --- statistics ------------------------------------------------------------------------------------
    def _record(self, q: torch.Tensor, t: torch.Tensor | int, t_max: int) -> None:
        """Count spikes from the codes' spike planes, split by modality (exact integers, kept on the device)."""
        n = q.shape[0]
        if self.region == "vision":
            vis = torch.ones(n, dtype=torch.bool, device=q.device)
        else:
            mask = current_vision_mask()
            vis = mask.reshape(-1).to(q.device) if mask is not None and mask.numel() == n else \
                torch.zeros(n, dtype=torch.bool, device=q.device)
        t_tok = t if isinstance(t, torch.Tensor) else torch.full((n,), t, dtype=torch.int64, device=q.device)
        per_step = self.coder.spikes_per_step(q.abs().to(torch.int32), t_tok, t_max)  # [T, N]
        ls: LayerStats = self._stats.layer(self._stats_name, in_features=self.in_features,
                                           out_features=self.out_features, weight_bits=self.weight_spec.bits,
                                           coder=self.coder.coding)
        onehot = torch.stack([vis, ~vis], dim=1).to(torch.int64)  # [N, 2]: vision, text
        ls.add_pending(t_max, (per_step.to(torch.int64) @ onehot).t(), onehot.sum(0),
                       t_tok.reshape(-1).to(torch.int64) @ onehot)

    def extra_repr(self) -> str:
        # a layer on the meta device (a model built before its weights are streamed in) has no plan yet
        backend, why = ("auto", "weights not loaded") if self.qweight.is_meta else self._plan()
        return (f"in_features={self.in_features}, out_features={self.out_features}, coder={self.coder.coding}, "
                f"T(text/vision)={self.t_text}/{self.t_vision}, region={self.region}, "
                f"w_bits={self.weight_spec.bits}, mode={self.mode}, backend={backend}"
                + (f" ({why})" if why else "")
                + (f", groups={self.group_path()}" if not self.qweight.is_meta and self.group_path() else ""))


def _mul_fresh(y: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``y * other`` in place on a fresh ``y`` when the result keeps ``y``'s dtype and shape (the same rounding);
    out of place when it would promote (a float64 scale makes a float64 result, as it always did)."""
    if torch.result_type(y, other) == y.dtype and torch.broadcast_shapes(y.shape, other.shape) == y.shape:
        return y.mul_(other)
    return y * other


def _set_everywhere(model: nn.Module, field: str, value: str, allowed: tuple[str, ...]) -> nn.Module:
    """Set ``field`` (``mode`` or ``backend``) on every SpikeLinear and replace it in every attention spec."""
    if value not in allowed:
        raise ConfigError(f"{field}={value!r} is unknown; allowed values: {', '.join(allowed)}")
    for m in model.modules():
        if isinstance(m, SpikeLinear):
            setattr(m, field, value)
        spec = getattr(m, "_spike_attn", None)
        if spec is not None:
            m._spike_attn = replace(spec, **{field: value})
    return model


def set_backend(model: nn.Module, backend: str) -> nn.Module:
    """Set the backend of every SpikeLinear and spiking attention in ``model``: ``auto`` (the default: integer
    kernels wherever they are exact), ``int`` (raise where they cannot run) or ``float`` (integer-valued float
    matmuls, the reference). For tests and benchmarks: every backend computes the same outputs, bit for bit."""
    return _set_everywhere(model, "backend", backend, BACKENDS)


def set_mode(model: nn.Module, mode: str) -> nn.Module:
    """Switch every SpikeLinear (and spiking attention) in ``model`` to ``faithful``, ``fused`` or ``fakequant``."""
    return _set_everywhere(model, "mode", mode, MODES)
