"""A large roster's police files and its check, at a size a test can afford: the generator
answers a roster piece by piece, the check reads the registry a batch at a time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xueji_quality import ingest
from xueji_quality.errors import InputError
from xueji_quality.generator import police as generated_police
from xueji_quality.generator import write_sample
from xueji_quality.generator.police_pieces import roster_plan
from xueji_quality.police import check
from xueji_quality.police.registry import read_registry
from xueji_quality.police.registry_index import load_registry, prepared

PIECE_ROWS = 1000


@pytest.fixture(scope="module")
def in_pieces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("police_pieces")
    write_sample(folder, 3 * PIECE_ROWS, 31, "44", "parquet", chunk_rows=PIECE_ROWS)
    info = generated_police.write_police(folder, 31, "44", chunk_rows=PIECE_ROWS)
    return folder, info


def test_the_roster_is_cut_where_the_generator_cut_it(in_pieces):
    folder, _ = in_pieces
    plan = roster_plan(folder, PIECE_ROWS)
    assert plan.cuts.tolist() == [PIECE_ROWS, 2 * PIECE_ROWS]
    assert [hi - lo for lo, hi in plan.bounds] == [PIECE_ROWS] * 3


def test_pieces_give_no_number_twice_and_every_class_is_found(in_pieces):
    folder, info = in_pieces
    registry = pd.read_parquet(folder / "registry.parquet")
    assert len(registry) == info["registry_rows"] > 3 * PIECE_ROWS
    assert not registry["公民身份号码"].duplicated().any()
    results = pd.read_csv(folder / "police_results.csv", dtype="string", keep_default_na=False)
    assert len(results) == info["result_lines"] and list(results.columns)[0] == "请求编号"
    roster = ingest.read_exports([folder / "roster.parquet"], "44").roster
    truth = pd.read_csv(info["truth_police"], dtype="string", keep_default_na=False)
    truth = truth[truth["record_id"].isin(roster["record_id"])]
    outcome = check.police_check(roster, registry=folder / "registry.parquet")
    found = set(zip(outcome.problems["record_id"], outcome.problems["rule"], strict=True))
    planted = truth[~truth["rule"].isin(["", "ID_CHECKSUM"])]
    assert {"absent", "absent_near", "homophone", "different", "cancelled"} <= set(planted["kind"])
    missed = [
        r for r, u in zip(planted["record_id"], planted["rule"], strict=True) if (r, u) not in found
    ]
    assert missed == []
    assert found <= set(zip(truth["record_id"], truth["rule"], strict=True))


def test_a_registry_read_in_batches_is_the_registry_read_whole(in_pieces):
    folder, _ = in_pieces
    path = folder / "registry.parquet"
    whole = prepared(read_registry(path))
    batched = load_registry(path, batch_rows=700)
    assert batched.rows == whole.rows == len(pd.read_parquet(path))
    for name in ("values", "sex", "born", "status"):
        np.testing.assert_array_equal(getattr(batched, name), getattr(whole, name))
    everyone = np.arange(len(whole.values))
    pd.testing.assert_series_equal(batched.name_at(everyone), whole.name_at(everyone))
    assert (batched.id_at(everyone[:50]) == whole.id_at(everyone[:50])).all()


def test_a_bad_status_in_a_later_batch_names_its_row(in_pieces, tmp_path):
    folder, _ = in_pieces
    frame = pd.read_parquet(folder / "registry.parquet")
    frame.loc[1500, "人员状态"] = "失踪"
    frame.to_parquet(tmp_path / "registry.parquet")
    with pytest.raises(InputError) as error:
        load_registry(tmp_path / "registry.parquet", batch_rows=700)
    assert error.value.row == 1502 and error.value.field == "人员状态"


def test_a_damaged_csv_line_read_ahead_names_its_row(tmp_path):
    path = tmp_path / "registry.csv"
    good = "110105201501010011,张三,1,2015-01-01,正常\n"
    path.write_text("公民身份号码,姓名,性别,出生日期,人员状态\n" + good * 3 + "1,2,3\n" + good)
    with pytest.raises(InputError) as error:
        load_registry(path, batch_rows=2)
    assert error.value.row == 5 and "字段数" in str(error.value)
