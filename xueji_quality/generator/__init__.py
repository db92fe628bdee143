"""Sample roster exports with ground truth, for tests, demonstrations and benchmarks.

``generate_roster`` builds a provincial roster export the way real ones look (Chinese headers,
text only, mixed date and code spellings, a 记录号 key) with planted duplicates, field errors,
harmless spelling variants and look-alike students who are not duplicates, and returns the truth
next to it. ``write_sample`` writes the roster in one of the export formats plus the truth files;
a roster of more than ``chunk_rows`` rows (default ``CHUNK_ROWS``) is built and written in pieces
(``generate_chunks``), so its memory is that of one piece.

Modules, by concern:

- ``build``: ``generate`` / ``generate_chunks`` and ``PLANTED``, the one table of planted kinds
  (pass, truth name, default share, function), in the order their rows are drawn;
- ``people``: counties (GB/T 2260 through ``standards.gb2260``), schools and classes, the people as numbers;
- ``duplicates``: second registrations and look-alike students (hard negatives);
- ``errors``: field errors and values that differ only in writing;
- ``piece``: the roster under construction and the pool planted rows are taken from;
- ``render``: the people as export text, export order, 记录号 and truth tables;
- ``output``: the roster and truth files in the export formats;
- ``numbers``, ``columns``, ``names``: ID numbers (check characters from ``standards.iso7064``),
  column helpers, name and code lists.
"""

from __future__ import annotations

import pandas as pd

from xueji_quality.generator.build import (
    CHUNK_ROWS,
    DEFAULT_RATES,
    DUPLICATE_KINDS,
    ERROR_KINDS,
    HARD_NEGATIVE_KINDS,
    NORMALISABLE_KINDS,
    SCHOOL_YEAR,
    GeneratedRoster,
    generate,
    generate_chunks,
)
from xueji_quality.generator.output import FORMATS, write_sample

__all__ = [
    "CHUNK_ROWS",
    "DEFAULT_RATES",
    "DUPLICATE_KINDS",
    "ERROR_KINDS",
    "FORMATS",
    "HARD_NEGATIVE_KINDS",
    "NORMALISABLE_KINDS",
    "SCHOOL_YEAR",
    "GeneratedRoster",
    "generate",
    "generate_chunks",
    "generate_roster",
    "write_sample",
]


def generate_roster(
    rows: int,
    seed: int,
    province: str,
    *,
    rates: dict[str, float] | None = None,
    counties: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(roster, truth_duplicates, truth_errors); ``generate`` returns the other truth tables too."""
    built = generate(rows, seed, province, rates=rates, counties=counties)
    return built.roster, built.truth_duplicates, built.truth_errors
