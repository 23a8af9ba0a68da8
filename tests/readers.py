"""Reads every table of a spatialsv dataset's latest version with three independent Parquet
readers (pyarrow, DuckDB, Polars) and checks column names and row counts against the
manifest. Usage: python3 tests/readers.py DATASET TABLE=col1,col2,... [TABLE=...]

Prints one line per reader and table; exits non-zero on the first disagreement.
Needs: pip install pyarrow duckdb polars
"""
import glob
import json
import os
import sys

import duckdb
import polars as pl
import pyarrow.parquet as pq


def main() -> int:
    root = sys.argv[1]
    expected = dict(arg.split("=", 1) for arg in sys.argv[2:])
    manifests = sorted(glob.glob(os.path.join(root, "_spatialsv/manifests/v*.json")))
    with open(manifests[-1]) as f:
        manifest = json.load(f)
    for table, cols in expected.items():
        cols = cols.split(",")
        files = [os.path.join(root, d["path"]) for d in manifest["tables"][table]["files"]]
        rows = sum(d["rows"] for d in manifest["tables"][table]["files"])

        t = pq.ParquetDataset(files, partitioning=None).read()
        check("pyarrow", table, t.column_names, t.num_rows, cols, rows)

        con = duckdb.connect()
        rel = con.sql(f"SELECT * FROM read_parquet({files!r}, hive_partitioning = false)")
        n = con.sql(f"SELECT count(*) FROM read_parquet({files!r})").fetchall()[0][0]
        check("duckdb", table, rel.columns, n, cols, rows)

        df = pl.read_parquet(files)
        check("polars", table, df.columns, df.height, cols, rows)
    return 0


def check(reader, table, got_cols, got_rows, cols, rows):
    if list(got_cols) != cols or got_rows != rows:
        print(f"{reader} {table}: got {got_rows} rows, columns {list(got_cols)}; "
              f"expected {rows} rows, columns {cols}")
        sys.exit(1)
    print(f"{reader} {table}: {got_rows} rows, {len(got_cols)} columns ok")


if __name__ == "__main__":
    sys.exit(main())
