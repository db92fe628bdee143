"""What a provincial run is called: its run date, and its flow run's name, which is the run id
it publishes under (``44-20261128``, ``44-20261128-2`` for the day's second run)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from xueji_quality import reports


def run_date_of(as_of: date | str | None) -> date:
    """The run date: ``as_of`` (a date or its ISO text), else today."""
    if isinstance(as_of, str):
        return date.fromisoformat(as_of)
    return as_of or date.today()


def flow_run_name() -> str:
    """The flow run's name: the run id the run will publish under. The flow decides the id
    again under the output folder's lock and renames the run if another run took this one."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    run_date = run_date_of(parameters.get("as_of"))
    try:
        return reports.new_run_id(Path(parameters["out"]), parameters["province"], run_date)
    except (KeyError, OSError, ValueError):
        return f"{parameters.get('province')}-{run_date:%Y%m%d}"


def name_flow_run(run_id: str) -> dict[str, Any]:
    """Name the current flow run ``run_id`` (if it is not already); its name and id."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    if flow_run.name != run_id:
        with get_client(sync_client=True) as client:
            client.set_flow_run_name(flow_run.get_id(), run_id)
    return {"name": run_id, "id": flow_run.get_id()}
