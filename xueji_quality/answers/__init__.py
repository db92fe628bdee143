"""County answers: problem keys that survive re-exports, the answer ledger, importing returned
problem lists, and the statuses a run gives its items.

The flow calls, between link and report::

    result = answers.apply_ledger(out_root, run_id, run_date, problems, duplicates, roster,
                                  province=province)
    problems, duplicates = result.problems, result.duplicates   # 佐证'd groups/warnings dropped
    write_county_reports(..., statuses=result.statuses)         # 状态 column
    ... publish ...
    answers.record_run(result)                                  # the ledger learns the run

and ``xueji-quality import-answers FILE.xlsx... --out DIR`` calls :func:`import_answers`.
"""

from __future__ import annotations

from xueji_quality.answers.identity import group_keys, problem_keys, record_identity
from xueji_quality.answers.importer import (
    AnswerFileError,
    ImportReport,
    import_answers,
    import_file,
    read_answer_file,
)
from xueji_quality.answers.ledger import LEDGER_NAME, STATUSES, ledger_path
from xueji_quality.answers.recording import record_run
from xueji_quality.answers.status import (
    PROGRESS_COLUMNS,
    LedgerResult,
    apply_ledger,
)

__all__ = [
    "LEDGER_NAME",
    "PROGRESS_COLUMNS",
    "STATUSES",
    "AnswerFileError",
    "ImportReport",
    "LedgerResult",
    "apply_ledger",
    "group_keys",
    "import_answers",
    "import_file",
    "ledger_path",
    "problem_keys",
    "read_answer_file",
    "record_identity",
    "record_run",
]
