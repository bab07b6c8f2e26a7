"""Fetching inputs by URI: local paths, ``file://``, ``https://`` and ``s3://``.

Remote files are downloaded once into a cache keyed by their sha256, resuming a partial
download where it stopped; a rerun with the same URI or checksum does not download again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from apt_uss.errors import AptUssError
from apt_uss.io.atomic import atomic_path
from apt_uss.io.paths import state_dir
from apt_uss.io.storage import explain_s3_error, parse_s3_uri, s3_client
from apt_uss.io.uris import local_path, redact

log = logging.getLogger(__name__)

CHUNK = 1 << 20


def cache_dir() -> Path:
    """``$APT_USS_CACHE``, else ``<state>/cache``."""
    return Path(os.environ.get("APT_USS_CACHE") or state_dir() / "cache")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, uri: str, expected: str) -> str:
    actual = sha256_file(path)
    if expected and actual != expected.lower():
        raise AptUssError(f"{redact(uri)}: checksum mismatch: expected sha256 {expected.lower()}, got {actual}")
    return actual


def _open_https(uri: str, start: int):
    """(chunk iterator, total size or None, True if the server resumed at ``start``)."""
    req = urllib.request.Request(uri, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        resp = urllib.request.urlopen(req, timeout=60)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # nothing left to fetch: the partial file is complete
            return iter(()), start, True
        raise AptUssError(f"{redact(uri)}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise AptUssError(f"{redact(uri)} cannot be reached: {getattr(exc, 'reason', exc)}") from None
    resumed = resp.status == 206
    length = resp.headers.get("Content-Length")
    total = (int(length) + (start if resumed else 0)) if length else None
    return iter(lambda: resp.read(CHUNK), b""), total, resumed


def _open_s3(uri: str, start: int):
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parse_s3_uri(uri)
    try:
        obj = s3_client().get_object(Bucket=bucket, Key=key, **({"Range": f"bytes={start}-"} if start else {}))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidRange" and start:
            return iter(()), start, True
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise AptUssError(f"{redact(uri)} does not exist") from None
        raise explain_s3_error(exc, bucket) from None
    except BotoCoreError as exc:
        raise explain_s3_error(exc, bucket) from None
    resumed = "ContentRange" in obj
    total = obj["ContentLength"] + (start if resumed else 0)
    return obj["Body"].iter_chunks(CHUNK), total, resumed


def _download(uri: str, partial: Path) -> None:
    opener = _open_s3 if uri.startswith("s3://") else _open_https
    start = partial.stat().st_size if partial.exists() else 0
    chunks, total, resumed = opener(uri, start)
    if start and not resumed:
        start = 0  # the server ignored the range: start over
    if start:
        log.info("resuming %s at %.1f MB", redact(uri), start / 1e6)
    done, started, last = start, time.monotonic(), 0.0
    with open(partial, "ab" if start else "wb") as fh:
        for block in chunks:
            fh.write(block)
            done += len(block)
            now = time.monotonic()
            if now - last > 5 or (total and done >= total):
                last = now
                rate = (done - start) / max(now - started, 1e-6) / 1e6
                pct = f" of {total / 1e6:.1f} MB ({100 * done / total:.0f}%)" if total else ""
                log.info("download %s: %.1f MB%s, %.1f MB/s", PurePosixPath(urlparse(uri).path).name,
                         done / 1e6, pct, rate)
    if total is not None and done != total:
        raise AptUssError(f"{redact(uri)}: download stopped at {done} of {total} bytes; run again to resume")


def fetch_uri(uri: str, sha256: str = "", what: str = "dataset_uri") -> Path:
    """A local file for ``uri``: local files as they are, remote ones from the cache.

    A checksum, when given, is checked in every case; a download that fails it is removed
    and the error names the expected and the actual digest.
    """
    scheme = urlparse(uri).scheme
    if scheme in ("", "file"):
        path = local_path(uri, what)
        _verify(path, uri, sha256)
        return path
    if scheme not in ("https", "http", "s3"):
        raise AptUssError(f"{what}={redact(uri)!r}: unsupported scheme {scheme!r}; use a path, file://, https:// or s3://")
    cache = cache_dir()
    name = PurePosixPath(urlparse(uri).path).name or "download"
    index_path = cache / "index.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    known = (sha256 or index.get(uri, "")).lower()
    if known and (cache / "sha256" / known / name).is_file():
        log.info("%s: using the cached copy (sha256 %s)", redact(uri), known)
        return cache / "sha256" / known / name
    partial = cache / "partial" / (hashlib.sha256(uri.encode()).hexdigest()[:24] + ".part")
    partial.parent.mkdir(parents=True, exist_ok=True)
    _download(uri, partial)
    try:
        digest = _verify(partial, uri, sha256)
    except AptUssError as exc:
        partial.unlink(missing_ok=True)
        raise AptUssError(f"{exc}; the download was removed") from None
    final = cache / "sha256" / digest / name
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, final)
    index[uri] = digest
    with atomic_path(index_path) as tmp:
        tmp.write_text(json.dumps(index, indent=2, sort_keys=True))
    log.info("%s: downloaded, sha256 %s", redact(uri), digest)
    return final
