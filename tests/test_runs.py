"""Tests of bayescale.core.runs: recognition, derivation, validation, filters, provenance."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayescale.core.runs import Runs, load_runs, parse_mapping, sha256_frame, validate
from bayescale.errors import InputError

DATA = Path(
    os.environ.get("BAYESCALE_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture
def data_dir():
    if not (DATA / "chinchilla_epoch2024.csv").is_file():
        pytest.skip(f"real datasets not found in {DATA}")
    return DATA


@pytest.fixture
def bundled_dir():
    """The tables shipped inside the package (bayescale/data): always there, offline."""
    import bayescale

    return Path(bayescale.__file__).resolve().parent / "data"


def write(tmp_path, text, name="runs.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


GOOD = "params,tokens,loss\n1e8,2e9,3.1\n4e8,2e9,2.9\n1e9,2e10,2.6\n1e9,4e10,2.5\n"


def good_frame():
    return pd.DataFrame(
        {
            "N": [1e8, 4e8, 1e9, 1e9, 3e9],
            "D": [2e9, 2e9, 2e10, 4e10, 6e10],
            "loss": [3.1, 2.9, 2.6, 2.5, 2.3],
            "family": ["a", "a", "b", "b", "b"],
        }
    )


# --------------------------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------------------------


def test_chinchilla_recognised_and_d_derived(data_dir):
    runs = load_runs(data_dir / "chinchilla_epoch2024.csv")
    prov = runs.provenance
    assert len(runs) == 245
    assert prov["mapping"] == {"N": "Model Size", "C": "Training FLOP", "loss": "loss"}
    assert prov["derived"] == {"D": "C/(6N)"}
    raw = pd.read_csv(data_dir / "chinchilla_epoch2024.csv")
    np.testing.assert_allclose(runs.N, raw["Model Size"], rtol=1e-15)
    np.testing.assert_allclose(runs.D, raw["Training FLOP"] / (6 * raw["Model Size"]), rtol=1e-15)
    assert list(runs.frame.columns) == ["N", "D", "C", "loss", "run"]
    assert runs.frame["run"].is_unique and runs.frame["run"].iloc[0] == "row1"
    assert prov["n_rows_in"] == prov["n_rows"] == 245
    json.dumps(prov)


def test_chinchilla_drop_top_loss_drops_the_five_highest(data_dir):
    full = load_runs(data_dir / "chinchilla_epoch2024.csv")
    runs = load_runs(data_dir / "chinchilla_epoch2024.csv", drop_top_loss=5)
    assert len(runs) == 240
    assert runs.provenance["filters"] == {"drop_top_loss": 5}
    assert runs.provenance["dropped"] == {"drop_top_loss": 5}
    top5 = np.sort(full.loss)[-5:]
    assert runs.loss.max() < top5.min()
    assert runs.provenance["sha256"] != full.provenance["sha256"]


def test_datablations_columns_and_repeated_run_names(bundled_dir):
    runs = load_runs(bundled_dir / "datablations_muennighoff2023.csv")
    prov = runs.provenance
    assert len(runs) == 296
    assert prov["mapping"] == {
        "N": "params_N",
        "D": "tokens_D",
        "loss": "val_loss",
        "U": "unique_tokens_U",
        "run": "run_name",
    }
    assert prov["derived"] == {"C": "6ND"}
    assert prov["alternatives"] == {}
    assert (runs.U <= runs.D).all() and runs.U.min() > 0
    np.testing.assert_allclose(runs.C, 6 * runs.N * runs.D)
    # repeated seeds share a run name in the file; ids are made unique, first row kept readable
    assert runs.frame["run"].is_unique
    assert "2b855b11b#2" in set(runs.frame["run"])
    assert "#k" in prov["run_ids"]


def test_overtraining_params_beats_params_no_embed_and_loss_is_ambiguous(bundled_dir):
    path = bundled_dir / "overtraining_gadre2024.csv"
    with pytest.raises(InputError, match=r"missing column 'loss'.*loss_c4_val.*--map loss=") as e:
        load_runs(path)
    assert "\n" not in str(e.value)
    runs = load_runs(path, mapping={"loss": "loss_c4_val"})
    assert len(runs) == 104
    raw = pd.read_csv(path)
    np.testing.assert_array_equal(runs.N, raw["params"].to_numpy(dtype=float))
    assert runs.provenance["mapping"]["N"] == "params"
    assert runs.provenance["alternatives"]["N"] == ["params_no_embed"]
    assert runs.provenance["explicit"] == ["loss"]
    assert "group" not in runs.frame  # dataset_name is not taken as group unless mapped


def test_overtraining_group_needs_mapping_then_selects(bundled_dir):
    path = bundled_dir / "overtraining_gadre2024.csv"
    with pytest.raises(InputError, match=r"needs a group column.*dataset_name.*--map group="):
        load_runs(path, mapping={"loss": "loss_c4_val"}, group="c4_original")
    runs = load_runs(
        path, mapping={"loss": "loss_c4_val", "group": "dataset_name"}, group="c4_original"
    )
    assert len(runs) == 34
    assert set(runs.frame["group"]) == {"c4_original"}
    assert runs.provenance["dropped"] == {"group": 70}
    with pytest.raises(InputError, match=r"unknown group 'c4'; valid groups: c4_original, rpj"):
        load_runs(path, mapping={"loss": "loss_c4_val", "group": "dataset_name"}, group="c4")


def test_same_table_hashes_equal_across_formats(data_dir, tmp_path):
    src = data_dir / "chinchilla_epoch2024.csv"
    raw = pd.read_csv(src)
    raw.to_csv(tmp_path / "c.tsv", sep="\t", index=False)
    raw.to_parquet(tmp_path / "c.parquet")
    hashes = {
        load_runs(s).provenance["sha256"]
        for s in (src, raw, tmp_path / "c.tsv", tmp_path / "c.parquet")
    }
    assert len(hashes) == 1


# --------------------------------------------------------------------------------------------
# Recognition and mapping
# --------------------------------------------------------------------------------------------


def test_csv_row_numbers_and_c_derived(tmp_path):
    runs = load_runs(write(tmp_path, GOOD))
    assert runs.provenance["derived"] == {"C": "6ND"}
    np.testing.assert_allclose(runs.C, 6 * runs.N * runs.D)
    assert runs.frame.dtypes["N"] == np.float64 and runs.frame.index.tolist() == [0, 1, 2, 3]
    assert runs.provenance["source"] == str((tmp_path / "runs.csv").resolve())


@pytest.mark.parametrize(
    "header",
    ["Model Size,tokens_seen,eval_loss", "num-params,Num Tokens,Final_Loss", "NPARAMS,D,LOSS"],
)
def test_aliases_ignore_case_spaces_underscores_dashes(tmp_path, header):
    runs = load_runs(write(tmp_path, header + "\n1e8,2e9,3.1\n1e9,2e10,2.6\n"))
    assert len(runs) == 2
    assert set(runs.provenance["mapping"]) == {"N", "D", "loss"}


def test_both_d_and_c_kept_and_ratio_recorded(tmp_path):
    text = "N,D,flops,loss\n1e8,2e9,1.2e18,3.1\n1e9,2e10,1.32e20,2.6\n"
    runs = load_runs(write(tmp_path, text))
    assert runs.provenance["derived"] == {}
    np.testing.assert_array_equal(runs.C, [1.2e18, 1.32e20])
    assert runs.provenance["c_over_6nd"]["max"] == pytest.approx(1.1)


def test_priority_params_over_non_embedding_and_explicit_override(tmp_path):
    text = "non_embedding_params,params,tokens,loss\n9e7,1e8,2e9,3.1\n9e8,1e9,2e10,2.6\n"
    runs = load_runs(write(tmp_path, text))
    np.testing.assert_array_equal(runs.N, [1e8, 1e9])
    assert runs.provenance["alternatives"]["N"] == ["non_embedding_params"]
    runs = load_runs(write(tmp_path, text), mapping={"N": "non_embedding_params"})
    np.testing.assert_array_equal(runs.N, [9e7, 9e8])


def test_truly_ambiguous_columns_ask_for_mapping(tmp_path):
    text = "params,Params,tokens,loss\n1e8,1e8,2e9,3.1\n1e9,1e9,2e10,2.6\n"
    with pytest.raises(InputError, match=r"ambiguous column for 'N': params, Params.*--map N="):
        load_runs(write(tmp_path, text))


def test_missing_columns_messages(tmp_path):
    with pytest.raises(InputError) as e:
        load_runs(write(tmp_path, "params,tokens,ppl\n1e8,2e9,3\n"))
    msg = str(e.value)
    assert msg.startswith("missing column 'loss' (expected one of: loss, val_loss, eval_loss")
    assert "columns found: params, tokens, ppl" in msg and "pass --map loss=COLUMN" in msg
    with pytest.raises(InputError, match=r"missing column 'D' or 'C'.*e\.g\. --map D=unique_tok"):
        load_runs(write(tmp_path, "params,unique_tokens,loss\n1e8,2e9,3\n"))
    with pytest.raises(InputError, match=r"e\.g\. --map C=total_flop_count\)\)$"):
        load_runs(write(tmp_path, "params,total_flop_count,loss\n1e8,2e9,3\n"))
    with pytest.raises(InputError, match=r"missing column 'N'.*size_in_b"):
        load_runs(write(tmp_path, "size_in_b,tokens,loss\n1,2e9,3\n"))


def test_mapping_errors(tmp_path):
    p = write(tmp_path, GOOD)
    with pytest.raises(
        InputError,
        match=r"mapped column 'val' for 'loss' not found; available "
        r"columns: params, tokens, loss",
    ):
        load_runs(p, mapping={"loss": "val"})
    with pytest.raises(InputError, match=r"unknown canonical column 'size'.*valid: N, D, C"):
        load_runs(p, mapping={"size": "params"})
    with pytest.raises(InputError, match=r"column 'params' for both 'N' and 'D'"):
        load_runs(p, mapping={"N": "params", "D": "params"})
    with pytest.raises(InputError, match="mapping must be a dict"):
        load_runs(p, mapping=["N=params"])


def test_parse_mapping():
    assert parse_mapping(["n=params_total", "Loss=val loss", "group=a=b"]) == {
        "N": "params_total",
        "loss": "val loss",
        "group": "a=b",
    }
    assert parse_mapping([]) == {}
    with pytest.raises(InputError, match=r"bad mapping item 'loss': expected CANONICAL=COLUMN"):
        parse_mapping(["loss"])
    with pytest.raises(InputError, match="unknown canonical column 'size'"):
        parse_mapping(["size=x"])
    with pytest.raises(InputError, match="column name after '=' is empty"):
        parse_mapping(["loss="])
    with pytest.raises(InputError, match="names 'N' twice"):
        parse_mapping(["N=a", "n=b"])
    with pytest.raises(InputError, match="list of 'CANONICAL=COLUMN'"):
        parse_mapping("N=a")


# --------------------------------------------------------------------------------------------
# Sources and values
# --------------------------------------------------------------------------------------------


def test_source_errors(tmp_path):
    with pytest.raises(InputError, match=r"empty file"):
        load_runs(write(tmp_path, ""))
    with pytest.raises(InputError, match=r"has a header but no rows"):
        load_runs(write(tmp_path, "params,tokens,loss\n"))
    with pytest.raises(InputError, match=r"unsupported file type '\.xlsx'.*\.csv.*DataFrame"):
        load_runs(tmp_path / "runs.xlsx")
    with pytest.raises(InputError, match=r"file not found"):
        load_runs(tmp_path / "absent.csv")
    with pytest.raises(InputError, match=r"cannot read runs from a list; accepted: a path"):
        load_runs([[1e8, 2e9, 3.0]])
    with pytest.raises(InputError, match=r"cannot parse .* as CSV"):
        load_runs(write(tmp_path, 'params,tokens,loss\n1e8,2e9,"3.1\n'))


def test_tsv_with_bom(tmp_path):
    p = tmp_path / "runs.tab"
    p.write_text("\ufeff" + GOOD.replace(",", "\t"), encoding="utf-8")
    assert load_runs(p).provenance["mapping"]["N"] == "params"


def test_non_numeric_names_row_column_and_value(tmp_path):
    text = "params,tokens,loss\n1e8,2e9,3.1\n4e8,2e9,abc\n1e9,2e10,2.6\n1e9,4e10,1_0\n"
    with pytest.raises(InputError) as e:
        load_runs(write(tmp_path, text))
    assert str(e.value) == (
        "non-numeric value in column 'loss' at rows 2 ('abc'), 4 ('1_0'); "
        "expected a positive number"
    )


def test_missing_and_non_finite(tmp_path):
    text = "N,D,loss\n1e8,2e9,3.1\n4e8,,2.9\n1e9,inf,2.6\n1e9,nan,2.5\n"
    with pytest.raises(InputError) as e:
        load_runs(write(tmp_path, text))
    assert str(e.value) == (
        "missing or non-finite value in column 'D' at rows 2 (empty), 3 ('inf'), 4 ('nan'); "
        "expected a finite positive number"
    )
    df = good_frame().assign(loss=[3.1, np.nan, 2.6, 2.5, 2.3])
    with pytest.raises(InputError, match=r"non-finite value in column 'loss' at row 2 \(nan\)"):
        load_runs(df)


def test_zero_negative_and_more_than_five_rows(tmp_path):
    rows = "".join(f"{-k},2e9,3\n" for k in range(8))
    with pytest.raises(InputError) as e:
        load_runs(write(tmp_path, "Model Size,tokens,loss\n" + rows))
    assert str(e.value) == (
        "zero or negative value in column 'Model Size' (N) at rows 1 (0), 2 (-1), 3 (-2), "
        "4 (-3), 5 (-4) and 3 more; expected a positive number"
    )


def test_duplicates_error_but_repeated_seeds_allowed(tmp_path):
    text = GOOD + "1e9,2e10,2.6\n"
    with pytest.raises(InputError) as e:
        load_runs(write(tmp_path, text))
    assert str(e.value).startswith(
        "duplicate runs (same N, D and loss) at row 5 (same as row 3); remove"
    )
    runs = load_runs(write(tmp_path, GOOD + "1e9,2e10,2.61\n"))
    assert len(runs) == 5


def test_group_missing_values_error(tmp_path):
    df = good_frame().assign(family=["a", None, "b", "b", "b"])
    with pytest.raises(InputError, match=r"missing value in column 'family' \(group\) at row 2"):
        load_runs(df)


def test_run_ids_from_column_missing_filled(tmp_path):
    df = good_frame().assign(name=["x", None, "y", "z", "w"])
    runs = load_runs(df)
    assert runs.frame["run"].tolist() == ["x", "row2", "y", "z", "w"]


# --------------------------------------------------------------------------------------------
# Counts and identifiability (after filters)
# --------------------------------------------------------------------------------------------


def test_too_few_runs_for_the_law(tmp_path):
    with pytest.raises(InputError) as e:
        load_runs(write(tmp_path, GOOD), n_params_required=5)
    assert str(e.value).startswith("only 4 runs, but the law has 5 parameters; need at least 5")
    assert len(load_runs(write(tmp_path, GOOD), n_params_required=4)) == 4


def test_unidentifiable_after_filters(tmp_path):
    p = write(tmp_path, GOOD)
    with pytest.raises(InputError) as e:
        load_runs(p, min_params=1e9)
    assert str(e.value) == (
        "the law is unidentifiable: all runs have N=1e+09; need at least 2 distinct model sizes"
    )
    with pytest.raises(InputError, match=r"all runs have D=2e\+09; need at least 2 distinct token"):
        load_runs(p, max_params=5e8)
    # a law of N alone needs distinct N only
    assert len(load_runs(p, max_params=5e8, variables=("N",))) == 2


# --------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------


def test_all_filters_together_in_documented_order():
    runs = load_runs(
        good_frame(),
        group="b",
        min_params=2e8,
        max_params=2e9,
        min_flops=1e19,
        max_flops=1e21,
        min_loss=2.0,
        max_loss=2.8,
        variables=("D",),
    )
    np.testing.assert_array_equal(runs.D, [2e10, 4e10])
    prov = runs.provenance
    assert list(prov["filters"]) == [
        "group",
        "min_params",
        "max_params",
        "min_flops",
        "max_flops",
        "min_loss",
        "max_loss",
    ]
    assert prov["dropped"] == {
        "group": 2,
        "min_params": 0,
        "max_params": 1,
        "min_flops": 0,
        "max_flops": 0,
        "min_loss": 0,
        "max_loss": 0,
    }


@pytest.mark.parametrize(
    ("kwargs", "expected_n", "dropped"),
    [
        ({"max_loss": 2.95}, 4, {"max_loss": 1}),
        ({"min_loss": 2.5}, 4, {"min_loss": 1}),
        ({"min_params": 2e8}, 4, {"min_params": 1}),
        ({"max_params": 2e9}, 4, {"max_params": 1}),
        ({"min_flops": 5e18}, 4, {"min_flops": 1}),
        ({"max_flops": 2e20}, 3, {"max_flops": 2}),
        ({"drop_top_loss": 2}, 3, {"drop_top_loss": 2}),
        ({"group": "b"}, 3, {"group": 2}),
    ],
)
def test_each_filter(kwargs, expected_n, dropped):
    df = good_frame().assign(D=[2e9, 3e9, 2e10, 4e10, 6e10], loss=[3.1, 2.9, 2.6, 2.5, 2.3])
    runs = load_runs(df, **kwargs)
    prov = runs.provenance
    assert len(runs) == expected_n
    assert prov["dropped"] == dropped
    assert prov["n_rows_in"] - sum(prov["dropped"].values()) == prov["n_rows"] == expected_n
    json.dumps(prov)


def test_filter_order_drop_top_loss_before_ranges():
    df = good_frame()
    runs = load_runs(df, drop_top_loss=1, min_params=2e8)
    # drops the 3.1 row (highest loss) first; min_params then has nothing left to drop
    assert runs.provenance["dropped"] == {"drop_top_loss": 1, "min_params": 0}
    assert list(runs.provenance["filters"]) == ["drop_top_loss", "min_params"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"drop_top_loss": -1}, "drop_top_loss must be a non-negative integer"),
        ({"drop_top_loss": True}, "drop_top_loss must be a non-negative integer"),
        ({"drop_top_loss": 1.5}, "drop_top_loss must be a non-negative integer"),
        ({"max_loss": -2}, "max_loss must be a positive finite number"),
        ({"min_flops": "1e19"}, "min_flops must be a positive finite number"),
        ({"max_params": float("inf")}, "max_params must be a positive finite number"),
        ({"min_loss": 3.0, "max_loss": 2.0}, "min_loss=3.0 is above max_loss=2.0"),
        ({"n_params_required": -1}, "n_params_required must be a non-negative integer"),
        ({"variables": "N"}, "variables must be a tuple"),
        ({"max_loss": 1.0}, r"no runs left after the filters \(max_loss=1.0\)"),
        ({"drop_top_loss": 9}, r"no runs left after the filters \(drop_top_loss=9\)"),
        ({"group": "c"}, "unknown group 'c'; valid groups: a, b"),
    ],
)
def test_bad_filter_options(kwargs, match):
    with pytest.raises(InputError, match=match):
        load_runs(good_frame(), **kwargs)


def test_runs_source_applies_filters_and_accumulates_provenance():
    first = load_runs(good_frame(), max_loss=3.0)
    second = load_runs(first, drop_top_loss=1, max_loss=2.55)
    prov = second.provenance
    assert len(second) == 2
    assert prov["filters"] == {"max_loss": 3.0, "drop_top_loss": 1, "max_loss (2)": 2.55}
    assert prov["n_rows_in"] == 5 and sum(prov["dropped"].values()) == 3
    assert len(first) == 4 and first.provenance["filters"] == {"max_loss": 3.0}
    with pytest.raises(InputError, match="mapping does not apply to a Runs"):
        load_runs(first, mapping={"N": "N"})


# --------------------------------------------------------------------------------------------
# Runs, validate, hashing, purity
# --------------------------------------------------------------------------------------------


def test_load_runs_does_not_mutate_input():
    df = good_frame()
    before = df.copy()
    runs = load_runs(df, drop_top_loss=1)
    pd.testing.assert_frame_equal(df, before)
    arr = runs.N
    arr[:] = -1
    assert (runs.N > 0).all()


def test_subset():
    runs = load_runs(good_frame())
    small = runs.subset(runs.N >= 1e9)
    assert len(small) == 3 and small.frame.index.tolist() == [0, 1, 2]
    assert small.provenance["filters"]["subset"] == "3 of 5 runs"
    assert small.provenance["dropped"]["subset"] == 2
    assert small.provenance["sha256"] == sha256_frame(small.frame)
    assert len(runs) == 5 and "subset" not in runs.provenance["filters"]
    picked = runs.subset([4, 0])
    np.testing.assert_array_equal(picked.N, [3e9, 1e8])
    again = small.subset([True, False, True])
    assert list(again.provenance["filters"]) == ["subset", "subset (2)"]
    with pytest.raises(InputError, match="boolean mask of length 5"):
        runs.subset([True, False])
    with pytest.raises(InputError, match="selects none of the 5 runs"):
        runs.subset(np.zeros(5, dtype=bool))
    with pytest.raises(InputError, match="positions must lie in 0..4"):
        runs.subset([7])
    with pytest.raises(InputError, match="repeat a run"):
        runs.subset([1, 1])
    with pytest.raises(InputError, match="dtype float64"):
        runs.subset([0.5])


def test_runs_repr_and_len():
    runs = load_runs(good_frame())
    assert isinstance(runs, Runs) and len(runs) == 5
    assert repr(runs) == "Runs(n=5, source='DataFrame', groups=['a', 'b'])"


def test_validate_returns_clean_copy_and_names_index_rows():
    df = pd.DataFrame(
        {
            "N": ["1e8", "1e9"],
            "D": [2e9, 2e10],
            "C": [1.2e18, 1.2e20],
            "loss": [3.0, 2.5],
            "run": ["a", "b"],
        },
        index=[10, 20],
    )
    clean = validate(df)
    assert clean.dtypes["N"] == np.float64 and clean.index.tolist() == [10, 20]
    assert df["N"].tolist() == ["1e8", "1e9"]
    with pytest.raises(InputError, match=r"column 'loss' at row 21 \(0\)"):
        validate(df.assign(loss=[3.0, 0.0]))
    with pytest.raises(InputError, match=r"duplicate run ids in column 'run' at rows 11 \('a'\)"):
        validate(df.assign(run=["a", "a"]))
    with pytest.raises(InputError, match=r"missing column 'C' in the runs frame"):
        validate(df.drop(columns="C"))
    with pytest.raises(InputError, match="no runs"):
        validate(df.iloc[:0])
    with pytest.raises(InputError, match="expected a pandas DataFrame"):
        validate({"N": [1]})


def test_sha256_frame():
    a = load_runs(good_frame()).frame
    assert sha256_frame(a) == sha256_frame(a.set_axis([5, 6, 7, 8, 9]))
    assert sha256_frame(a) != sha256_frame(a.assign(loss=a["loss"] + 1e-12))
    assert sha256_frame(a) != sha256_frame(a.rename(columns={"group": "family"}))
    assert len(sha256_frame(a)) == 64
