"""What every benchmark shares: the Figure line format, medians, a Streamlit-like thread, test codes."""

from __future__ import annotations

import logging
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from explorer import bundle, codes

APPTEST_TIMEOUT = 180.0  # seconds for one AppTest run on a loaded machine


@dataclass(frozen=True)
class Figure:
    """One benchmark figure and its target (value <= target passes; value >= target for `at_least`)."""

    name: str
    value: float
    target: float
    at_least: bool = False  # rates: more is better

    def line(self) -> str:
        ok = self.value >= self.target if self.at_least else self.value <= self.target
        sign = ">=" if self.at_least else "<="
        return f"{self.name}={self.value:.{_digits(self.name)}f} (target {sign} {self.target:g}) {'PASS' if ok else 'MISS'}"


def _digits(name: str) -> int:
    if "bytes" in name:
        return 0
    if name.endswith("_per_s"):
        return 1
    return 2 if name.endswith("_s") else 1 if name.endswith("_ms") else 3


def median_seconds(fn: Callable[[int], None], repeats: int) -> float:
    """Median wall time of fn(i) over `repeats` calls, in seconds."""
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def in_script_thread(fn: Callable[[], float]) -> float:
    """fn() run in a fresh thread, as Streamlit runs each script run (a new ScriptRunner thread)."""
    out: list[float] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            out.append(fn())
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(e)

    th = threading.Thread(target=target, name="bench-script-thread")
    th.start()
    th.join()
    if errors:
        raise errors[0]
    return out[0]


def drop_context_warning(record: logging.LogRecord) -> bool:
    """Log filter: AppTest touches session state from the main thread, a harmless warning per run."""
    return "missing ScriptRunContext" not in record.getMessage()


def random_codes(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """n codes [n, dim] on the sliders' 0.05 grid within +-SLIDER_LIMIT, float32."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(-codes.SLIDER_LIMIT, codes.SLIDER_LIMIT, (n, dim))
    return (np.round(z / 0.05) * 0.05).astype(np.float32)


def load_first_model(models: Path) -> bundle.ExplorerModel:
    """The checkpoint the app opens first in `models` (default.pt first), with its atlas."""
    paths = bundle.list_checkpoints(models)
    if not paths:
        raise SystemExit(f"no checkpoint in {models}")
    return bundle.load_explorer_model(paths[0])
