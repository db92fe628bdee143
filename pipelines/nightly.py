"""The nightly provincial deployment: tonight's export from the inbox, checked on a cron schedule.

An empty inbox, or an export the last published run already checked with the same options, rules
and answers (``xueji_quality.run_fingerprint``), is a clean run that says so, records it in
``<out>/status.json`` and publishes nothing; ``force`` (a parameter an officer can set when
starting the deployment by hand) runs anyway. The schedule's time zone is Asia/Shanghai whatever
the server's clock says. Flow runs are named ``nightly-<province>-<yyyymmdd>``; the provincial run
inside is named after its run id. A failure is notified through the configured Prefect block
(``pipelines.notify``), once.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.schedules import Cron

from pipelines.notify import notify_on_failure
from pipelines.provincial import provincial_run
from xueji_quality import inbox, run_fingerprint, run_status
from xueji_quality.reports.publish import run_lock
from xueji_quality.reports.retention import DEFAULT_KEEP_RUNS

TIMEZONE = "Asia/Shanghai"
DEFAULT_CRON = "0 2 * * *"


def _nightly_name() -> str:
    from prefect.runtime import flow_run

    province = flow_run.parameters.get("province")
    return f"nightly-{province}-{datetime.now(ZoneInfo(TIMEZONE)):%Y%m%d}"


def _no_run(out_root: Path, province: str, message: str) -> None:
    get_run_logger().info(message)
    with run_lock(out_root):
        run_status.succeed(out_root, message, province=province)
    create_markdown_artifact(message, key="xueji-nightly", description="夜间运行")


@flow(name="nightly-provincial-run", flow_run_name=_nightly_name, on_failure=[notify_on_failure])
def nightly_run(
    inbox_dir: str,
    province: str,
    out: str,
    mask_ids: bool = False,
    suites_dir: str | None = None,
    linkage_config: str | None = None,
    keep_runs: int = DEFAULT_KEEP_RUNS,
    notify_block: str | None = None,
    force: bool = False,
) -> dict:
    """Check the newest export(s) in the inbox unless they were checked already."""
    out_root = Path(out)
    run_status.forget(out_root)
    batch = inbox.newest_exports(Path(inbox_dir))
    if not batch:
        message = f"收件箱 {inbox_dir} 中没有学籍导出文件，本次不运行。"
        _no_run(out_root, province, message)
        return {"status": "empty-inbox", "message": message}
    with run_lock(out_root):
        tonight = run_fingerprint.fingerprint(
            run_fingerprint.input_hashes(batch),
            run_fingerprint.options_fingerprint(
                province=province,
                run_date=date.today(),
                mask_ids=mask_ids,
                suites_dir=suites_dir,
                linkage_config=linkage_config,
            ),
            run_fingerprint.answers_fingerprint(out_root),
        )
        done = run_fingerprint.unchanged_since(run_fingerprint.latest_manifest(out_root), tonight)
        if done and not force:
            names = "、".join(p.name for p in batch)
            message = (
                f"{names} 已在运行 {done} 中检查过（导出文件、选项、规则与答复均未变化），"
                "本次不重复运行。"
            )
            _no_run(out_root, province, message)
            return {"status": "already-processed", "run_id": done, "message": message}
        result = provincial_run(
            inputs=[str(p) for p in batch],
            province=province,
            out=out,
            mask_ids=mask_ids,
            suites_dir=suites_dir,
            linkage_config=linkage_config,
            keep_runs=keep_runs,
            notify_block=notify_block,
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
    keep_runs: int = DEFAULT_KEEP_RUNS,
    notify_block: str | None = None,
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
            "keep_runs": keep_runs,
            "notify_block": notify_block,
        },
        description=f"每晚检查省 {province} 收件箱中最新的学籍导出",
    )
