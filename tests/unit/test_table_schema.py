"""Table schemas: the kind inferred for each column, the raw encoding it gives, the record kept in
model.json, and the one-line errors for columns that cannot be read. Every table is made here."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from neuroclass.config import DataConfig
from neuroclass.data import load
from neuroclass.data.schema import CALENDAR, Schema, encode, infer_schema
from neuroclass.data.table import schema_lines
from neuroclass.errors import NeuroclassError

N = 40


def crafted(n: int = N) -> pd.DataFrame:
    """One column of every kind, as pandas reads them from a CSV."""
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "weight": rng.normal(70, 9, size=n),
        "member": [True, False] * (n // 2),
        "colour": ["red", "green", "blue", "red"] * (n // 4),
        "signup": [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(n)],
        "note": [f"customer said {w} about item {i % 30}" for i, w in enumerate(["this", "that"] * (n // 2))],
        "code": [f"K{i:04d}" for i in rng.permutation(n)],
        "country": ["NL"] * n,
    })


def kinds(schema: Schema) -> dict[str, str]:
    return {c.name: c.kind.value for c in (*schema.columns, *schema.dropped)}


def test_each_column_gets_its_kind():
    schema = infer_schema(crafted(), "t.csv")
    assert kinds(schema) == {"weight": "numeric", "member": "boolean", "colour": "categorical",
                             "signup": "date", "note": "text", "code": "id", "country": "constant"}
    assert [c.name for c in schema.columns] == ["weight", "member", "colour", "signup"]
    colour = next(c for c in schema.columns if c.name == "colour")
    assert colour.categories == ("blue", "green", "red")
    reasons = {c.name: c.reason for c in schema.dropped}
    assert "free text" in reasons["note"] and "row identifier" in reasons["code"]
    assert "same value ('NL')" in reasons["country"]


def test_declared_and_kept_columns_win_over_inference():
    df = crafted()
    schema = infer_schema(df, "t.csv", declared=["note", "weight"], keep=["code"])
    got = kinds(schema)
    assert got["note"] == got["weight"] == got["code"] == "categorical"
    assert len(next(c for c in schema.columns if c.name == "code").categories) == N


def test_the_raw_encoding_holds_numbers_codes_and_calendar_features():
    df = crafted()
    df.loc[3, "weight"] = np.nan
    df.loc[5, "colour"] = np.nan
    schema = infer_schema(df, "t.csv")
    x = encode(df, schema, "t.csv")
    names = schema.encoded_names()
    assert names == ["weight", "member", "colour", *[f"signup ({f})" for f in CALENDAR]]
    assert x.dtype == np.float32 and x.shape == (N, len(names))
    assert np.isnan(x[3, 0]) and np.isnan(x[5, 2]) and np.isfinite(np.delete(x, [0, 2], axis=1)).all()
    assert x[:4, 1].tolist() == [1, 0, 1, 0]
    assert x[:4, 2].tolist() == [2, 1, 0, 2]  # red, green, blue among (blue, green, red)
    first = pd.Timestamp(df.loc[0, "signup"])
    assert x[0, 3:].tolist() == [first.year, first.month, first.day_of_year, first.day_of_week]
    missing = {c.name for c in schema.columns if c.missing}
    assert missing == {"weight", "colour"}


def test_whole_floats_and_integers_name_one_category():
    train = pd.DataFrame({"grade": [1.0, 2.0, np.nan, 3.0] * 5})
    schema = infer_schema(train, "t.csv", declared=["grade"])
    assert schema.columns[0].categories == ("1", "2", "3")
    x = encode(pd.DataFrame({"grade": [3, 1]}), schema, "rows.csv")  # read without gaps: integers
    assert x[:, 0].tolist() == [2, 0]


def test_an_unseen_category_is_minus_one_with_one_warning_per_column():
    schema = infer_schema(crafted(), "t.csv")
    rows = crafted(8)
    rows.loc[[1, 2, 6], "colour"] = ["teal", "teal", "mauve"]
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        x = encode(rows, schema, "rows.csv")
    assert x[[1, 2, 6], 2].tolist() == [-1, -1, -1]
    lines = [str(w.message) for w in said]
    # rows.csv is no file here: the rows are named by their data row, counted from 1
    assert lines == ["rows.csv: column 'colour' holds 2 categories not seen in training: 'teal' at data row 2 "
                     "and data row 3; 'mauve' at data row 7; encoded as none of the known ones"]


def test_dates_drop_leaves_them_out_and_says_so():
    df = crafted()
    schema = infer_schema(df, "t.csv", dates="drop")
    assert "signup" not in [c.name for c in schema.columns]
    assert "data.dates=drop" in next(c.reason for c in schema.dropped if c.name == "signup")
    lines = schema_lines("t.csv", schema)
    assert lines[-1] == "t.csv: dates signup left out (data.dates=drop)"
    kept = schema_lines("t.csv", infer_schema(df, "t.csv"))
    assert kept[0].startswith("t.csv: 4 feature columns: numeric weight; boolean member; categorical "
                              "colour (3 categories); date signup")
    assert "calendar features (year, month, day of year, weekday)" in kept[1]


def test_a_datetime_column_is_a_date_and_mixed_offsets_parse():
    df = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=N, freq="D"),
                       "stamp": ["2024-03-01T10:00+01:00", "2024-03-02T10:00-05:00"] * (N // 2)})
    schema = infer_schema(df, "t.parquet")
    assert kinds(schema) == {"when": "date", "stamp": "date"}
    assert np.isfinite(encode(df, schema, "t.parquet")).all()


def test_the_record_round_trips_through_json():
    schema = infer_schema(crafted(), "t.csv")
    again = Schema.from_record(json.loads(json.dumps(schema.to_record())), "model.json")
    assert again == schema
    record = schema.to_record()
    assert record["columns"][3] == {"name": "signup", "kind": "date", "features": list(CALENDAR)}
    assert {"name": "code", "kind": "id"}.items() <= record["dropped"][1].items()
    with pytest.raises(NeuroclassError, match="model.json: the table record is damaged"):
        Schema.from_record({"columns": [{"name": "x", "kind": "colour"}]}, "model.json")


# ----------------------------------------------------------------------------- the loader

def write(tmp_path, df, name="t.csv"):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def test_load_gives_raw_rows_with_nan_and_records_the_schema(tmp_path):
    df = crafted()
    df.loc[7, "weight"] = np.nan
    df["label"] = ["a", "b"] * (N // 2)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        ds = load(DataConfig(source=str(write(tmp_path, df)), label_column="label"))
    assert ds.kind == "table" and tuple(ds.x.shape) == (N, 7) and bool(ds.x[7, 0].isnan())
    table = ds.preprocessing["table"]
    assert [c["kind"] for c in table["columns"]] == ["numeric", "boolean", "categorical", "date"]
    assert table["columns"][0]["missing"] is True
    assert {c["name"] for c in table["dropped"]} == {"note", "code", "country"}
    assert {c.name for c in ds.issues.dropped_columns} == {"note", "code", "country"}
    text = [str(w.message) for w in said]
    assert len(text) == 3 and any("free text" in t and "data.categorical=[note]" in t for t in text)
    assert any("column 'code'" in t and "data.keep_columns=code" in t for t in text)


@pytest.mark.parametrize("column, values, words", [
    ("empty", [np.nan] * N, ["column 'empty' is empty (all 40 rows missing)", "remove the column"]),
    ("age", [str(v) for v in range(18)] + ["unknown"] + [str(v) for v in range(21)],
     ["column 'age' is not numeric", "line 20 (data row 19) holds 'unknown'", "data.missing",
      "data.categorical=[age]"]),
])
def test_unreadable_feature_columns_are_refused_naming_column_and_row(tmp_path, column, values, words):
    df = pd.DataFrame({"x": np.arange(N, dtype=float), column: values, "label": ["a", "b"] * (N // 2)})
    with pytest.raises(NeuroclassError) as err:
        load(DataConfig(source=str(write(tmp_path, df)), label_column="label"))
    message = str(err.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_missing_error_counts_the_rows_and_names_the_first(tmp_path):
    df = pd.DataFrame({"x": np.arange(N, dtype=float), "label": ["a", "b"] * (N // 2)})
    df.loc[[8, 20, 30], "x"] = np.nan
    path = write(tmp_path, df)
    with pytest.raises(NeuroclassError) as err:
        load(DataConfig(source=str(path), label_column="label", missing="error"))
    assert str(err.value) == (f"{path}: column 'x' has a missing value in 3 rows (first at line 10 (data row 9)); "
                              "fill them in, or train with --set data.missing=impute to have missing values "
                              "filled from the training split")
    assert load(DataConfig(source=str(path), label_column="label")).x[8, 0].isnan()


def test_predicting_rows_with_bad_cells_names_column_and_row():
    schema = infer_schema(crafted(), "t.csv")
    rows = crafted(4)
    for column, bad, words in [("weight", "heavy", "column 'weight' is not numeric (data row 2 holds 'heavy')"),
                               ("signup", "soon", "column 'signup' holds dates but data row 2 holds 'soon'"),
                               ("member", "maybe", "column 'member' holds true/false values but data row 2")]:
        broken = rows.astype({column: object})
        broken.loc[1, column] = bad
        with pytest.raises(NeuroclassError) as err:
            encode(broken, schema, "rows.parquet")
        assert words in str(err.value)
    with pytest.raises(NeuroclassError, match=r"missing feature column\(s\) colour"):
        encode(rows.drop(columns=["colour"]), schema, "rows.parquet")
    infinite = rows.copy()
    infinite.loc[2, "weight"] = np.inf
    with pytest.raises(NeuroclassError, match=r"column 'weight' is infinite \(inf\) at data row 3"):
        encode(infinite, schema, "rows.parquet")
