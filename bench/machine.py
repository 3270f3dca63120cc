"""The machine a benchmark ran on, in the words every published figure names it: CPU model, cores and the
instruction sets that decide the speed of torch's kernels (bf16 and int8 units)."""

from __future__ import annotations

import os
import platform
import statistics
import threading

#: The flags that change what a CPU figure means: AVX2 only, or bf16 and int8 units beside it.
SPEED_FLAGS = ("avx2", "avx512_bf16", "avx512_vnni", "amx_bf16")


def cpu() -> str:
    """``"AMD EPYC, 2 cores (avx2 avx512_bf16 avx512_vnni)"``: the model name, the cores this process may use
    and the speed flags present (``flags unknown`` where ``/proc/cpuinfo`` cannot be read)."""
    name = platform.processor() or platform.machine()
    flags: list[str] = []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name") and name in ("", platform.machine()):
                    name = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    flags = [flag for flag in SPEED_FLAGS if flag in present]
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores ({' '.join(flags) or 'flags unknown'})"


class LoadWatch:
    """Samples the machine's 1-minute load average while a run trains: budgets of wall-clock minutes are equal
    compute only on a quiet machine, so a run that shared the cores says so.

    Args:
        interval: seconds between samples.
    """

    def __init__(self, interval: float = 15.0) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> LoadWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> tuple[float, float]:
        """The median and the highest load seen."""
        return statistics.median(self.samples), max(self.samples)
