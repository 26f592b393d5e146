"""GPU power from ``nvidia-smi`` samples, integrated over the windows a benchmark times (for bench_gpu.py).

Why nvidia-smi and not NVML bindings: it is on every machine with the NVIDIA driver, needs no Python package, and
samples on its own clock (``-lms``), so sampling costs the timed work nothing. Each line it prints is stamped
with ``time.perf_counter()`` when read, the clock the benchmark's timings use; energy over ``[t0, t1]`` is the
trapezoid integral of the samples, with the window's edges interpolated.
"""
from __future__ import annotations

import shutil
import subprocess
import threading
import time

__all__ = ["PowerSampler", "nvidia_smi"]


def nvidia_smi() -> str | None:
    """Path of nvidia-smi, or None when this is not a machine with the NVIDIA driver."""
    return shutil.which("nvidia-smi")


class PowerSampler:
    """Samples ``power.draw`` (W) of one GPU every ``interval_ms`` in a background process."""

    def __init__(self, gpu: str = "0", interval_ms: int = 50) -> None:
        self.samples: list[tuple[float, float]] = []
        self.error: str | None = None
        exe = nvidia_smi()
        self._proc: subprocess.Popen | None = None
        if exe is None:
            self.error = "nvidia-smi not found (no NVIDIA driver on this machine): power is not sampled"
            return
        cmd = [exe, "--query-gpu=power.draw", "--format=csv,noheader,nounits", f"-lms={interval_ms}", f"-i={gpu}"]
        try:
            self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        except OSError as e:
            self.error = f"nvidia-smi could not start ({e}): power is not sampled"
            return
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                self.samples.append((time.perf_counter(), float(line.strip().split(",")[0])))
            except ValueError:  # "[N/A]" or a header: keep reading
                if not self.samples and self.error is None:
                    self.error = f"nvidia-smi printed {line.strip()!r} instead of a power reading"

    def wait_for_first(self, timeout_s: float = 3.0) -> bool:
        """True once a sample has arrived (nvidia-smi takes a moment to start)."""
        end = time.perf_counter() + timeout_s
        while not self.samples and time.perf_counter() < end and self._proc is not None:
            time.sleep(0.02)
        if not self.samples and self.error is None:
            self.error = "nvidia-smi gave no power sample within 3 s: power is not sampled"
        return bool(self.samples)

    def energy_j(self, t0: float, t1: float) -> float | None:
        """Joules between perf_counter times ``t0`` and ``t1`` (None without samples around the window)."""
        pts = self.samples
        if len(pts) < 2 or t1 <= t0 or pts[0][0] > t1:
            return None
        time.sleep(0)  # let the reader append what is already printed

        def at(t: float) -> float:
            for (ta, pa), (tb, pb) in zip(pts, pts[1:]):
                if ta <= t <= tb:
                    return pa + (pb - pa) * (t - ta) / (tb - ta) if tb > ta else pa
            return pts[0][1] if t < pts[0][0] else pts[-1][1]

        inner = [(t, p) for t, p in pts if t0 < t < t1]
        xs = [(t0, at(t0)), *inner, (t1, at(t1))]
        return sum((tb - ta) * (pa + pb) / 2 for (ta, pa), (tb, pb) in zip(xs, xs[1:]))

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
