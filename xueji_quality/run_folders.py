"""The folders a run works in under its output folder, before anything is published.

Both are named with the staging prefix and this process's id, so the next run on the same output
folder removes what a killed run left behind (``reports.clean_stale_staging``):

- the staged roster, ``<out>/.tmp-roster-<pid>``: beside the reports, on the disk sized for the
  data; moved into ``<out>/.state/`` once the run is published (``xueji_quality.run_state``, one
  rename on the same disk), removed when the run fails;
- the run's reports, ``<out>/.tmp-<run_id>-<pid>`` (``reports.staging_dir``), renamed into place
  when the run is published.
"""

from __future__ import annotations

import os
from pathlib import Path

from xueji_quality.reports.publish import STAGING_PREFIX, clean_stale_staging

ROSTER = "roster"


def roster_folder(out_root: Path) -> Path:
    """Where this process stages the roster; staging folders of dead runs are removed first."""
    clean_stale_staging(out_root)
    return Path(out_root) / f"{STAGING_PREFIX}{ROSTER}-{os.getpid()}"
