"""Reading the CSV tables and JSON records steps hand each other, with errors that name what was expected.

A step given the wrong folder or file (a path typed by hand, an artifact of another step) stops with one line naming
the artifact, the path and what is wrong with it, instead of a traceback from pandas or the json module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from apt_uss.errors import AptUssError


def _existing_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if path.is_dir():
        raise AptUssError(f"{what} {path} is a folder, not a file")
    if not path.is_file():
        where = path.parent
        hint = "" if where.is_dir() else f" (nor does the folder {where})"
        raise AptUssError(f"{what} {path} does not exist{hint}")
    return path


def read_table(path: str | Path, what: str, columns: Iterable[str] = (), keep_default_na: bool = False) -> pd.DataFrame:
    """The CSV table at ``path`` (``what`` it is, for the errors: "the splits table"); a missing, empty or unreadable
    file, or one without every name in ``columns``, is an ``AptUssError`` naming ``what`` and ``path``.
    ``keep_default_na`` as in ``pandas.read_csv`` (False: an empty cell stays an empty string)."""
    path = _existing_file(path, what)
    try:
        table = pd.read_csv(path, keep_default_na=keep_default_na)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise AptUssError(f"{what} {path} is not a CSV table: {str(exc).splitlines()[0]}") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise AptUssError(f"{what} {path} lacks the column(s) {', '.join(missing)} (it has "
                          f"{', '.join(map(str, table.columns)) or 'none'})")
    return table


def read_record(path: str | Path, what: str, keys: Iterable[str] = ()) -> dict:
    """The JSON object at ``path``; a missing or unreadable file, one that holds no object, or one without every name
    in ``keys`` is an ``AptUssError`` naming ``what`` and ``path``."""
    path = _existing_file(path, what)
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AptUssError(f"{what} {path} is not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise AptUssError(f"{what} {path} holds a JSON {type(record).__name__}, not an object")
    missing = [k for k in keys if k not in record]
    if missing:
        raise AptUssError(f"{what} {path} lacks {', '.join(missing)}")
    return record
