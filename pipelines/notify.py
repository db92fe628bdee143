"""Telling someone that a run failed: a Prefect notification block or webhook block, if one is
configured.

A data officer names the block by its slug, ``<block type>/<block name>`` as Prefect shows it
(``slack-webhook/xueji-ops``, ``email/xueji-ops``, ``custom-webhook/ops``, ``webhook/monitor``),
with ``--notify-block`` (``run``, ``serve``) or the environment variable ``XUEJI_NOTIFY_BLOCK``;
the block itself (its URL, address, token) is created once in the Prefect UI or with
``prefect block create``, so no secret is on a command line. Without either, nothing is sent:
``OUT/status.json`` and the exit status are the markers that are always there.

The hook :func:`notify_on_failure` is the ``on_failure`` hook of the provincial and nightly flows.
It sends once per failed run: a flow run started by another flow (the provincial run inside the
nightly run) leaves it to the outer one. A notification block gets a subject and a body of a few
lines (run id, stage, reason, the last published run, where the status file is); a webhook block
gets the status record itself as JSON. A notification that cannot be sent is logged as a warning
and changes nothing else: the run's own failure is what the status and the exit status report.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from xueji_quality import run_status

NOTIFY_ENV = "XUEJI_NOTIFY_BLOCK"


def notification_block(given: str | None = None) -> str | None:
    """The block slug to notify through: ``given``, else ``$XUEJI_NOTIFY_BLOCK``, else None."""
    return given or os.environ.get(NOTIFY_ENV, "").strip() or None


def failure_message(status: dict | None, flow_run_name: str, out: str | None) -> tuple[str, str]:
    """(subject, body) of the notification of a failed run."""
    status = status or {}
    run_id = status.get("run_id") or flow_run_name
    subject = f"学籍查重查错运行失败：{run_id}"
    published = status.get("last_published") or {}
    lines = [
        f"运行 {run_id} 失败",
        f"阶段：{status.get('stage_label') or '未知'}",
        f"原因：{status.get('reason') or '见 Prefect 日志'}",
        f"上次已发布的运行：{published.get('run_id') or '无'}（{published.get('path') or '-'}）",
    ]
    if out:
        lines.append(f"状态文件：{Path(out).resolve() / run_status.STATUS_NAME}")
    return subject, "\n".join(lines)


def send(slug: str, subject: str, body: str, status: dict | None) -> None:
    """Send through the block ``slug``: ``notify`` of a notification block, ``call`` of a
    webhook block (the status record as JSON)."""
    from prefect.blocks.core import Block
    from prefect.utilities.asyncutils import run_coro_as_sync

    block = Block.load(slug)
    if hasattr(block, "notify"):
        sent = block.notify(body=body, subject=subject)
    elif hasattr(block, "call"):
        sent = block.call({"subject": subject, "text": body, "status": status or {}})
    else:
        raise TypeError(f"Prefect 块 {slug} 既不是通知块也不是 Webhook 块")
    # Prefect's own blocks answer synchronously here; a block written as a coroutine does not.
    if inspect.isawaitable(sent):
        run_coro_as_sync(sent)


def notify_on_failure(flow, flow_run, state) -> None:  # type: ignore[no-untyped-def]
    """``on_failure`` hook: notify through the configured block, once per failed run."""
    from prefect.logging.loggers import flow_run_logger

    if flow_run.parent_task_run_id is not None:
        return
    parameters = flow_run.parameters or {}
    slug = notification_block(parameters.get("notify_block"))
    if slug is None:
        return
    out = parameters.get("out")
    status = run_status.read_status(Path(out)) if out else None
    subject, body = failure_message(status, flow_run.name, out)
    logger = flow_run_logger(flow_run, flow)
    try:
        send(slug, subject, body, status)
    except Exception as exc:  # the run's failure is reported already; this must not hide it
        logger.warning("未能通过 Prefect 块 %s 发送失败通知：%s", slug, exc)
    else:
        logger.info("已通过 Prefect 块 %s 发送失败通知", slug)
