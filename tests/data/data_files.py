"""Fixture files written the way the public releases ship them."""
import json


def write_rows(path, rows, fmt):
    """Write ``rows`` (dicts) as jsonl, a json list, or parquet, the way the public releases ship them."""
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "json":
        path.write_text(json.dumps(rows, indent=1))
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        raise ValueError(fmt)
    return path
