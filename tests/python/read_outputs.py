"""Reads stackcrawl's outputs as docs/outputs.md says to, with pandas and
with Dask, and checks every column's dtype: tests/parquet_output.rs runs it
on a crawl's JSONL, CSV and Parquet output when pandas, pyarrow and Dask
import. The recipes below are the documented ones, kept word for word.

usage: read_outputs.py QUESTIONS.jsonl QUESTIONS.csv QUESTIONS.parquet
"""

import sys

import dask
import dask.dataframe as dd
import pandas as pd

# --- recipe (docs/outputs.md) -------------------------------------------
S, I, N, B = "string", "int64", "Int64", "bool"
DTYPES = {"site": S, "question_id": I, "url": S, "title": S, "excerpt": S,
          "votes": I, "answers": I, "replies": N, "views": I, "views_exact": B,
          "tags": S, "has_accepted_answer": B, "author_name": S,
          "author_reputation": N, "asked_at": S, "modified_at": S,
          "answered_at": S, "bounty": N, "status": S, "post_kind": S,
          "community_wiki": B, "tag": S, "tab": S, "page": I, "fetched_at": S,
          "author_user_id": N, "author_has_profile": B, "author_action": S}
TIMES = ["asked_at", "modified_at", "answered_at", "fetched_at"]
CSV = dict(dtype=DTYPES, keep_default_na=False, na_values=[""])
JSON = dict(lines=True,
            dtype={k: v for k, v in DTYPES.items() if k != "tags"})


def typed(df):
    """Times to UTC timestamps; CSV's ';'-joined tags to lists."""
    for c in TIMES:
        df[c] = pd.to_datetime(df[c], utc=True, format="ISO8601").astype(
            "datetime64[us, UTC]")
    if df["tags"].dtype != object:
        df["tags"] = df["tags"].str.split(";")
    return df


def pandas_csv(path):
    return typed(pd.read_csv(path, **CSV))


def dask_csv(path):
    meta = typed(pd.read_csv(path, nrows=0, **CSV))
    return dd.read_csv(path, **CSV).map_partitions(typed, meta=meta)


def pandas_jsonl(path):
    return typed(pd.read_json(path, **JSON))


def dask_jsonl(path):
    # Dask would turn the lists of `tags` into strings.
    with dask.config.set({"dataframe.convert-string": False}):
        meta = typed(pd.read_json(path, nrows=1, **JSON)).head(0)
        return dd.read_json(path, **JSON).map_partitions(typed, meta=meta)


def pandas_parquet(path):
    return pd.read_parquet(path)


def dask_parquet(path):
    return dd.read_parquet(path)
# --- end of recipe -------------------------------------------------------


WANT = {"question_id": "int64", "votes": "int64", "answers": "int64",
        "replies": "Int64", "views": "int64", "views_exact": "bool",
        "has_accepted_answer": "bool", "author_reputation": "Int64",
        "asked_at": "datetime64[us, UTC]", "modified_at": "datetime64[us, UTC]",
        "answered_at": "datetime64[us, UTC]", "bounty": "Int64",
        "community_wiki": "bool", "page": "int64",
        "fetched_at": "datetime64[us, UTC]", "author_user_id": "Int64",
        "author_has_profile": "bool"}
TEXT = ["site", "url", "title", "excerpt", "author_name", "status",
        "post_kind", "tag", "tab", "author_action"]


def check(name, df, reference):
    assert list(df.columns) == list(reference.columns), (name, list(df.columns))
    for col, want in WANT.items():
        assert str(df[col].dtype) == want, (name, col, str(df[col].dtype), want)
    for col in TEXT:
        assert pd.api.types.is_string_dtype(df[col].dtype), (name, col, df[col].dtype)
    tags = df["tags"].iloc[0]
    assert [str(t) for t in tags] == [str(t) for t in reference["tags"].iloc[0]], (name, tags)
    assert len(tags) >= 1 and not isinstance(tags, str), (name, tags)
    assert len(df) == len(reference), (name, len(df), len(reference))
    for col in WANT:
        assert df[col].equals(reference[col]), (name, col)


def main():
    jsonl, csv, parquet = sys.argv[1:4]
    reference = pandas_parquet(parquet)
    for name, read, path in [
        ("pandas parquet", pandas_parquet, parquet),
        ("pandas csv", pandas_csv, csv),
        ("pandas jsonl", pandas_jsonl, jsonl),
        ("dask parquet", dask_parquet, parquet),
        ("dask csv", dask_csv, csv),
        ("dask jsonl", dask_jsonl, jsonl),
    ]:
        df = read(path)
        if isinstance(df, dd.DataFrame):
            lazy = df
            df = df.compute()
            # What Dask plans with is what it computes.
            for col in WANT:
                assert str(lazy[col].dtype) == str(df[col].dtype), (name, col)
        check(name, df, reference)
        print(name, "ok", len(df), "rows")


main()
