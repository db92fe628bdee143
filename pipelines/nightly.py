"""The nightly provincial deployment: tonight's export from the inbox, checked on a cron schedule.

An empty inbox, or an export the last published run already checked, is a clean run that says so
and publishes nothing. The schedule's time zone is Asia/Shanghai whatever the server's clock says.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.schedules import Cron

from pipelines.provincial import provincial_run
from xueji_quality import inbox

TIMEZONE = "Asia/Shanghai"
DEFAULT_CRON = "0 2 * * *"


@flow(name="nightly-provincial-run")
def nightly_run(
    inbox_dir: str,
    province: str,
    out: str,
    mask_ids: bool = False,
    suites_dir: str | None = None,
    linkage_config: str | None = None,
) -> dict:
    """Check the newest export(s) in the inbox unless they were checked already."""
    logger = get_run_logger()
    batch = inbox.newest_exports(Path(inbox_dir))
    if not batch:
        message = f"收件箱 {inbox_dir} 中没有学籍导出文件，本次不运行。"
        logger.info(message)
        create_markdown_artifact(message, key="xueji-nightly", description="夜间运行")
        return {"status": "empty-inbox", "message": message}
    done = inbox.processed_by(batch, Path(out))
    if done:
        names = "、".join(p.name for p in batch)
        message = f"{names} 已在运行 {done} 中检查过，本次不重复运行。"
        logger.info(message)
        create_markdown_artifact(message, key="xueji-nightly", description="夜间运行")
        return {"status": "already-processed", "run_id": done, "message": message}
    result = provincial_run(
        inputs=[str(p) for p in batch],
        province=province,
        out=out,
        mask_ids=mask_ids,
        suites_dir=suites_dir,
        linkage_config=linkage_config,
    )
    return {"status": "completed", "run_id": result["run_id"], "run_dir": result["run_dir"]}


def nightly_deployment(
    province: str,
    inbox_dir: str,
    out: str,
    cron: str = DEFAULT_CRON,
    mask_ids: bool = False,
    suites_dir: str | None = None,
    linkage_config: str | None = None,
):
    """The deployment the nightly schedule runs (Asia/Shanghai time)."""
    return nightly_run.to_deployment(
        name=f"nightly-{province}",
        schedule=Cron(cron, timezone=TIMEZONE),
        parameters={
            "inbox_dir": str(Path(inbox_dir).resolve()),
            "province": province,
            "out": str(Path(out).resolve()),
            "mask_ids": mask_ids,
            "suites_dir": str(Path(suites_dir).resolve()) if suites_dir else None,
            "linkage_config": str(Path(linkage_config).resolve()) if linkage_config else None,
        },
        description=f"每晚检查省 {province} 收件箱中最新的学籍导出",
    )
