"""Reading dataset files: (line number, record) pairs from .jsonl/.jsonl.gz, .json arrays and .parquet files."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Iterator

from cluster.data.problem import BadRecord, DatasetError



def read_records(path: Path) -> Iterator[tuple[int, dict | BadRecord]]:
    """Yield (line number, record) for .jsonl/.jsonl.gz (1-based lines), .json arrays or .parquet (1-based row).

    A line that is not a JSON object yields a BadRecord instead; an unreadable file raises DatasetError.
    """
    if path.suffix == ".parquet":
        yield from _parquet_records(path)
        return
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, list):
                raise DatasetError(f"{path}: expected a JSON array of records, got {type(data).__name__}")
            for i, rec in enumerate(data, 1):
                yield i, rec if isinstance(rec, dict) else BadRecord(f"record is {type(rec).__name__}, not object")
            return
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line.rstrip("\r\n"))  # so the column reported is on this line
                except json.JSONDecodeError as e:
                    yield line_no, BadRecord(f"malformed JSON ({e.msg} at column {e.colno})")
                    continue
                yield line_no, rec if isinstance(rec, dict) else BadRecord(f"line is {type(rec).__name__}, not object")
    except (OSError, EOFError, UnicodeDecodeError, zlib.error, json.JSONDecodeError) as e:
        raise DatasetError(f"cannot read dataset file {path}: {type(e).__name__}: {e}") from e


def _parquet_records(path: Path) -> Iterator[tuple[int, dict]]:
    import pyarrow  # a dependency of `datasets`; only parquet files need it
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except (OSError, pyarrow.ArrowException) as e:
        raise DatasetError(f"cannot read dataset file {path}: {type(e).__name__}: {e}") from e
    yield from enumerate(rows, 1)
