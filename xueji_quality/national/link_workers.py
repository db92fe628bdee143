"""Figures of the workers of a national linkage: resident memory sampled on each worker while
the linkage runs, and busy time per worker from the task stream."""

from __future__ import annotations

import resource
import threading

_SAMPLERS: dict[str, dict] = {}


def start_memory_sampler(label: str, interval_s: float = 0.05) -> int:
    """On a worker: sample this process's resident memory until ``stop_memory_sampler``."""
    import psutil

    process = psutil.Process()
    state = {"peak": process.memory_info().rss, "stop": threading.Event()}
    state["start"] = state["peak"]

    def sample() -> None:
        while not state["stop"].wait(interval_s):
            state["peak"] = max(state["peak"], process.memory_info().rss)

    thread = threading.Thread(target=sample, name="xueji-memory", daemon=True)
    thread.start()
    state["thread"] = thread
    _SAMPLERS[label] = state
    return int(state["start"])


def stop_memory_sampler(label: str) -> dict:
    """On a worker: stop the sampler; resident memory at start, peak and now (bytes)."""
    import psutil

    state = _SAMPLERS.pop(label, None)
    now = psutil.Process().memory_info().rss
    if state is None:
        return {"rss_start": None, "rss_peak": None, "rss_end": int(now)}
    state["stop"].set()
    state["thread"].join(timeout=1)
    peak = max(state["peak"], now)
    return {
        "rss_start": int(state["start"]),
        "rss_peak": int(peak),
        "rss_end": int(now),
        "max_rss_process": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024,
    }


def busy_seconds(task_stream: list[dict]) -> dict[str, float]:
    busy: dict[str, float] = {}
    for task in task_stream:
        for span in task.get("startstops", ()):
            if span.get("action") == "compute":
                worker = task.get("worker", "?")
                busy[worker] = busy.get(worker, 0.0) + span["stop"] - span["start"]
    return busy
