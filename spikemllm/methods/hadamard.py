"""Orthogonal rotations for QuaRot-style outlier removal: a fast Walsh-Hadamard transform of our own.

Why Hadamard: multiplying activations by an orthogonal matrix whose entries all have the same magnitude spreads
a single outlier channel evenly over every channel, so a per-token quantizer no longer spends its whole range
on one value. ``y = x W^T = (x Q)(W Q)^T`` for any orthogonal ``Q``, so rotating the input online and the weight
offline leaves the float function unchanged.

Sizes: for ``n = 2**k`` we use the normalised Sylvester Hadamard ``H_n / sqrt(n)`` through the butterfly
(``O(n log n)``). For ``n = 2**k * m`` with ``m > 1`` odd (hidden sizes such as 384 = 128 * 3 or 3584 = 512 * 7) no
Sylvester matrix exists; we use the Kronecker product ``R_m (x) H_{2**k}`` with ``R_m`` a seeded random
orthogonal ``m x m`` matrix (QR of a Gaussian). It is still orthogonal and still mixes every channel of a
2**k-block evenly; the small ``R_m`` mixes the ``m`` blocks. Optional random signs (``diag(+-1)`` before the
transform) make the rotation "randomised Hadamard" as in QuaRot, which avoids aligning with structured inputs.

``Q = diag(signs) (R (x) H)``; ``rotate(x) = x Q``. Being one function, it is used for both the online input
transform and the offline weight rotation (``W Q = rotate(W)`` row by row), so the two always agree.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from ..nn.transforms import InputTransform, register_transform


def split_pow2(n: int) -> tuple[int, int]:
    """``n = p * m`` with ``p`` the largest power of two dividing ``n`` and ``m`` odd."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"rotation size must be a positive integer; got {n!r}")
    p = n & -n
    return p, n // p


def fwht(x: torch.Tensor) -> torch.Tensor:
    """Normalised Walsh-Hadamard transform over the last dimension (a power of two): ``x H_n / sqrt(n)``."""
    n = x.shape[-1]
    if n & (n - 1):
        raise ValueError(f"fwht needs a power-of-two last dimension; got {n}")
    lead = x.shape[:-1]
    y = x.reshape(-1, n)
    h = 1
    while h < n:
        y = y.reshape(-1, n // (2 * h), 2, h)
        a, b = y[:, :, 0, :], y[:, :, 1, :]
        y = torch.stack((a + b, a - b), dim=2)
        h *= 2
    return (y.reshape(*lead, n) / math.sqrt(n)).to(x.dtype)


def hadamard_matrix(n: int) -> torch.Tensor:
    """The normalised Sylvester Hadamard matrix of order ``n`` (a power of two), float64."""
    return fwht(torch.eye(n, dtype=torch.float64))


def random_orthogonal(m: int, seed: int) -> torch.Tensor:
    """A seeded random ``m x m`` orthogonal matrix (float64), sign-fixed QR of a Gaussian."""
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(m, m, generator=g, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(m, dtype=torch.float64))


def random_signs(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 2, (n,), generator=g) * 2 - 1).to(torch.float64)


@register_transform
class HadamardRotation(InputTransform):
    """``x -> x Q`` with ``Q = diag(signs) (R_m (x) H_p)`` over the last dimension (see module docstring).

    Buffers ``signs`` (``[n]``, all ones when not randomised) and ``r`` (``[m, m]``, ``[[1]]`` for powers of
    two) hold everything; the construction arguments round-trip through :meth:`to_spec`.
    """

    kind = "hadamard"

    def __init__(self, n: int, seed: int = 0, randomize: bool = False) -> None:
        super().__init__()
        p, m = split_pow2(n)
        self.n, self.p, self.m, self.seed, self.randomize = n, p, m, int(seed), bool(randomize)
        signs = random_signs(n, seed) if randomize else torch.ones(n, dtype=torch.float64)
        r = random_orthogonal(m, seed + 1) if m > 1 else torch.ones(1, 1, dtype=torch.float64)
        self.register_buffer("signs", signs.float())
        self.register_buffer("r", r.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.n:
            raise ValueError(f"HadamardRotation of size {self.n} got an input with {x.shape[-1]} features")
        dt = x.dtype
        y = x.float() * self.signs if self.randomize else x.float()
        if self.m == 1:
            return fwht(y).to(dt)
        y = fwht(y.reshape(*x.shape[:-1], self.m, self.p))     # X H   (rows: the m blocks)
        y = torch.einsum("km,...kp->...mp", self.r, y)          # R^T X H
        return y.reshape(x.shape).to(dt)

    def matrix(self) -> torch.Tensor:
        """The dense ``Q`` (float32) -- for tests and small sizes only."""
        return self.forward(torch.eye(self.n))

    def to_spec(self) -> dict[str, Any]:
        return {"n": self.n, "seed": self.seed, "randomize": self.randomize}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "HadamardRotation":
        return cls(**spec)

    def extra_repr(self) -> str:
        return f"n={self.n} (= {self.m} x {self.p}), randomize={self.randomize}"
