"""Where inputs come from: local paths and ``file://`` URIs (remote schemes come with downloads)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

from apt_uss.errors import AptUssError


def redact(uri: str) -> str:
    """``uri`` fit to print or log: any user:password@ hidden, and an http(s) URL's query string (a presigned URL's
    signature); other schemes keep theirs (``synthetic://?n_classes=10&seed=0`` says what a dataset is)."""
    text = re.sub(r"//[^/]*@", "//***@", str(uri))  # to the last @: a password may hold @
    return re.sub(r"\?.*$", "?***", text) if urlparse(text).scheme in ("http", "https") else text


def safe_name(text) -> str:
    """``text`` with every character outside ``[A-Za-z0-9._-]`` replaced by ``_``: safe in file names and S3 keys."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text))


def uri_path(uri: str) -> Path | None:
    """The local path a path or ``file://`` URI names (not checked), or None for another scheme."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        return None
    return Path(parsed.path if parsed.scheme == "file" else uri).expanduser()


def local_path(uri: str, what: str, directory: bool = False) -> Path:
    """The existing local file (or directory) a path or ``file://`` URI names.

    ``what`` names the input in the error message, e.g. ``"dataset_uri"``.
    """
    path = uri_path(uri)
    if path is None:
        raise AptUssError(f"{what}={uri!r}: only local paths and file:// URIs are supported so far")
    if directory and not path.is_dir():
        raise AptUssError(f"{what}={uri!r} is not a directory")
    if not directory and not path.is_file():
        raise AptUssError(f"{what}={uri!r} does not exist or is not a file")
    return path
