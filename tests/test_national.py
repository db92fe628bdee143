"""The national cross-province duplicate check: tokens, exchange files, the Dask linkage, the
returns as problem rows, on hand-made provinces, on generated ones, and on a real cluster of
separate scheduler and worker processes."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xueji_quality.errors import InputError
from xueji_quality.generator.national import generate_national
from xueji_quality.national import (
    evaluate,
    exchange,
    households,
    link,
    link_pairs,
    readings,
    returns,
    settings,
    tokens,
)
from xueji_quality.standards import resident_id

KEY_TEXT = "national-test-key-5f0c1d2e3b4a69788796a5b4c3d2e1f0"
KEY = tokens.key_from_bytes(KEY_TEXT.encode())
HEADER = (
    "记录号,姓名,性别,出生日期,身份证件类型,身份证件号,学籍号,学校标识码,学校名称,所在区县,"
    "年级,入学年月,监护人姓名,户口所在地"
)
ID_SHAPE = re.compile(rb"\d{17}[\dX]")


def found_in(blob: bytes, values: set[bytes]) -> set[bytes]:
    """The values (6 bytes or longer) that occur anywhere in ``blob``: the last 6 or 8 bytes of
    each value are looked up among all windows of the blob at once, then the few candidates are
    searched for whole."""
    data = np.frombuffer(blob, dtype=np.uint8).astype(np.uint64)
    candidates = []
    for width in (6, 8):
        chosen = [v for v in values if min(len(v), 8) == width]
        if not chosen or len(data) < width:
            continue
        windows = np.zeros(len(data) - width + 1, dtype=np.uint64)
        for k in range(width):
            windows |= data[k : len(data) - width + 1 + k] << np.uint64(8 * k)
        tails = np.array([int.from_bytes(v[-width:], "little") for v in chosen], dtype=np.uint64)
        candidates += [v for v, hit in zip(chosen, np.isin(tails, windows), strict=True) if hit]
    return {v for v in candidates if v in blob}


def valid_id(body: str) -> str:
    return str(resident_id.with_check_digit_column([body])[0])


def typo(number: str, position: int) -> str:
    """``number`` with the digit at ``position`` changed (fails its check)."""
    digit = str((int(number[position]) + 3) % 10)
    return number[:position] + digit + number[position + 1 :]


@pytest.fixture(scope="module")
def dask_client():
    from distributed import Client, LocalCluster

    logging.getLogger("distributed.shuffle._scheduler_plugin").setLevel(logging.ERROR)
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            memory_limit="2GB",
            dashboard_address=None,
            processes=True,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


# --- tokens --------------------------------------------------------------------------------------


def test_tokens_are_hmac_sha256_cut_to_128_bits():
    for material in (KEY_TEXT.encode(), b"k" * 100):  # a key longer than a block is hashed
        key = tokens.key_from_bytes(material)
        message = "id\x1f11010519491231002X"
        expected = hmac.new(material, message.encode(), hashlib.sha256).digest()[:16]
        assert tokens.hmac_one(key, message) == expected
    made = tokens.hmac_tokens(KEY, pa.array(["a", None, "a", "b"]))
    assert made[0] == made[2] and made[0] != made[3] and not made[1].is_valid


def test_the_key_is_never_printed_pickled_or_shown_by_its_fingerprint(tmp_path):
    assert KEY_TEXT not in repr(KEY) and KEY_TEXT not in str(KEY)
    with pytest.raises(TypeError):
        pickle.dumps(KEY)
    inner = hashlib.sha256(KEY_TEXT.encode()).digest()
    assert KEY.fingerprint == hashlib.sha256(inner).hexdigest()[:16]
    assert KEY.fingerprint not in (inner.hex(), hashlib.sha256(KEY_TEXT.encode()).hexdigest())
    path = tmp_path / "national.key"
    path.write_text(KEY_TEXT + "\n", encoding="ascii")
    assert tokens.load_key(path).fingerprint == KEY.fingerprint
    assert tokens.load_key(environ={tokens.KEY_ENV: KEY_TEXT}).fingerprint == KEY.fingerprint
    with pytest.raises(InputError, match="XUEJI_NATIONAL_KEY"):
        tokens.load_key(environ={})
    path.write_text("short", encoding="ascii")
    with pytest.raises(InputError, match="太短"):
        tokens.load_key(path)


def frame(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns).astype("string")


def test_a_typo_meets_its_true_number_through_its_neighbours():
    true_id = "11010519491231002X"
    swapped = true_id[:15] + true_id[16] + true_id[15] + true_id[17:]
    made = tokens.record_tokens(
        frame(
            id_number=[true_id, typo(true_id, 9), swapped, "4.40103E+17"],
            name=["甲乙"] * 4,
            sex=["1"] * 4,
            birth_date=["1949-12-31"] * 4,
        ),
        KEY,
    )
    states = [tokens.ID_VALID, tokens.ID_INVALID, tokens.ID_INVALID, tokens.ID_NONE]
    assert made["id_state"].to_pylist() == states
    true_token = made["id_token"][0].as_py()
    for row in (1, 2):
        near = made["near_tokens"][row].as_py()
        assert true_token in near and 10 <= len(near) <= 35
        assert made["id_token"][row].as_py() not in near
    assert made["near_tokens"][0].as_py() == [] and made["id_token"][3].as_py() is None


def test_readings_cover_surname_heteronyms_and_homophones():
    name_of, combos = readings.reading_combinations(pa.array(["曾伟", "单丽", "和和和和和和"]))
    texts = combos.to_pylist()
    assert {"zeng wei", "ceng wei"} <= set(texts) and {"shan li", "dan li"} <= set(texts)
    assert 1 < (name_of == 2).sum() <= readings.MAX_READINGS
    made = tokens.record_tokens(
        frame(name=["曾伟", "增玮", "张伟"], sex=["1"] * 3, birth_date=["2012-01-20"] * 3), KEY
    )
    zeng, zeng_homophone, zhang = (set(made["reading_tokens"][i].as_py()) for i in range(3))
    assert zeng & zeng_homophone and not zeng & zhang
    assert made["name_tokens"][0].as_py() != made["name_tokens"][1].as_py()


def test_sex_and_birth_date_come_from_the_id_when_the_fields_lack_them():
    number = valid_id("44010320150302123")
    made = tokens.record_tokens(
        frame(
            id_number=[number, number, None],
            name=["王小明"] * 3,
            sex=["1" if int(number[16]) % 2 else "2", None, None],
            birth_date=["2015-03-02", "", "2015-03-02"],
        ),
        KEY,
    )
    assert made["name_tokens"][0].as_py() == made["name_tokens"][1].as_py()
    # No ID and no sex: both sexes are tokenised.
    assert len(made["name_tokens"][2].as_py()) == 2
    assert made["name_tokens"][0].as_py()[0] in made["name_tokens"][2].as_py()


def test_the_household_province_and_county_are_read_from_codes_names_or_the_id():
    written = pa.array(
        [
            None,
            "431224",
            "溆浦县",
            "湖南省长沙市岳麓区",
            "朝阳区",
            "990000",
            "抚州市黎川县",
            "440100",
        ]
    )
    id_address = np.array([431224] + [-1] * 7)
    # 朝阳区 is in Beijing and in Changchun: neither; 99 is no province; 440100 no county.
    assert households.household_provinces(written, id_address).to_pylist() == [
        "43", "43", "43", "43", "", "", "36", "44",
    ]  # fmt: skip
    assert households.household_counties(written, id_address).to_pylist() == [
        "431224", "431224", "431224", "430104", "", "", "361022", "",
    ]  # fmt: skip
    # A name that two codes carried one after the other stands for the latest (黎川县 362523
    # until 2000, then 361022).
    assert households.household_counties(pa.array(["黎川县"]), np.array([-1])).to_pylist() == [
        "361022"
    ]


def test_a_missing_id_needs_the_county_unless_name_and_family_are_rare():
    bits = link_pairs.BIT_READING | link_pairs.BIT_FAMILY
    county = bits | link_pairs.BIT_FAMILY_COUNTY
    pairs = pd.DataFrame(
        {
            "a": np.arange(6, dtype=np.int64),
            "b": np.arange(6, dtype=np.int64) + 100,
            "bits": np.array([bits, bits, bits, county, link_pairs.BIT_FAMILY, county], np.uint8),
            "state_a": np.array([tokens.ID_NONE] * 5 + [tokens.ID_VALID], np.int8),
            "state_b": np.full(6, tokens.ID_VALID, np.int8),
            # Records nationally holding the name (or reading) and the family token they met on.
            "name_run": np.array([2, 3, 2, 40, link_pairs.NOT_MET, 2], np.uint32),
            "family_run": np.array([2, 2, 3, 3, 2, 2], np.uint32),
        }
    )
    decided = link_pairs.decide(pairs, link_pairs.MissingIdRule())
    # Rare name and family; the county; a family met where the name run was capped (no run).
    assert decided["a"].tolist() == [0, 3]
    loose = link_pairs.MissingIdRule(name_run_at_most=3, family_run_at_most=3)
    assert link_pairs.decide(pairs, loose)["a"].tolist() == [0, 1, 2, 3]


def test_the_national_config_is_what_the_settings_default_to(tmp_path):
    assert settings.load_settings() == link.LinkSettings()
    path = tmp_path / "national.json"
    path.write_text(json.dumps({"missing_id": {"name_run_at_most": -1}}), encoding="utf-8")
    with pytest.raises(InputError, match="name_run_at_most"):
        settings.load_settings(path)
    path.write_text(json.dumps({"token_rows": 5}), encoding="utf-8")
    with pytest.raises(InputError, match="未知的键 token_rows"):
        settings.load_settings(path)


# --- hand-made provinces ---------------------------------------------------------------------


def hand_made_rosters(folder: Path) -> dict[str, Path]:
    """Two small provinces typed by hand: six pairs of one student, five of two students (A4/B4
    namesakes with two valid IDs; A5/B5, A8/B8 and A10/B10 namesakes where one has no ID, A5's
    guardian differing, A8's household in another province, A10's in another county of the
    same province with a name a third record (B11) holds too; A6/B6 twins). A12/B12: no ID on
    one side, households known to the province only, a name only they hold."""
    a1 = valid_id("44010320150302123")
    a2 = valid_id("44010620140715002")
    a4 = valid_id("44010320160505004")
    b4 = valid_id("45010320160505008")
    a5 = valid_id("45010320130909011")
    twin = valid_id("44010320170202011")
    twin2 = valid_id("44010320170202012")
    a7 = valid_id("45010320151010026")
    a9 = valid_id("44010320110808017")
    b8 = valid_id("45010320140404002")
    b10 = valid_id("44010420120505031")
    b11 = valid_id("45010320120505051")
    b12 = valid_id("43010220130303022")
    rows = {
        "44": [
            f"A1,王小明,男,2015-03-02,1,{a1},G{a1},2144010001,荔湾区第一小学,440103,五年级,2021-09,王大明,440103",
            f"A2,李静,2,2014-07-15,1,{a2},G{a2},2144010002,越秀区第二小学,440104,六年级,2020-09,李强,440106",
            "A3,张伟,1,2012-01-20,1,,,3144010003,荔湾区第三中学,440103,初三,2019-09,张建国,450102",
            f"A4,陈晨,2,2016-05-05,1,{a4},G{a4},2144010001,荔湾区第一小学,440103,四年级,2022-09,陈刚,440103",
            "A5,刘洋,1,2013-09-09,1,,,2144010001,荔湾区第一小学,440103,六年级,2019-09,刘一,440103",
            f"A6,黄子轩,1,2017-02-02,1,{twin},G{twin},2144010001,荔湾区第一小学,440103,三年级,2023-09,黄海,440103",
            f"A7,单丽,女,2015-10-10,1,{typo(a7, 12)},,2144010002,越秀区第二小学,440104,五年级,2024-03,单强,450103",
            f"A9,周杰,1,2011-08-08,1,,G{a9},3144010003,荔湾区第三中学,440103,初二,2023-09,周华,湖南省长沙市",
            "A8,孙悦,2,2014-04-04,1,,,2144010001,荔湾区第一小学,440103,六年级,2020-09,孙涛,430102",
            "A10,王伟,1,2012-05-05,1,,,3144010003,荔湾区第三中学,440103,初二,2023-09,王明,440103",
            "A12,钱多多,2,2013-03-03,1,,,2144010001,荔湾区第一小学,440103,五年级,2022-09,钱一,湖南省",
        ],
        "45": [
            f"B1,王小明,1,2015-03-02,1,{a1},G{a1},2145010001,青秀区第一小学,450103,五年级,2023-09,王大明,440103",
            f"B2,李静,女,2014-07-15,1,{typo(a2, 15)},,2145010002,兴宁区第二小学,450102,六年级,2023-03,李强,440106",
            f"B3,张玮,1,2012-01-20,1,{valid_id('45010220120120013')},,3145010003,兴宁区第三中学,450102,初二,2019-09,张建国,450102",
            f"B4,陈晨,2,2016-05-05,1,{b4},G{b4},2145010001,青秀区第一小学,450103,四年级,2022-09,陈刚,450103",
            f"B5,刘洋,1,2013-09-09,1,{a5},G{a5},2145010001,青秀区第一小学,450103,六年级,2019-09,赵二,450103",
            f"B6,黄子涵,2,2017-02-02,1,{twin2},G{twin2},2145010001,青秀区第一小学,450103,三年级,2023-09,黄海,440103",
            f"B7,善丽,2,2015-10-10,1,{a7},G{a7},2145010002,兴宁区第二小学,450102,五年级,2021-09,单强,",
            f"B9,周杰,1,2011-08-08,1,{a9},G{a9},3145010003,兴宁区第三中学,450102,初二,2022-09,周华,430104",
            f"B8,孙悦,2,2014-04-04,1,{b8},G{b8},2145010001,青秀区第一小学,450103,六年级,2020-09,孙涛,450103",
            f"B10,王伟,1,2012-05-05,1,{b10},G{b10},3145010003,兴宁区第三中学,450102,初二,2023-09,王明,440104",
            f"B11,王伟,1,2012-05-05,1,{b11},G{b11},3145010003,兴宁区第三中学,450102,初二,2023-09,王刚,450103",
            f"B12,钱多多,2,2013-03-03,1,{b12},G{b12},2145010001,青秀区第一小学,450103,五年级,2022-09,钱一,",
        ],
    }
    paths = {}
    for province, lines in rows.items():
        paths[province] = folder / f"{province}.csv"
        paths[province].write_text(HEADER + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return paths


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory, dask_client) -> dict:
    folder = tmp_path_factory.mktemp("hand")
    rosters = hand_made_rosters(folder)
    files = []
    for province, path in rosters.items():
        exchange.export_roster([path], province, KEY, folder / f"exchange-{province}.parquet")
        files.append(folder / f"exchange-{province}.parquet")
    summary = link.national_link(files, folder / "national", dask_client)
    found = {p: pd.read_parquet(folder / "national" / "returns" / f"{p}.parquet") for p in rosters}
    return {"folder": folder, "files": files, "summary": summary, "returns": found}


def test_hand_made_provinces_give_the_planted_pairs_and_only_them(hand_made):
    found = hand_made["returns"]["44"].set_index("record_key")
    assert set(found.index) == {"A1", "A2", "A3", "A7", "A9", "A12"}
    assert found["other_record_key"].to_dict() == {
        "A1": "B1",
        "A2": "B2",
        "A3": "B3",
        "A7": "B7",
        "A9": "B9",
        "A12": "B12",
    }
    assert found["match_class"].to_dict() == {
        "A1": "id",
        "A2": "name",
        "A3": "name",
        "A7": "name",
        "A9": "id",
        "A12": "name",
    }
    assert found.loc["A2", "match_keys"] == "id_near+name+reading+family+family_county"
    assert found.loc["A7", "match_keys"] == "id_near+reading"  # 单 also reads shan: 善
    # 张伟/张玮, no ID on one side, one household county.
    assert found.loc["A3", "match_keys"] == "reading+family+family_county"
    # Households known only to the province (湖南省; 430102 from B12's ID): a name only the
    # two hold is enough. A10/B10 (王伟, guardian 王明, households in two counties of 44) are
    # not linked: B11 holds the name and birthday too.
    assert found.loc["A12", "match_keys"] == "name+reading+family"
    # 学生在哪学籍在哪: the later enrolment, else the graduating grade (初三 before 初二).
    assert found["suggested_keeper"].to_dict() == {
        "A1": "45",
        "A2": "45",
        "A3": "44",
        "A7": "44",
        "A9": "44",
        "A12": "",
    }
    assert found.loc["A1", "other_county_code"] == "450103"
    assert found.loc["A1", "other_school_code"] == "2145010001"
    other = hand_made["returns"]["45"].set_index("record_key")
    assert other["other_record_key"].to_dict() == {
        "B1": "A1",
        "B2": "A2",
        "B3": "A3",
        "B7": "A7",
        "B9": "A9",
        "B12": "A12",
    }
    assert list(hand_made["returns"]["44"].columns) == list(link.RETURN_COLUMNS)
    summary = hand_made["summary"]
    assert summary["duplicate_pairs"] == 6
    assert summary["pairs_by_class"] == {"id": 2, "name": 4}
    assert set(summary["workers"]) and all(
        w["rss_peak"] >= w["rss_start"] > 0 for w in summary["workers"].values()
    )


def test_without_the_guardian_a_missing_id_links_a_namesake(hand_made, dask_client, tmp_path):
    literal = link.LinkSettings(missing_id=link.MissingIdRule(needs_guardian=False))
    link.national_link(hand_made["files"], tmp_path, dask_client, literal)
    found = pd.read_parquet(tmp_path / "returns" / "44.parquet")
    assert set(found["record_key"]) == {"A1", "A2", "A3", "A5", "A7", "A8", "A9", "A10", "A12"}


def test_returns_become_problem_rows_naming_the_other_province(hand_made):
    outcome = returns.national_problems(
        hand_made["folder"] / "national" / "returns" / "44.parquet", "44"
    )
    problems = outcome.problems.set_index("record_id")
    assert set(problems.index) == {"A1", "A2", "A3", "A7", "A9", "A12"}
    assert set(problems["rule"]) == {"DUP_CROSS_PROVINCE"}
    assert problems["severity"].to_dict() == {
        "A1": "E",
        "A2": "W",
        "A3": "W",
        "A7": "W",
        "A9": "E",
        "A12": "W",
    }
    assert problems.loc["A1", "message"].startswith(
        "身份证号重复：外省已注册有学籍（广西壮族自治区"
    )
    assert (
        "2145010001" in problems.loc["A1", "message"] and "450103" in problems.loc["A1", "message"]
    )
    assert "建议保留广西壮族自治区的学籍" in problems.loc["A1", "suggestion"]
    assert "建议保留本省学籍" in problems.loc["A3", "suggestion"]
    assert problems.loc["A2", "message"].startswith("疑似外省重复")
    assert "〔" not in "".join(problems["message"]) + "".join(problems["suggestion"])
    assert list(outcome.problems.columns) == [
        "record_id",
        "county_code",
        "rule",
        "severity",
        "field",
        "value",
        "message",
        "suggestion",
    ]
    roster = pd.DataFrame(
        {"record_id": ["A1", "A2"], "county_code": ["440103", "440104"], "id_number": ["x", "y"]}
    )
    narrowed = returns.national_problems(
        hand_made["folder"] / "national" / "returns" / "44.parquet", "44", roster
    )
    assert list(narrowed.problems["record_id"]) == ["A1", "A2"]
    assert sorted(narrowed.unknown_record_keys) == ["A12", "A3", "A7", "A9"]
    assert narrowed.problems.set_index("record_id").loc["A1", "value"] == "x"


def test_files_of_other_keys_or_one_province_twice_are_refused(hand_made, tmp_path):
    other_key = tokens.key_from_bytes(b"another national key of 32 bytes")
    rosters = hand_made_rosters(tmp_path)
    exchange.export_roster([rosters["45"]], "45", other_key, tmp_path / "45.parquet")
    with pytest.raises(InputError, match="密钥指纹"):
        link.plan([hand_made["files"][0], tmp_path / "45.parquet"])
    with pytest.raises(InputError, match="省份 44"):
        link.plan([hand_made["files"][0], hand_made["files"][0]])
    with pytest.raises(InputError, match="不是 Parquet 文件"):
        link.plan([tmp_path / "44.csv"])
    with pytest.raises(InputError, match="不是全国查重交换文件"):
        link.plan([hand_made["folder"] / "national" / "returns" / "44.parquet"])


# --- generated provinces -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory, dask_client) -> dict:
    folder = tmp_path_factory.mktemp("generated")
    made = generate_national(
        folder / "rosters",
        ["44", "45", "43"],
        3000,
        5,
        cross_rates=dict.fromkeys(
            (
                "cross_same_id",
                "cross_id_typo",
                "cross_missing_id",
                "cross_homophone",
                "cross_homophone_missing",
                "cross_twins",
                "cross_namesakes",
                "cross_namesakes_typo",
            ),
            0.005,
        ),
    )
    files = []
    for province, roster in made["rosters"].items():
        exchange.export_roster([roster], province, KEY, folder / "exchange" / f"{province}.parquet")
        files.append(folder / "exchange" / f"{province}.parquet")
    summary = link.national_link(files, folder / "national", dask_client)
    return {"folder": folder, "made": made, "files": files, "summary": summary}


def test_generated_provinces_precision_recall_and_no_twin_or_namesake(generated):
    made = generated["made"]
    assert sum(made["cross_pairs"].values()) >= 200
    assert set(made["cross_negatives"]) == {
        "cross_twins",
        "cross_namesakes",
        "cross_namesakes_typo",
    }
    scored = evaluate.score(
        generated["folder"] / "national",
        made["truth_cross_province"],
        made["truth_cross_negatives"],
    )
    assert scored["precision"] >= 0.999, scored
    assert scored["recall"] >= 0.99, scored
    assert scored["negatives_linked"] == 0, scored
    assert scored["one_sided"] == 0


def test_generated_pairs_are_what_their_kind_says(generated):
    made = generated["made"]
    rosters = {
        p: pd.read_csv(path, dtype=str).set_index("记录号") for p, path in made["rosters"].items()
    }
    truth = pd.concat(
        [
            pd.read_csv(made["truth_cross_province"], dtype=str),
            pd.read_csv(made["truth_cross_negatives"], dtype=str),
        ]
    )
    assert (truth["province_a"] != truth["province_b"]).all()
    for row in truth.itertuples():
        a = rosters[row.province_a].loc[row.record_id_a]
        b = rosters[row.province_b].loc[row.record_id_b]
        a_id, b_id = a["身份证件号"], b["身份证件号"]
        valid_b = isinstance(b_id, str) and resident_id.is_valid(b_id)
        if row.kind in ("cross_missing_id", "cross_homophone_missing"):
            assert pd.isna(b_id)
        elif row.kind == "cross_same_id":
            assert a_id == b_id and a["姓名"] == b["姓名"]
        elif row.kind in ("cross_id_typo", "cross_homophone", "cross_namesakes_typo"):
            assert not valid_b and a_id != b_id
        else:
            assert valid_b and a_id != b_id
        if row.kind.startswith("cross_homophone"):
            assert a["姓名"] != b["姓名"] and a["姓名"][0] == b["姓名"][0]
        if row.kind.startswith("cross_namesakes"):
            assert a["姓名"] == b["姓名"] and a["出生日期"] == b["出生日期"]
        if row.kind == "cross_twins":
            assert a["姓名"] != b["姓名"] and a["监护人姓名"] == b["监护人姓名"]
            assert abs(int(a_id[14:17]) - int(b_id[14:17])) <= 4 and a_id[:14] == b_id[:14]


def test_no_plain_id_or_name_and_no_key_in_any_output(generated):
    folder = generated["folder"]
    plain_names: set[bytes] = set()
    plain_ids: set[bytes] = set()
    for roster in generated["made"]["rosters"].values():
        frame = pd.read_csv(roster, dtype=str)
        plain_names |= {n.strip().encode() for n in frame["姓名"].dropna() if len(n.strip()) >= 2}
        plain_ids |= {i.encode() for i in frame["身份证件号"].dropna() if len(i) >= 15}
    outputs = [p for p in (folder / "exchange").rglob("*") if p.is_file()]
    outputs += [p for p in (folder / "national").rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in outputs) and any(
        p.suffix == ".json" for p in outputs
    )
    key_forms = [KEY_TEXT.encode(), KEY_TEXT.encode().hex().encode()]
    for path in outputs:
        raw = path.read_bytes()
        blobs = [raw]
        if path.suffix == ".parquet":  # the values themselves, decompressed
            table = pq.read_table(path)
            sink = io.BytesIO()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            blobs.append(sink.getvalue())
        else:  # text: not even a number of ID shape
            assert not ID_SHAPE.search(raw), path
        for blob in blobs:
            assert not found_in(blob, plain_ids | plain_names | set(key_forms)), path
    columns = set(pq.read_schema(generated["files"][0]).names)
    assert columns == set(exchange.EXCHANGE_SCHEMA.names)
    assert not columns & {"id_number", "name", "guardian_name", "birth_date", "student_no"}


def test_the_summary_counts_tokens_partitions_and_workers(generated):
    summary = generated["summary"]
    assert summary["token_rows"] == sum(summary["token_rows_by_kind"].values())
    assert summary["token_rows"] == sum(summary["token_partitions"]["rows"])
    assert len(summary["token_partitions"]["rows"]) == summary["token_partitions"]["count"]
    assert summary["records"] == sum(generated["made"]["rows"].values())
    assert 3 <= summary["token_rows"] / summary["records"] <= 8
    pairs = summary["pairs_by_province_pair"]
    assert sum(p["pairs"] for p in pairs) == summary["duplicate_pairs"]
    assert {(p["province_a"], p["province_b"]) for p in pairs} <= {
        ("44", "45"),
        ("44", "43"),
        ("45", "43"),
    }
    assert len(summary["workers"]) == 2
    saved = json.loads((generated["folder"] / "national" / "summary.json").read_text("utf-8"))
    assert saved["duplicate_pairs"] == summary["duplicate_pairs"]


# --- the export of a published run -------------------------------------------------------------


def published_run(folder: Path, roster: Path, rows_staged: int) -> Path:
    """A run folder as the provincial run publishes it, holding what the export reads."""
    run_dir = folder / "out" / "44-20261128"
    run_dir.mkdir(parents=True)
    manifest = {
        "run_id": "44-20261128",
        "province": "44",
        "run_date": "2026-11-28",
        "inputs": [
            {
                "path": str(roster),
                "name": roster.name,
                "sha256": hashlib.sha256(roster.read_bytes()).hexdigest(),
            }
        ],
        "rows": {"rows_staged": rows_staged},
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return run_dir


def test_export_of_a_run_checks_its_inputs_and_writes_a_manifest_without_the_key(tmp_path):
    rosters = hand_made_rosters(tmp_path)
    run_dir = published_run(tmp_path, rosters["44"], 11)
    out = tmp_path / "exchange" / "44.parquet"
    manifest = exchange.export_national(run_dir, KEY, out)
    assert manifest["rows"] == 11 and manifest["key_fingerprint"] == KEY.fingerprint
    written = json.loads((tmp_path / "exchange" / "44.manifest.json").read_text("utf-8"))
    assert written["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    # A3, A5, A8, A10, A12; A9's ID is in its 学籍号.
    assert written["tokens"]["id_state_none"] == 5
    assert exchange.exchange_info(out)["run_id"] == "44-20261128"
    assert not list((tmp_path / "out").glob(".tmp-*")), "the staged copy is removed"
    assert KEY_TEXT not in json.dumps(written)
    from xueji_quality.reports.manifest import MANIFEST_NAME

    assert exchange.MANIFEST_NAME == MANIFEST_NAME
    wrong_rows = published_run(tmp_path / "again", rosters["44"], 10)
    with pytest.raises(InputError, match="入库 10 条"):
        exchange.export_national(wrong_rows, KEY, tmp_path / "x.parquet")
    rosters["44"].write_text(rosters["44"].read_text("utf-8") + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="SHA-256"):
        exchange.export_national(run_dir, KEY, tmp_path / "y.parquet")
    assert not (tmp_path / "x.parquet").exists() and not (tmp_path / "y.parquet").exists()


# --- a real cluster: separate scheduler and worker processes ---------------------------------


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in reversed(processes):
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@pytest.fixture
def real_cluster(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes; yields the scheduler address."""
    from distributed import Client

    dask = str(Path(sys.executable).with_name("dask"))
    scheduler_file = tmp_path / "scheduler.json"
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    processes: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> None:
        with open(logs / f"{name}.log", "wb") as log:
            processes.append(
                subprocess.Popen(
                    [dask, *args],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=tmp_path,
                    start_new_session=True,  # its own process group: the nanny's child goes too
                )
            )

    try:
        start("scheduler", "scheduler", "--port", "0", "--no-dashboard",
              "--scheduler-file", str(scheduler_file))  # fmt: skip
        deadline = time.monotonic() + 30
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert scheduler_file.exists(), (logs / "scheduler.log").read_text()
        for i in range(2):
            start(f"worker-{i}", "worker", "--scheduler-file", str(scheduler_file),
                  "--nthreads", "1", "--memory-limit", "2GB", "--no-dashboard",
                  "--local-directory", str(tmp_path / f"worker-{i}"))  # fmt: skip
        address = json.loads(scheduler_file.read_text())["address"]
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        _stop(processes)
    assert all(p.poll() is not None for p in processes)


