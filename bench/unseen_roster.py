"""The roster of bench/unseen.py: a Guangdong-style export made without the project's generator.

``make`` writes DIR/roster.csv with header spellings of another province's export (序号,
学生姓名, 身份证号码, 学校所在地, 户籍所在地 ...), GB/T 2260 codes read straight from python-stdnum's
``cn/loc.dat`` (东莞 441900 and 中山 442000 among the counties, with large shares as in the real
province), IDs computed here from their parts (the check character by
``xueji_quality.standards.resident_id``), and its truth: truth_errors.csv (record_id, field,
kind), truth_duplicates.csv (record_id_a, record_id_b, kind) and truth_hard_negatives.csv.
:data:`ERROR_KINDS` names each planted error kind's field and the rules that find it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from xueji_quality.standards import resident_id

AS_OF_SCHOOL_YEAR = 2026  # the run is meant for --as-of 2026-11-28
SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛"
    "郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = list(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国文斌宇浩凯晨轩梓涵子睿"
    "欣怡若汐一诺沐宸俊熙雨彤嘉豪思远佳琪晓峰志宏海燕雪梅冬梅春燕婷婷慧颖博文佩琳昊天皓轩逸"
    "泽楷锦程乐瑶语嫣梦琪诗涵铭泽宏伟家乐卓然"
)
# Pairs of characters read alike (the copy of a student typed with the other one).
HOMOPHONES = {"伟": "玮", "芳": "方", "静": "婧", "丽": "莉", "军": "君", "洋": "阳", "杰": "洁",
              "明": "铭", "华": "桦", "玉": "钰", "红": "虹", "辉": "晖", "浩": "昊", "凯": "恺",
              "晨": "辰", "宇": "羽", "涵": "晗", "欣": "昕", "怡": "仪", "琪": "琦", "峰": "锋"}
UYGHUR_GIVEN = ["阿依古丽", "古丽娜尔", "买买提", "艾力", "阿不都", "热依拉", "努尔", "迪丽拜尔"]
UYGHUR_FAMILY = ["买买提", "吐尔逊", "艾合买提", "阿布拉", "依明", "托乎提", "热合曼"]
DOT_LOOKALIKES = ["•", "・", ".", "·", "．"]
OTHER_PROVINCE_COUNTIES = ["430102", "430111", "450102", "450103", "360102", "360104", "511302"]
PLACEHOLDER_DATES = ["0000-00-00", "00000000", "1900-01-01", "1900/1/1"]

# Planted error kind -> (field, rules any of which counts as found).
ERROR_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "id_typo": ("id_number", ("ID_CHECKSUM",)),
    "id_province_unknown": ("id_number", ("ID_PROVINCE_UNKNOWN",)),
    "id_legacy_15": ("id_number", ("ID_FORMAT",)),
    "id_excel_float": ("id_number", ("ID_SPREADSHEET_DAMAGE",)),
    "id_missing": ("id_number", ("ID_MISSING",)),
    "birth_placeholder": ("birth_date", ("BIRTHDATE_INVALID", "BIRTHDATE_FORMAT")),
    "birth_mismatch": ("birth_date", ("BIRTHDATE_MISMATCH",)),
    "sex_mismatch": ("sex", ("SEX_MISMATCH",)),
    "name_chars": ("name", ("NAME_CHARS",)),
    "phone_bad": ("phone", ("PHONE_FORMAT",)),
    "ethnicity_bad": ("ethnicity", ("ETHNICITY_CODE",)),
    "county_bad": ("school_county", ("COUNTY_UNKNOWN",)),
    "age_grade": ("birth_date", ("AGE_GRADE",)),
}
ERROR_RATE = 0.002  # per kind


def county_codes(province: str = "44") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A province's county-level codes in force now, read from loc.dat, draw weights, and which
    of them were already in force in 2005 (an ID keeps the code of its year of issue, so the
    students' household codes are drawn from those)."""
    text = resources.files("stdnum").joinpath("cn/loc.dat").read_text(encoding="utf-8")
    codes, stable, in_44 = [], [], False
    for line in text.splitlines():
        if not line.startswith(" "):
            in_44 = line.startswith(province)
            continue
        if not in_44:
            continue
        suffix, rest = line.strip().split(" ", 1)
        latest = rest.split('"')[1].split(",")[-1]
        if latest.startswith("[") and not latest.split("]")[0].endswith("-"):
            continue  # no longer in force
        if suffix[2:] not in ("00", "01"):
            codes.append(province + suffix)
            since = latest.split("]")[0].lstrip("[").split("-")[0] if latest.startswith("[") else ""
            stable.append(not since or int(since) <= 2005)
    weights = np.ones(len(codes))
    if province == "44":
        codes += ["441900", "442000"]
        stable += [True, True]
        weights = np.ones(len(codes))
        weights[-2:] = len(codes) * 0.09  # 东莞 and 中山 hold about 8% of the province each
    return np.array(codes), weights / weights.sum(), np.array(stable)


