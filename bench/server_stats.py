"""The app server's memory and CPU, read from /proc for its whole process group (Linux)."""

from __future__ import annotations

import os
import threading


def _group_stats(pgid: int) -> list[tuple[int, list[str]]]:
    """(pid, fields of /proc/pid/stat after the command name) of every process in process group `pgid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                found.append((int(entry), fields))
        except (OSError, ValueError, IndexError):
            continue  # the process ended between the listing and the read
    return found


def group_rss_mb(pgid: int) -> float:
    """Resident memory (MB, decimal) of every process in process group `pgid` (the server and any child)."""
    total = 0
    for pid, _ in _group_stats(pgid):
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next((int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:")), 0)
        except OSError:
            continue
    return total / 1e6


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the processes in group `pgid`."""
    ticks = sum(int(fields[11]) + int(fields[12]) for _, fields in _group_stats(pgid))  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


class RssSampler(threading.Thread):
    """Samples the summed RSS of the server groups `pgids` every `every` seconds until stopped; keeps the peak."""

    def __init__(self, pgids: list[int], every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pgids, self.every, self.peak = pgids, every, 0.0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, sum(map(group_rss_mb, self.pgids)))
            self._stop_event.wait(self.every)

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return self.peak
