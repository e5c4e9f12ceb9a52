"""What each learner action costs the server in CPU, measured with one learner alone, and what that
means for a class: how many learners at a given pace one server process can serve before its core is full.

CPU time (not wall time) is used because it hardly depends on what else the machine runs: on a shared
machine the class's latencies measure the other tenants as much as the app, the CPU per action does not.
A Streamlit server runs every session's script in one Python process, so it uses about one core.
"""

from __future__ import annotations

import asyncio
import random
import statistics
from dataclasses import dataclass
from pathlib import Path

from bench.harness import AppServer
from bench.learners import Pace, drawing_data_url, photo_bytes
from bench.server_stats import group_cpu_s
from bench.st_client import RunResult, StreamlitClient, query_value

KINDS = ("open", "release", "map", "draw", "upload")


@dataclass(frozen=True)
class ActionCosts:
    """Median server CPU milliseconds per action (open = the page, its payload and the map's run)."""

    ms: dict[str, float]

    def learner_cpu_s_per_min(self, pace: Pace) -> float:
        """Expected server CPU seconds a working learner costs per minute at `pace` (opening excluded).

        One cycle = a think pause, then one action drawn with pace.weights; a release burst holds
        mean(burst) releases with mean(release_gap) between them. Service times are left out (a
        lower bound on the cycle, so an upper bound on the cost)."""
        mean = lambda pair: (pair[0] + pair[1]) / 2  # noqa: E731
        w_release, w_map, w_draw, w_upload = pace.weights
        releases = mean(pace.burst)
        cycle_s = mean(pace.think) + w_release * (releases - 1) * mean(pace.release_gap)
        cpu_ms = (w_release * releases * self.ms["release"] + w_map * self.ms["map"] + w_draw * self.ms["draw"]
                  + w_upload * self.ms["upload"])
        return 60 / cycle_s * cpu_ms / 1000

    def learners_per_core(self, pace: Pace) -> float:
        """Working learners at `pace` that fill one core (100 %: queues grow without bound beyond)."""
        return 60 / self.learner_cpu_s_per_min(pace)


async def _probe(url: str, pgid: int, repeats: int, rng: random.Random) -> dict[str, list[float]]:
    costs: dict[str, list[float]] = {k: [] for k in KINDS}
    for rep in range(repeats):
        client = StreamlitClient(url)
        try:
            async def cpu_ms(kind: str, request) -> RunResult:  # noqa: ANN001 - an awaitable
                before = group_cpu_s(pgid)
                result = await request
                costs[kind].append((group_cpu_s(pgid) - before) * 1000)
                if not result.ok:
                    raise RuntimeError(f"{kind} failed: {result.exceptions + result.error_alerts}")
                return result

            before = group_cpu_s(pgid)
            await client.open()
            await client.ready()
            costs["open"].append((group_cpu_s(pgid) - before) * 1000)
            link_code = query_value(client.query_string, "z")
            dim = len(link_code.split(",")) if link_code else 8
            for i in range(3):  # a new value each time, or the release would change nothing
                await cpu_ms("release", client.release([0.05 * (i + 1 + 3 * rep)] + [0.0] * (dim - 1)))
            await cpu_ms("map", client.click_map(rng.randrange(300)))
            await cpu_ms("draw", client.stroke(drawing_data_url(rng)))
            await cpu_ms("upload", client.upload("photo.jpg", photo_bytes(rng), "image/jpeg"))
        finally:
            await client.close()
    return costs


def measure(models: Path, log_path: Path, repeats: int = 3, seed: int = 0) -> ActionCosts:
    """Start the app on `models`, warm it with one page, then time each action's server CPU
    (`repeats` learners one after another, each: open, 3 releases, a map click, a stroke, an upload)."""
    app = AppServer(models, log_path).start()
    try:
        async def run() -> dict[str, list[float]]:
            warm = StreamlitClient(app.url)
            try:
                await warm.open()
                await warm.ready()
            finally:
                await warm.close()
            return await _probe(app.url, app.proc.pid, repeats, random.Random(seed))

        costs = asyncio.run(run())
    finally:
        app.stop()
    return ActionCosts({k: statistics.median(v) for k, v in costs.items()})