def with_check(body17: np.ndarray) -> np.ndarray:
    return resident_id.with_check_digit_column(np.asarray(body17, dtype=str))


def days_to_ymd(days: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(days.astype("datetime64[D]"), unit="D")


def make(rows: int, out: Path, seed: int, police: bool = False, province: str = "44") -> None:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    counties, weights, stable = county_codes(province)
    n_base = int(rows / 1.008)  # duplicates, twins and namesakes add about 0.8%

    school_county = rng.choice(counties, n_base, p=weights)
    grade = rng.integers(1, 13, n_base)
    start = np.array(
        [np.datetime64(f"{AS_OF_SCHOOL_YEAR - g - 6}-09-01") for g in range(13)], dtype="datetime64[D]"
    )
    born = start[grade] + rng.integers(0, 365, n_base)
    older = rng.random(n_base) < 0.05  # repeaters and late starters, inside the one-year slack
    born[older] -= rng.integers(1, 300, older.sum())
    ymd = days_to_ymd(born)
    ymd8 = np.char.replace(ymd, "-", "")

    household = school_county.copy()
    old_codes = counties[stable]
    new_school = ~np.isin(school_county, old_codes)
    household[new_school] = rng.choice(old_codes, new_school.sum())
    migrant = rng.random(n_base) < 0.3
    household[migrant] = rng.choice(old_codes, migrant.sum())
    far = rng.random(n_base) < 0.05
    household[far] = rng.choice(OTHER_PROVINCE_COUNTIES, far.sum())

    male = rng.random(n_base) < 0.52
    seq = rng.integers(0, 500, n_base) * 2 + np.where(male, 1, 0)
    seq_text = np.char.zfill(seq.astype(str), 3)
    body = np.char.add(np.char.add(household, ymd8), seq_text)
    ids = with_check(body)
    # Distinct IDs: a collision of the random parts would be a duplicate nobody planted.
    _, first = np.unique(ids, return_index=True)
    keep = np.zeros(n_base, dtype=bool)
    keep[first] = True

    surname = rng.choice(SURNAMES, n_base)
    given = np.char.add(rng.choice(GIVEN, n_base), np.where(rng.random(n_base) < 0.7,
                                                             rng.choice(GIVEN, n_base), ""))
    name = np.char.add(surname, given).astype("U16")
    uyghur = rng.random(n_base) < 0.01
    name[uyghur] = np.char.add(
        np.char.add(rng.choice(UYGHUR_GIVEN, uyghur.sum()), "·"),
        rng.choice(UYGHUR_FAMILY, uyghur.sum()),
    )
    guardian = np.char.add(np.where(rng.random(n_base) < 0.85, surname, rng.choice(SURNAMES, n_base)),
                           np.char.add(rng.choice(GIVEN, n_base), rng.choice(GIVEN, n_base)))
    schools_per_county = 40
    school_no = rng.integers(0, schools_per_county, n_base)
    category = np.where(grade <= 6, "21", np.where(grade <= 9, "31", "34"))
    county_index = np.searchsorted(np.sort(counties), school_county)
    school_code = np.char.add(np.char.add(category, province),
                              np.char.zfill((county_index * 100 + school_no).astype(str), 6))
    school_name = np.char.add(np.char.add(school_county, "第"),
                              np.char.add(school_no.astype(str), "学校"))
    class_name = np.char.add(rng.integers(1, 9, n_base).astype(str), "班")
    grade_text = np.array(["", "一年级", "二年级", "三年级", "四年级", "五年级", "六年级", "初一",
                           "初二", "初三", "高一", "高二", "高三"])[grade]
    enroll_year = AS_OF_SCHOOL_YEAR - np.where(grade >= 10, grade - 10, np.where(grade >= 7, grade - 7, grade - 1))
    enroll = np.char.add(enroll_year.astype(str), "-09")
    phone = np.char.add(rng.choice(["13", "15", "17", "18", "19"], n_base),
                        np.char.zfill(rng.integers(0, 10**9, n_base).astype(str), 9))
    frame = pd.DataFrame({
        "name": name, "sex": np.where(male, "1", "2"), "born": ymd, "ethnicity": "01",
        "id_type": "1", "id_number": ids, "student_no": np.char.add("G", ids),
        "school_code": school_code, "school_name": school_name, "school_county": school_county,
        "grade": grade_text, "grade_level": grade, "class_name": class_name, "enroll": enroll,
        "household": household, "guardian": guardian, "phone": phone,
    })[keep].reset_index(drop=True)
    frame.loc[uyghur[keep], "ethnicity"] = "05"
    n = len(frame)

    # Document types other than the resident ID, each with its own structure.
    permit = rng.random(n) < 0.002
    permit_code = rng.choice(["810000", "820000", "830000"], permit.sum())
    frame.loc[permit, "id_number"] = with_check(np.char.add(permit_code, np.char.add(
        np.char.replace(frame.loc[permit, "born"].to_numpy().astype(str), "-", ""),
        np.char.zfill((rng.integers(0, 500, permit.sum()) * 2
                       + (frame.loc[permit, "sex"] == "1").to_numpy()).astype(str), 3))))
    frame.loc[permit, "id_type"] = np.where(permit_code == "810000", "6",
                                            np.where(permit_code == "820000", "7", "8"))
    frame.loc[permit, "student_no"] = "G" + frame.loc[permit, "id_number"]
    # A 2023 permanent residence card: 9, province, nationality, birth date, sequence, check.
    foreign = (rng.random(n) < 0.001) & ~permit
    frame.loc[foreign, "id_number"] = with_check(np.char.add(
        np.char.add("9" + province, rng.choice(["840", "410", "392", "704"], foreign.sum())),
        np.char.add(np.char.replace(frame.loc[foreign, "born"].to_numpy().astype(str), "-", ""),
                    np.char.zfill((rng.integers(0, 500, foreign.sum()) * 2
                                   + (frame.loc[foreign, "sex"] == "1").to_numpy()).astype(str), 3))))
    frame.loc[foreign, "id_type"] = "9"
    frame.loc[foreign, "student_no"] = "J" + frame.loc[foreign, "id_number"]

    record_id = np.char.zfill(np.arange(1, n + 1).astype(str), 8)
    frame.insert(0, "record_id", record_id)
    resident = (frame["id_type"] == "1").to_numpy()
    truth_errors: list[pd.DataFrame] = []
    taken = ~resident.copy()  # one planted error per record; other documents stay clean

    def pick(share: float) -> np.ndarray:
        free = np.flatnonzero(~taken)
        chosen = rng.choice(free, min(len(free), max(1, int(n * share))), replace=False)
        taken[chosen] = True
        return chosen

    def planted(rows: np.ndarray, kind: str) -> None:
        truth_errors.append(pd.DataFrame({"record_id": frame["record_id"].to_numpy()[rows],
                                          "field": ERROR_KINDS[kind][0], "kind": kind}))

    ids_now = frame["id_number"].to_numpy().astype(str)
    for kind in ERROR_KINDS:
        rows_k = pick(ERROR_RATE)
        col = frame.columns.get_loc
        if kind == "id_typo":
            chars = np.array([list(s) for s in ids_now[rows_k]])
            pos = rng.integers(0, 17, len(rows_k))
            old = chars[np.arange(len(rows_k)), pos].astype(int)
            chars[np.arange(len(rows_k)), pos] = ((old + rng.integers(1, 10, len(rows_k))) % 10).astype(str)
            frame.iloc[rows_k, col("id_number")] = ["".join(c) for c in chars]
        elif kind == "id_province_unknown":
            prefix = rng.choice(["99", "00", "20", "80", "96"], len(rows_k))
            frame.iloc[rows_k, col("id_number")] = with_check(
                np.char.add(prefix, np.array([s[2:17] for s in ids_now[rows_k]])))
        elif kind == "id_legacy_15":
            frame.iloc[rows_k, col("id_number")] = [s[:6] + s[8:17] for s in ids_now[rows_k]]
        elif kind == "id_excel_float":
            frame.iloc[rows_k, col("id_number")] = [f"{int(s[:17]) * 10:.5E}".replace("E+", "E+")
                                                    for s in ids_now[rows_k]]
        elif kind == "id_missing":
            frame.iloc[rows_k, col("id_number")] = ""
        elif kind == "birth_placeholder":
            frame.iloc[rows_k, col("born")] = rng.choice(PLACEHOLDER_DATES, len(rows_k))
        elif kind == "birth_mismatch":
            shifted = frame["born"].to_numpy()[rows_k].astype("datetime64[D]") + rng.integers(2, 40, len(rows_k))
            frame.iloc[rows_k, col("born")] = days_to_ymd(shifted)
        elif kind == "sex_mismatch":
            frame.iloc[rows_k, col("sex")] = np.where(frame["sex"].to_numpy()[rows_k] == "1", "2", "1")
        elif kind == "name_chars":
            frame.iloc[rows_k, col("name")] = np.char.add(
                frame["name"].to_numpy()[rows_k].astype(str), rng.choice(["2", "A", "?", "x"], len(rows_k)))
        elif kind == "phone_bad":
            frame.iloc[rows_k, col("phone")] = np.char.add("12", rng.integers(10**8, 10**9, len(rows_k)).astype(str))
        elif kind == "ethnicity_bad":
            frame.iloc[rows_k, col("ethnicity")] = rng.choice(["60", "99", "00", "汉人"], len(rows_k))
        elif kind == "county_bad":
            frame.iloc[rows_k, col("school_county")] = rng.choice([province + "9999", province + "0000", province + "9901"], len(rows_k))
        elif kind == "age_grade":
            # Born three years too early, consistently: the ID carries the same date.
            new_born = frame["born"].to_numpy()[rows_k].astype("datetime64[D]") - 365 * 3 - 10
            new_ymd = days_to_ymd(new_born)
            frame.iloc[rows_k, col("born")] = new_ymd
            fresh = with_check(np.array([s[:6] + d.replace("-", "") + s[14:17]
                                         for s, d in zip(ids_now[rows_k], new_ymd, strict=True)]))
            frame.iloc[rows_k, col("id_number")] = fresh
            frame.iloc[rows_k, col("student_no")] = np.char.add("G", fresh)
        planted(rows_k, kind)
    # 学籍号 of an altered ID keeps the original number (G + ID), as the national system holds it.

    # Normalisable values on clean records: not errors.
    normalisable = pick(0.01)
    half = len(normalisable) // 2
    han = normalisable[:half]
    names = frame["name"].to_numpy().astype(str)
    frame.iloc[han, frame.columns.get_loc("name")] = [
        s[0] + rng.choice([" ", "\u3000"]) + s[1:] if "·" not in s else s for s in names[han]]
    rest = normalisable[half:]
    frame.iloc[rest, frame.columns.get_loc("id_number")] = [
        s.translate(str.maketrans("0123456789X", "０１２３４５６７８９ｘ")) if i % 2 else s.lower()
        for i, s in enumerate(frame["id_number"].to_numpy()[rest].astype(str))]
    uy = np.flatnonzero(frame["name"].str.contains("·").to_numpy() & ~taken)
    frame.iloc[uy, frame.columns.get_loc("name")] = [
        s.replace("·", DOT_LOOKALIKES[i % len(DOT_LOOKALIKES)]) for i, s in enumerate(names[uy])]

    # Duplicates: a second registration of a clean student, with what changed.
    dup_rows: list[pd.DataFrame] = []
    truth_dups: list[pd.DataFrame] = []
    dup_kinds = ["same_id", "id_typo", "id_transposed", "missing_id", "homophone_missing_id",
                 "compound_age_reissued_id", "compound_region_unknown", "compound_id_date",
                 "compound_birth_invalid"]
    per_kind = max(2, int(n * 0.004 / len(dup_kinds)))
    for kind in dup_kinds:
        src = pick(per_kind / n)
        copy = frame.iloc[src].copy()
        other_school = rng.random(len(src)) < 0.6
        copy.loc[other_school, "school_code"] = copy.loc[other_school, "school_code"].str.slice(0, 8) + "99"
        copy.loc[other_school, "school_name"] = copy.loc[other_school, "school_name"] + "分校"
        ids_src = copy["id_number"].to_numpy().astype(str)
        if kind == "id_typo":
            copy["id_number"] = [s[:p] + str((int(s[p]) + 3) % 10) + s[p + 1:]
                                 for s, p in zip(ids_src, rng.integers(0, 17, len(src)), strict=True)]
        elif kind == "id_transposed":
            swapped = []
            for s, p in zip(ids_src, rng.integers(6, 16, len(src)), strict=True):
                q = p if s[p] != s[p + 1] else (p + 1 if p + 2 < 17 and s[p + 1] != s[p + 2] else p)
                swapped.append(s[:q] + s[q + 1] + s[q] + s[q + 2:])
            copy["id_number"] = swapped
        elif kind == "missing_id":
            copy["id_number"] = ""
            copy["student_no"] = ""
        elif kind == "homophone_missing_id":
            copy["id_number"] = ""
            copy["student_no"] = ""
            copy["name"] = [s[0] + "".join(HOMOPHONES.get(c, c) for c in s[1:]) for s in copy["name"]]
        elif kind == "compound_age_reissued_id":
            new_born = copy["born"].to_numpy().astype("datetime64[D]") - 365 * 3 - 20
            new_ymd = days_to_ymd(new_born)
            copy["born"] = new_ymd
            copy["id_number"] = with_check(np.array([s[:6] + d.replace("-", "") + s[14:17]
                                                     for s, d in zip(ids_src, new_ymd, strict=True)]))
            copy["student_no"] = "G" + copy["id_number"]
        elif kind == "compound_region_unknown":
            # xx98xx: no province has a prefecture 98, at any time.
            copy["id_number"] = with_check(np.array([province + "98" + s[4:17] for s in ids_src]))
            copy["student_no"] = "G" + copy["id_number"]
        elif kind == "compound_id_date":
            moved = copy["born"].to_numpy().astype("datetime64[D]") + rng.integers(40, 200, len(src))
            copy["id_number"] = with_check(np.array([s[:6] + d.replace("-", "") + s[14:17]
                                                     for s, d in zip(ids_src, days_to_ymd(moved), strict=True)]))
            copy["student_no"] = "G" + copy["id_number"]
        elif kind == "compound_birth_invalid":
            copy["born"] = rng.choice(PLACEHOLDER_DATES, len(src))
            seq = np.array([(int(s[14:17]) + 2 * int(rng.integers(20, 200))) % 1000 for s in ids_src])
            copy["id_number"] = with_check(np.array([s[:14] + f"{q:03d}" for s, q in zip(ids_src, seq, strict=True)]))
            copy["student_no"] = "G" + copy["id_number"]
        copy["record_id"] = [f"9{len(dup_rows):02d}{i:06d}" for i in range(len(src))]
        dup_rows.append(copy)
        truth_dups.append(pd.DataFrame({"record_id_a": frame["record_id"].to_numpy()[src],
                                        "record_id_b": copy["record_id"].to_numpy(), "kind": kind}))

    # Twins and namesakes: two students each, never to be linked.
    negatives: list[pd.DataFrame] = []
    twins_src = pick(0.002)
    twins = frame.iloc[twins_src].copy()
    twin_ids = twins["id_number"].to_numpy().astype(str)
    twin_seq = np.array([(int(s[14:17]) + 2) % 1000 for s in twin_ids])
    twins["id_number"] = with_check(np.array([s[:14] + f"{q:03d}" for s, q in zip(twin_ids, twin_seq, strict=True)]))
    twins["student_no"] = "G" + twins["id_number"]
    twins["name"] = [s[0] + ("".join(rng.choice(GIVEN, 2)) if s[1:] else "") for s in twins["name"]]
    twins["name"] = [t if t != s else t + "一" for t, s in zip(twins["name"], frame["name"].to_numpy()[twins_src], strict=True)]
    twins["record_id"] = [f"8{i:07d}" for i in range(len(twins))]
    namesakes_src = pick(0.002)
    ns = frame.iloc[namesakes_src].copy()
    ns_county = rng.choice(old_codes, len(ns))
    ns["school_county"] = ns_county
    ns["household"] = ns_county
    ns["school_code"] = ns["school_code"].str.slice(0, 8) + "98"
    ns["school_name"] = ns_county + "实验学校"
    ns["guardian"] = np.char.add(rng.choice(SURNAMES, len(ns)), rng.choice(GIVEN, len(ns)))
    ns_ids = ns["id_number"].to_numpy().astype(str)
    ns["id_number"] = with_check(np.array([c + s[6:14] + f"{(int(s[14:17]) + 300) % 1000:03d}"
                                           for c, s in zip(ns_county, ns_ids, strict=True)]))
    ns["student_no"] = "G" + ns["id_number"]
    ns["record_id"] = [f"7{i:07d}" for i in range(len(ns))]
    negatives.append(pd.DataFrame({"record_id_a": frame["record_id"].to_numpy()[twins_src],
                                   "record_id_b": twins["record_id"].to_numpy(), "kind": "twins"}))
    negatives.append(pd.DataFrame({"record_id_a": frame["record_id"].to_numpy()[namesakes_src],
                                   "record_id_b": ns["record_id"].to_numpy(), "kind": "namesakes"}))

    roster = pd.concat([frame, *dup_rows, twins, ns], ignore_index=True)
    # A re-made number can hit another student's by chance: that is a real repeated ID, which
    # nobody planted, so the later record goes (with its truth lines).
    same_id_copies = set(truth_dups[dup_kinds.index("same_id")]["record_id_b"])
    filled = roster["id_number"].str.len() == 18
    repeated = filled & roster["id_number"].duplicated(keep="first")
    accidental = repeated & ~roster["record_id"].isin(same_id_copies)
    dropped = set(roster.loc[accidental, "record_id"])
    roster = roster[~accidental].reset_index(drop=True)
    truth_dups = [t[~t["record_id_a"].isin(dropped) & ~t["record_id_b"].isin(dropped)]
                  for t in truth_dups]
    negatives = [t[~t["record_id_a"].isin(dropped) & ~t["record_id_b"].isin(dropped)]
                 for t in negatives]
    truth_errors = [t[~t["record_id"].isin(dropped)] for t in truth_errors]
    roster = roster.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    if police:
        clean = ~roster["record_id"].isin(
            set(pd.concat(truth_errors)["record_id"])
            | set(pd.concat(truth_dups)["record_id_b"])
            | set(twins["record_id"]) | set(ns["record_id"])
        )
        from unseen_police import make_registry

        make_registry(roster, clean.to_numpy(), rng, out)
    # Dates the way exports write them: ISO, slashes, eight digits.
    style = rng.integers(0, 3, len(roster))
    born_text = roster["born"].astype(str)
    iso = born_text.str.fullmatch(r"\d{4}-\d{2}-\d{2}")
    slashed = (born_text.str.slice(0, 4) + "/" + born_text.str.slice(5, 7).str.lstrip("0") + "/"
               + born_text.str.slice(8, 10).str.lstrip("0"))
    roster["born"] = np.where(iso & (style == 1), slashed,
                              np.where(iso & (style == 2), born_text.str.replace("-", ""), born_text))
    export = pd.DataFrame({
        "序号": roster["record_id"], "学生姓名": roster["name"], "性别": np.where(roster["sex"] == "1", "男", "女"),
        "出生年月日": roster["born"], "民族": roster["ethnicity"], "证件类型": roster["id_type"],
        "身份证号码": roster["id_number"], "全国学籍号": roster["student_no"],
        "学校代码": roster["school_code"], "学校名称": roster["school_name"],
        "学校所在地": roster["school_county"], "当前年级": roster["grade"], "班级名称": roster["class_name"],
        "入学日期": roster["enroll"], "户籍所在地": roster["household"], "监护人": roster["guardian"],
        "监护人联系电话": roster["phone"], "现住址": "广东省",
    })
    export.to_csv(out / "roster.csv", index=False, encoding="utf-8")
    errors = pd.concat(truth_errors, ignore_index=True)
    errors.to_csv(out / "truth_errors.csv", index=False)
    pd.concat(truth_dups, ignore_index=True).to_csv(out / "truth_duplicates.csv", index=False)
    pd.concat(negatives, ignore_index=True).to_csv(out / "truth_hard_negatives.csv", index=False)
    print(f"rows {len(export)} ({len(dropped)} dropped for an accidental repeated ID); "
          f"planted errors {len(errors)}; duplicate pairs "
          f"{sum(len(t) for t in truth_dups)}; twins {len(twins)}; namesakes {len(ns)}")
