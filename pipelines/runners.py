"""Task runners: threads on one machine by default, or a Dask cluster for scale-out."""

from __future__ import annotations

from prefect.task_runners import ThreadPoolTaskRunner


def task_runner(kind: str = "threads", dask_address: str | None = None, workers: int = 2):
    """The runner for the per-partition tasks.

    ``dask`` without an address starts a LocalCluster of ``workers`` single-threaded processes
    (pandas and GX hold the GIL, so processes, not threads, give parallelism).
    """
    if kind == "threads":
        return ThreadPoolTaskRunner(max_workers=workers)
    if kind == "dask":
        from prefect_dask import DaskTaskRunner

        if dask_address:
            return DaskTaskRunner(address=dask_address)
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True}
        )
    raise ValueError(f"未知的任务执行器 {kind!r}（可选 threads、dask）")