def test_the_national_flow_on_a_real_cluster_equals_the_local_cluster(
    hand_made, generated, real_cluster, tmp_path, prefect_harness
):
    from pipelines.national import national_run

    files = [str(f) for f in generated["files"]]
    summary = national_run(files, str(tmp_path / "cluster"), dask_address=real_cluster)
    assert summary["scheduler"] == real_cluster
    assert len(summary["workers"]) == 2
    for province in ("44", "45", "43"):
        on_cluster = pd.read_parquet(tmp_path / "cluster" / "returns" / f"{province}.parquet")
        local = pd.read_parquet(
            generated["folder"] / "national" / "returns" / f"{province}.parquet"
        )
        assert len(local) > 0
        pd.testing.assert_frame_equal(on_cluster, local)
    assert summary["pairs_by_province_pair"] == generated["summary"]["pairs_by_province_pair"]


def test_the_export_flow_never_logs_the_key(hand_made, tmp_path, prefect_harness, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    from pipelines.national import national_export

    rosters = hand_made_rosters(tmp_path)
    run_dir = published_run(tmp_path, rosters["45"], 12)
    monkeypatch.setenv(tokens.KEY_ENV, KEY_TEXT)
    state = national_export(str(run_dir), str(tmp_path / "45.parquet"), return_state=True)
    manifest = state.result()
    assert manifest["key_fingerprint"] == KEY.fingerprint
    APILogHandler().flush()  # logs reach the API in batches
    run_id = state.state_details.flow_run_id
    only_this_run = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
    deadline = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        parameters = json.dumps(client.read_flow_run(run_id).parameters)
        while True:
            logs = " ".join(log.message for log in client.read_logs(log_filter=only_this_run))
            if "全国查重交换文件" in logs or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert "全国查重交换文件" in logs and KEY.fingerprint in logs
    assert KEY_TEXT not in logs + parameters
