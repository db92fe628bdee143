"""What a run narrowed to some counties or schools reports, and the sizes of its counties.

A run validates and links the whole staged roster, so a duplicate whose other half lies outside
the filter is still found. The filters ``counties`` and ``schools`` (学校标识码) then narrow what
is reported:

- the problems of the selected records;
- every duplicate group touching a selected record, whole (its members outside the filter
  included, so a county sees who its student is duplicated with);
- the roster rows those problems and groups name;
- the county sizes: the selected records plus the other members of their groups, by county;
- the county lists written: those of the counties asked for, or, when only schools were given,
  of the counties those schools lie in.

An unnarrowed run reports everything, with the staged records per county as sizes and a list for
every staged county.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality.staging import StagedStore
from xueji_quality.text_sets import is_in


@dataclass(frozen=True)
class RunScope:
    """The tables a run reports, narrowed to its filters.

    ``records``: records per county code (the county sizes the lists and the summary show);
    ``counties``: the counties that get a list, sorted; ``selected``: record_id and county_code
    of the records the filters selected, None for an unnarrowed run.
    """

    roster: pd.DataFrame
    problems: pd.DataFrame
    duplicates: pd.DataFrame
    records: pd.Series
    counties: list[str]
    selected: pd.DataFrame | None

    @property
    def county_records(self) -> dict[str, int]:
        """``records`` as a plain mapping county code → records."""
        return {str(k): int(v) for k, v in self.records.items()}

    @property
    def rows_in_scope(self) -> int:
        """Records the county lists must cover together (row conservation)."""
        sizes = self.county_records
        return sum(sizes.get(c, 0) for c in self.counties)


def selected_records(
    store: StagedStore, counties: list[str] | None, schools: list[str] | None
) -> pd.DataFrame:
    """record_id and county_code of the staged records the filters select.

    Only the county files asked for are read, and of them only the rows of the schools asked for.
    """
    parts = [p for p in store.parts if not counties or p.county_code in counties]
    rule = pc.field("school_code").isin(pa.array(schools, pa.string())) if schools else None
    return store.read(["record_id", "county_code"], parts=parts, filter=rule)


def groups_touching(duplicates: pd.DataFrame, record_ids: pd.Series | None) -> pd.DataFrame:
    """Every row of the duplicate groups with at least one member in ``record_ids`` (all groups
    when ``record_ids`` is None)."""
    if record_ids is None:
        return duplicates
    touched = duplicates.loc[is_in(duplicates["record_id"], record_ids), "group_id"].unique()
    return duplicates[is_in(duplicates["group_id"], touched)].reset_index(drop=True)


def of_counties(
    problems: pd.DataFrame, duplicates: pd.DataFrame, counties: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The problems of ``counties``' records and every row of the duplicate groups touching them:
    all a run for those counties lists, answers and records in the ledger (another county's items
    keep what its last run said of them)."""
    wanted = sorted(set(counties))
    own = problems[problems["county_code"].isin(wanted).fillna(False)].reset_index(drop=True)
    touched = duplicates.loc[duplicates["county_code"].isin(wanted).fillna(False), "group_id"]
    groups = duplicates[duplicates["group_id"].isin(touched.unique())].reset_index(drop=True)
    return own, groups


def scope_tables(
    roster: pd.DataFrame,
    problems: pd.DataFrame,
    duplicates: pd.DataFrame,
    *,
    staged_records: pd.Series,
    selected: pd.DataFrame | None = None,
    counties: list[str] | None = None,
) -> RunScope:
    """Narrow a run's tables to the records ``selected`` (see the module docstring).

    ``roster``: the staged rows the problems and groups name; ``staged_records``: staged records
    per county code; ``selected``: what :func:`selected_records` returned, None when the run was
    not narrowed; ``counties``: the counties asked for, if any.
    """
    if selected is None:
        return RunScope(
            roster=roster,
            problems=problems,
            duplicates=duplicates,
            records=staged_records,
            counties=sorted(str(c) for c in staged_records.index),
            selected=None,
        )
    scope = selected["record_id"]
    problems = problems[is_in(problems["record_id"], scope)].reset_index(drop=True)
    duplicates = groups_touching(duplicates, scope)
    keep = is_in(roster["record_id"], scope) | is_in(roster["record_id"], duplicates["record_id"])
    roster = roster[keep].reset_index(drop=True)
    members = duplicates.loc[~is_in(duplicates["record_id"], scope)]
    members = members.drop_duplicates("record_id")["county_code"]
    # An empty side would make pandas guess the result's dtype (and warn about it).
    sides = [side for side in (selected["county_code"], members) if len(side)]
    records = (pd.concat(sides) if sides else selected["county_code"]).dropna().value_counts()
    if counties:
        listed = sorted(set(counties))
    else:
        listed = sorted(set(selected["county_code"].dropna()))
    return RunScope(
        roster=roster,
        problems=problems,
        duplicates=duplicates,
        records=records,
        counties=listed,
        selected=selected,
    )


def statuses_of_items(
    statuses: pd.DataFrame | None, problems: pd.DataFrame, duplicates: pd.DataFrame
) -> pd.DataFrame | None:
    """The answer statuses (by ``problem_key``) of the problems and duplicate rows given."""
    if statuses is None:
        return None
    keys = pd.concat([problems["problem_key"], duplicates["problem_key"]])
    return statuses[statuses["problem_key"].isin(keys)]
