"""Several provinces' rosters with students registered in two provinces, and the truth of it.

``generate_national(out_dir, provinces, rows, seed)`` writes ``out_dir/<province>/roster.*``
(each with its own truth files, as ``write_sample`` writes them: the rows of each province's
roster up to its planted cross-province rows are exactly ``write_sample``'s with a seed derived
from (seed, province index)), and:

- ``truth_cross_province.csv``: pairs of registrations of one student in two provinces
  (province_a, record_id_a, province_b, record_id_b, kind), a being the earlier registration;
- ``truth_cross_negatives.csv``: pairs of two students across provinces that must never be
  linked, same columns.

No ID number or 学籍号 is given out twice across the provinces (one ``Issued`` register for all
of them), so every cross-province pair is planted. Planted rows are appended to the destination
province's roster; each copies a student of another province (a row that carries no planted
problem of its own) into a school of the destination (school code, name, county, class and
入学年月 of a random row there) and is changed where its kind says:

- duplicates: ``cross_same_id`` (as is), ``cross_id_typo`` (one digit of the sequence or check
  character changed, or two adjacent sequence digits swapped: the number fails its check; the
  学籍号 is G + the mistyped number), ``cross_missing_id`` (ID and 学籍号 blank),
  ``cross_homophone`` (a given-name character replaced by a homophone, 张伟/张玮, and an ID
  typo), ``cross_homophone_missing`` (a homophone and no ID);
- negatives: ``cross_twins`` (same surname, birth date, guardian and household, the next
  sequence number of the sex's parity, another given name), ``cross_namesakes`` (same name, sex
  and birth date, a valid ID of the destination's county), ``cross_namesakes_typo`` (the same
  with a typo in the destination's ID).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from xueji_quality import schema
from xueji_quality.generator import names as nm
from xueji_quality.generator.columns import ascii_text
from xueji_quality.generator.numbers import Issued, member
from xueji_quality.generator.output import TRUTH_TABLES, _csv_lines, write_sample
from xueji_quality.standards import iso7064, resident_id

CROSS_DUPLICATE_KINDS = (
    "cross_same_id",
    "cross_id_typo",
    "cross_missing_id",
    "cross_homophone",
    "cross_homophone_missing",
)
CROSS_NEGATIVE_KINDS = ("cross_twins", "cross_namesakes", "cross_namesakes_typo")
CROSS_RATES: dict[str, float] = dict.fromkeys(CROSS_DUPLICATE_KINDS, 0.001) | dict.fromkeys(
    CROSS_NEGATIVE_KINDS, 0.001
)
TRUTH_COLUMNS = ("province_a", "record_id_a", "province_b", "record_id_b", "kind")
FORMATS = ("csv", "csv-gb18030", "parquet")
_H = schema.FIELDS  # canonical field -> Chinese header
# Fields taken from the school the copy is registered in; the rest are the student's.
_HOST_FIELDS = ("school_code", "school_name", "school_county", "class_name", "enroll_date")
_HOMOPHONE_CHARS = "".join(nm.HOMOPHONES)


def _read_roster(path: Path, fmt: str, columns: list[str] | None = None) -> pa.Table:
    """The roster file as text columns (only ``columns`` when given)."""
    if fmt == "parquet":
        return pq.read_table(path, columns=columns)
    encoding = "gb18030" if fmt == "csv-gb18030" else "utf8"
    with open(path, encoding=encoding) as handle:
        header = handle.readline().rstrip("\r\n").split(",")
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(encoding=encoding),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            strings_can_be_null=False,
            include_columns=columns,
        ),
    )


def _append_rows(path: Path, fmt: str, rows: pd.DataFrame) -> None:
    """Append ``rows`` (the roster's columns, in its order) to the roster file ``path``."""
    extra = pa.Table.from_pandas(rows, preserve_index=False)
    extra = extra.cast(pa.schema([(c, pa.string()) for c in extra.column_names]))
    if fmt == "parquet":
        temporary = path.with_name(path.name + ".tmp")
        source = pq.ParquetFile(path)
        with pq.ParquetWriter(temporary, source.schema_arrow) as writer:
            for g in range(source.num_row_groups):  # a row group at a time
                writer.write_table(source.read_row_group(g))
            writer.write_table(extra.select(source.schema_arrow.names).cast(source.schema_arrow))
        temporary.replace(path)
        return
    with open(path, "ab") as handle:
        _csv_lines(extra, handle, "gb18030" if fmt == "csv-gb18030" else "utf-8")


def _excluded(folder: Path) -> set[str]:
    """Record ids that carry a planted problem of their own province (any truth table)."""
    ids: set[str] = set()
    for name in TRUTH_TABLES:
        truth = pd.read_csv(folder / f"{name}.csv", dtype=str)
        for column in ("record_id", "record_id_a", "record_id_b"):
            if column in truth.columns:
                ids.update(truth[column].dropna())
    return ids


_POOL_FIELDS = ("export_key", "name", "id_type", "id_number")


def _pool(table: pa.Table, excluded: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """Rows a student may be copied from (resident ID, valid number, plain name, no planted
    problem), and which of them have a given-name character with a homophone."""
    frame = table.to_pandas()
    digits, shaped = resident_id.digit_matrix(table[_H["id_number"]])
    valid = shaped & iso7064.check_ok_column(digits)
    names = frame[_H["name"]]
    plain = names.str.fullmatch(r"[\u4e00-\u9fff]{2,4}").to_numpy(dtype=bool)
    typed = frame[_H["id_type"]].isin(["1", "居民身份证"]).to_numpy()
    free = ~frame[_H["export_key"]].isin(excluded).to_numpy()
    rows = np.flatnonzero(valid & plain & typed & free)
    homophone = names.str[1:].str.contains(f"[{_HOMOPHONE_CHARS}]").to_numpy(dtype=bool)
    return rows, homophone[rows]


def _typos(rng: np.random.Generator, ids: np.ndarray, issued: Issued) -> np.ndarray:
    """One typo in each 18-character valid number (a sequence or check digit changed, or two
    adjacent sequence digits of one parity swapped): every result fails its check, keeps the
    sex digit's parity and is no number given out before."""
    out = np.array(ids, dtype=object)
    todo = np.arange(len(out))
    for _ in range(100):
        if not len(todo):
            return out
        digits, _ = resident_id.digit_matrix(pa.array(out[todo].tolist(), pa.string()))
        made = digits.copy()
        rows = np.arange(len(todo))
        # A swap of two adjacent sequence digits where one is possible, else a substitution.
        left = np.where(rng.random(len(todo)) < 0.5, 14, 15)
        swap = rng.random(len(todo)) < 0.4
        swap &= digits[rows, left] != digits[rows, left + 1]
        swap &= (left == 14) | (digits[rows, 15] % 2 == digits[rows, 16] % 2)
        made[rows[swap], left[swap]] = digits[rows[swap], left[swap] + 1]
        made[rows[swap], left[swap] + 1] = digits[rows[swap], left[swap]]
        sub = rows[~swap]
        pos = rng.choice([14, 15, 16, 17], size=len(sub))
        step = np.where(pos == 16, 2 * rng.integers(1, 5, len(sub)), rng.integers(1, 10, len(sub)))
        made[sub, pos] = (digits[sub, pos] + step) % 10
        value = resident_id.digits_to_values(made)
        fresh = ~iso7064.check_ok_column(made) & ~member(issued.get("invalid"), value)
        fresh &= ~pd.Series(value).duplicated().to_numpy()
        out[todo[fresh]] = _number_text(made[fresh])
        issued.add("invalid", value[fresh])
        todo = todo[~fresh]
    raise RuntimeError("could not make fresh mistyped numbers")


def _number_text(digits: np.ndarray) -> np.ndarray:
    """18-character numbers of digit rows (X = 10)."""
    chars = digits.astype(np.uint8) + np.uint8(48)
    chars[digits == 10] = ord("X")
    return ascii_text(chars).astype(object)


def _with_check(body: np.ndarray) -> np.ndarray:
    """18-character numbers of 17-digit bodies (int64)."""
    text = pd.Series(body).astype(str).str.zfill(17).to_numpy(dtype=object)
    return resident_id.with_check_digit_column(text).astype(object)


def _new_bodies(
    rng: np.random.Generator, address: np.ndarray, birth: np.ndarray, male: np.ndarray, issued
) -> np.ndarray:
    """17-digit bodies (address, YYYYMMDD, a free sequence of the sex's parity)."""
    base = address.astype(np.int64) * 10**11 + birth.astype(np.int64) * 1000
    body = base + 2 * rng.integers(0, 500, size=len(base)) + male
    # Only the numbers that clash are drawn again: at millions of rows some always do.
    for _ in range(100):
        clash = member(issued.get("body"), body) | pd.Series(body).duplicated().to_numpy()
        if not clash.any():
            issued.add("body", body)
            return body
        body[clash] = base[clash] + 2 * rng.integers(0, 500, size=int(clash.sum())) + male[clash]
    raise RuntimeError("could not find free ID numbers")


def _twin_bodies(rng, body: np.ndarray, male: np.ndarray, issued) -> tuple[np.ndarray, np.ndarray]:
    """A twin's body (the next free sequence, either sex) and sex (1 male) beside each body."""
    out_body, out_male = body.copy(), male.copy()
    todo = np.arange(len(body))
    for step in (1, 2, 3, 4, -1, -2, -3, -4):
        if not len(todo):
            break
        seq = body[todo] % 1000
        candidate = body[todo] + step
        ok = (seq + step >= 0) & (seq + step <= 999)
        ok &= ~member(issued.get("body"), candidate)
        out_body[todo[ok]] = candidate[ok]
        out_male[todo[ok]] = (seq[ok] + step) % 2
        issued.add("body", candidate[ok])
        todo = todo[~ok]
    if len(todo):
        raise RuntimeError("could not find free twin numbers")
    return out_body, out_male


def _homophones(rng: np.random.Generator, names: np.ndarray) -> np.ndarray:
    """Each name with one given-name character replaced by a homophone."""
    out = []
    for name in names:
        spots = [i for i, ch in enumerate(name) if i > 0 and ch in nm.HOMOPHONES]
        i = spots[int(rng.integers(0, len(spots)))]
        options = nm.HOMOPHONES[name[i]]
        out.append(name[:i] + options[int(rng.integers(0, len(options)))] + name[i + 1 :])
    return np.array(out, dtype=object)


def _other_given(rng: np.random.Generator, names: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Each name with its last character replaced by another character from ``pool``."""
    out = []
    for name in names:
        while True:
            ch = pool[int(rng.integers(0, len(pool)))]
            if ch != name[-1] and ch not in nm.HOMOPHONES.get(name[-1], ""):
                out.append(name[:-1] + ch)
                break
    return np.array(out, dtype=object)


def _counts(rows: int, rates: dict[str, float]) -> dict[str, int]:
    return {
        k: max(int(round(r * rows)), 1 if r > 0 and rows >= 1000 else 0) for k, r in rates.items()
    }


def _sex_male(sex: pd.Series) -> np.ndarray:
    return sex.map(schema.SEX_CODES).eq("1").to_numpy(dtype=np.int64)


def _plant(
    rng: np.random.Generator,
    kind: str,
    student: pd.DataFrame,
    host: pd.DataFrame,
    issued: Issued,
    pool: np.ndarray,
) -> pd.DataFrame:
    """The destination rows of one kind: ``student`` rows moved into ``host`` rows' schools."""
    rows = student.copy().reset_index(drop=True)
    for field in _HOST_FIELDS:
        rows[_H[field]] = host[_H[field]].to_numpy()
    ids = rows[_H["id_number"]].to_numpy(dtype=object)
    if kind in ("cross_homophone", "cross_homophone_missing"):
        rows[_H["name"]] = _homophones(rng, rows[_H["name"]].to_numpy(dtype=object))
    if kind in ("cross_id_typo", "cross_homophone"):
        typed = _typos(rng, ids, issued)
        rows[_H["id_number"]] = typed
        rows[_H["student_no"]] = "G" + pd.Series(typed, dtype=object)
    if kind in ("cross_missing_id", "cross_homophone_missing"):
        rows[_H["id_number"]] = ""
        rows[_H["student_no"]] = ""
    if kind == "cross_twins":
        body = pd.Series(ids).str[:17].astype(np.int64).to_numpy()
        twin, male = _twin_bodies(rng, body, _sex_male(rows[_H["sex"]]), issued)
        numbers = _with_check(twin)
        rows[_H["id_number"]] = numbers
        rows[_H["student_no"]] = "G" + pd.Series(numbers, dtype=object)
        rows[_H["sex"]] = np.where(male == 1, "1", "2")
        rows[_H["name"]] = _other_given(rng, rows[_H["name"]].to_numpy(dtype=object), pool)
    if kind in ("cross_namesakes", "cross_namesakes_typo"):
        # The address code of a student of the destination (a real county there).
        address = host[_H["id_number"]].str[:6].astype(np.int64).to_numpy()
        birth = pd.Series(ids).str[6:14].astype(np.int64).to_numpy()
        numbers = _with_check(_new_bodies(rng, address, birth, _sex_male(rows[_H["sex"]]), issued))
        if kind == "cross_namesakes_typo":
            numbers = _typos(rng, numbers, issued)
        rows[_H["id_number"]] = numbers
        rows[_H["student_no"]] = "G" + pd.Series(numbers, dtype=object)
        rows[_H["guardian_name"]] = host[_H["guardian_name"]].to_numpy()
        rows[_H["household_region"]] = host[_H["household_region"]].to_numpy()
        rows[_H["phone"]] = host[_H["phone"]].to_numpy()
    return rows


def generate_national(
    out_dir: Path | str,
    provinces: list[str],
    rows: int,
    seed: int,
    *,
    fmt: str = "csv",
    rates: dict[str, float] | None = None,
    cross_rates: dict[str, float] | None = None,
    counties: int | None = None,
) -> dict:
    """Write one roster per province (``rows`` rows each before the planted cross-province rows)
    and the cross-province truth; return paths and counts."""
    if fmt not in FORMATS:
        raise ValueError(f"全国样例只支持 {', '.join(FORMATS)}，不支持 {fmt!r}")
    unknown = set(cross_rates or {}) - set(CROSS_RATES)
    if unknown:
        raise ValueError(f"未知的跨省比例键: {sorted(unknown)}")
    provinces = [str(p).zfill(2) for p in provinces]
    if len(set(provinces)) != len(provinces) or len(provinces) < 2:
        raise ValueError("至少需要两个不同的省份")
    cross = CROSS_RATES | dict(cross_rates or {})
    out_dir = Path(out_dir)
    issued = Issued()
    written = {}
    for index, province in enumerate(provinces):
        province_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
        written[province] = write_sample(
            out_dir / province, rows, province_seed, province, fmt, rates, counties, issued=issued
        )
    rng = np.random.default_rng([seed, len(provinces), 17])
    # What planting needs of each roster: its pool of students, then only the chosen rows
    # (a province of millions is never held whole; one is read at a time).
    pools, homophone, sizes, width = {}, {}, {}, {}
    for province in provinces:
        table = _read_roster(Path(written[province]["roster"]), fmt, [_H[f] for f in _POOL_FIELDS])
        pools[province], homophone[province] = _pool(table, _excluded(out_dir / province))
        sizes[province] = table.num_rows
        width[province] = len(table[_H["export_key"]][0].as_py()) - 1
        del table
    used = {p: np.zeros(len(pools[p]), dtype=bool) for p in provinces}
    plans = []  # (destination, kind, source, student rows in source, host rows in destination)
    for destination in provinces:
        others = [p for p in provinces if p != destination]
        for kind, count in _counts(rows, cross).items():
            if count == 0:
                continue
            sources = np.array(others)[rng.integers(0, len(others), size=count)]
            for source in others:
                n = int((sources == source).sum())
                free = ~used[source]
                if kind.startswith("cross_homophone"):
                    free &= homophone[source]
                free = np.flatnonzero(free)
                if n == 0 or len(free) < n:
                    continue
                chosen = rng.choice(free, size=n, replace=False)
                used[source][chosen] = True
                hosts = rng.choice(len(pools[destination]), size=n, replace=True)
                plans.append(
                    (destination, kind, source, pools[source][chosen], pools[destination][hosts])
                )
    wanted = {p: set() for p in provinces}
    for destination, _, source, students, hosts in plans:
        wanted[source].update(students.tolist())
        wanted[destination].update(hosts.tolist())
    picked = {}
    for province in provinces:
        table = _read_roster(Path(written[province]["roster"]), fmt)
        at = np.array(sorted(wanted[province]), dtype=np.int64)
        picked[province] = table.take(pa.array(at)).to_pandas().set_axis(at)
        del table
    given_pool = np.array(sorted(set("".join(nm.BOY_CHARS + nm.GIRL_CHARS))), dtype=object)
    truth: dict[str, list[pd.DataFrame]] = {"duplicates": [], "negatives": []}
    planted: dict[str, list[pd.DataFrame]] = {p: [] for p in provinces}
    next_key = {p: sizes[p] + 1 for p in provinces}
    for destination, kind, source, students, hosts in plans:
        n = len(students)
        made = _plant(
            rng,
            kind,
            picked[source].loc[students],
            picked[destination].loc[hosts].reset_index(drop=True),
            issued,
            given_pool,
        )
        first = next_key[destination]
        keys = [f"R{k:0{width[destination]}d}" for k in range(first, first + n)]
        next_key[destination] += n
        made[_H["export_key"]] = keys
        planted[destination].append(made)
        pairs = pd.DataFrame(
            {
                "province_a": source,
                "record_id_a": picked[source].loc[students, _H["export_key"]].to_numpy(),
                "province_b": destination,
                "record_id_b": keys,
                "kind": kind,
            }
        )
        truth["negatives" if kind in CROSS_NEGATIVE_KINDS else "duplicates"].append(pairs)
    for province in provinces:
        if planted[province]:
            rows_added = pd.concat(planted[province], ignore_index=True)
            rows_added = rows_added[list(picked[province].columns)]
            _append_rows(Path(written[province]["roster"]), fmt, rows_added)
    paths = {}
    for name, parts in (
        ("truth_cross_province", truth["duplicates"]),
        ("truth_cross_negatives", truth["negatives"]),
    ):
        frame = (
            pd.concat(parts, ignore_index=True)
            if parts
            else pd.DataFrame(columns=list(TRUTH_COLUMNS))
        )
        paths[name] = out_dir / f"{name}.csv"
        frame.reindex(columns=list(TRUTH_COLUMNS)).to_csv(
            paths[name], index=False, encoding="utf-8"
        )
    counts = {p: sizes[p] + sum(len(x) for x in planted[p]) for p in provinces}
    duplicates = pd.read_csv(paths["truth_cross_province"], dtype=str)
    negatives = pd.read_csv(paths["truth_cross_negatives"], dtype=str)
    return {
        "rosters": {p: written[p]["roster"] for p in provinces},
        "rows": counts,
        "truth_cross_province": str(paths["truth_cross_province"]),
        "truth_cross_negatives": str(paths["truth_cross_negatives"]),
        "cross_pairs": duplicates["kind"].value_counts().sort_index().to_dict(),
        "cross_negatives": negatives["kind"].value_counts().sort_index().to_dict(),
    }
