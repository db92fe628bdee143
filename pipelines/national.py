"""The national duplicate check as Prefect flows: a province's export, and the national run.

``national_export(run_dir, out, key_file=None)`` writes a province's exchange file from a
published run (``xueji_quality.national.exchange.export_national``). The national key is read
inside the task from the key file or ``XUEJI_NATIONAL_KEY``: it is never a flow parameter, a
task argument or a result, so Prefect neither records nor stores it.

``national_run(files, out, dask_address=None)`` links the exchange files of all provinces on a
Dask cluster (``xueji_quality.national.link.national_link``): the scheduler at ``dask_address``
(``tcp://host:8786``), or a LocalCluster of ``workers`` single-threaded worker processes with
``memory_limit`` each, with the settings of ``config`` (config/national.json by default). It
writes ``out/returns/<province>.parquet`` and ``out/summary.json`` and
publishes the pairs by province pair as a table artifact. The linkage itself runs on the Dask
workers (the flow's own tasks only plan and orchestrate), so ``out`` and the exchange files must
be on storage the workers share.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from xueji_quality.national import exchange, link, tokens

# The p2p shuffle logs each shuffle's start and end as warnings on the scheduler.
QUIET_LOGGERS = ("distributed.shuffle._scheduler_plugin",)


@task(name="national-export", cache_policy=NO_CACHE)
def export_task(
    run_dir: str, out: str, key_file: str | None, inputs: list[str] | None = None
) -> dict:
    key = tokens.load_key(key_file)
    manifest = exchange.export_national(run_dir, key, out, inputs=inputs)
    get_run_logger().info(
        "全国查重交换文件 %s：%d 条记录，令牌 %d 个，密钥指纹 %s",
        out,
        manifest["rows"],
        manifest["token_rows"],
        manifest["key_fingerprint"],
    )
    return manifest


@flow(name="national-export", log_prints=True)
def national_export(
    run_dir: str, out: str, key_file: str | None = None, inputs: list[str] | None = None
) -> dict:
    """The exchange file of the published run ``run_dir`` at ``out`` (see the module
    docstring); returns its manifest (never the key)."""
    return export_task(run_dir, out, key_file, inputs)


@task(name="national-plan", cache_policy=NO_CACHE)
def plan_task(files: list[str]) -> list[dict]:
    infos, pieces = link.plan([Path(f) for f in files])
    get_run_logger().info(
        "交换文件 %d 个（%s），记录 %d 条，分 %d 块读入，密钥指纹 %s",
        len(infos),
        "、".join(info["province"] for info in infos),
        sum(info["rows"] for info in infos),
        len(pieces),
        infos[0]["key_fingerprint"],
    )
    return infos


@task(name="national-link", cache_policy=NO_CACHE)
def link_task(
    files: list[str],
    out: str,
    dask_address: str | None,
    workers: int,
    memory_limit: str,
    settings: link.LinkSettings,
) -> dict:
    from distributed import Client, LocalCluster

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    logger = get_run_logger()
    if dask_address:
        with Client(dask_address) as client:
            logger.info("Dask 集群 %s：%d 个工作进程", dask_address, _workers(client))
            return link.national_link(files, out, client, settings)
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_limit,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        logger.info("本机 Dask 集群：%d 个工作进程，每个内存上限 %s", workers, memory_limit)
        return link.national_link(files, out, client, settings)


def _workers(client) -> int:
    return len(client.scheduler_info(n_workers=-1)["workers"])


@flow(name="national-run", log_prints=True)
def national_run(
    files: list[str],
    out: str,
    dask_address: str | None = None,
    workers: int = 2,
    memory_limit: str = "4GB",
    block_cap: int | None = None,
    partitions: int | None = None,
    config: str | None = None,
) -> dict:
    """Link the provinces' exchange files on Dask; write the returns and the summary under
    ``out``; return the summary. ``config``: a national config file (default
    config/national.json); ``block_cap`` and ``partitions`` override it."""
    plan_task(files)
    settings = link.load_settings(config)
    if block_cap is not None:
        settings = replace(settings, block_cap=block_cap)
    settings = replace(settings, partitions=partitions)
    summary = link_task(files, out, dask_address, workers, memory_limit, settings)
    rows = summary["pairs_by_province_pair"]
    if rows:
        create_table_artifact(
            rows, key="xueji-national-pairs", description="全国查重：各省份对之间的重复学籍对数"
        )
    create_markdown_artifact(
        f"# 全国查重\n\n- 交换文件 {len(summary['files'])} 个，记录 {summary['records']} 条，"
        f"令牌 {summary['token_rows']} 个，分 {summary['token_partitions']['count']} 个分区\n"
        f"- 跨省重复 {summary['duplicate_pairs']} 对：{summary['pairs_by_class']}\n"
        f"- 回执：`{Path(out) / link.RETURNS}`；汇总：`{Path(out) / link.SUMMARY_NAME}`\n"
        f"- 用时 {summary['timings_s']['total_s']} 秒",
        key="xueji-national-summary",
        description="全国查重的规模、结果与回执位置",
    )
    get_run_logger().info(
        "全国查重完成：%d 对跨省重复，回执写入 %s",
        summary["duplicate_pairs"],
        Path(out) / "returns",
    )
    return summary
