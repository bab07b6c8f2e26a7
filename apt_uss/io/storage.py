"""S3 artifact storage (prompts, metrics tables). Endpoint and keys come from the standard AWS variables; where no
endpoint is set, from the local S3 server's file (``make s3-up`` writes ``<state>/s3/s3.env``), as the Makefile
reads it, so every command finds the server the pipeline wrote to."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from urllib.parse import urlparse

from apt_uss.errors import AptUssError
from apt_uss.io.paths import state_dir

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def local_s3_env_file() -> Path:
    """The local S3 server's endpoint and keys (mode 600), written by ``make s3-up``."""
    return state_dir() / "s3" / "s3.env"


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of a file ({} when there is none)."""
    if not Path(path).is_file():
        return {}
    pairs = (line.split("=", 1) for line in Path(path).read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def s3_settings(environ=os.environ) -> dict[str, str]:
    """The ``AWS_*`` settings S3 calls use: the environment's, or where it names no endpoint, the local server's file
    (its endpoint and keys; the environment's other keys are not mixed in)."""
    if environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL"):
        return {k: v for k, v in environ.items() if k.startswith("AWS_")}
    local = read_env_file(local_s3_env_file())
    if local:
        return local
    return {k: v for k, v in environ.items() if k.startswith("AWS_")}


def s3_endpoint() -> str | None:
    settings = s3_settings()
    return settings.get("AWS_ENDPOINT_URL_S3") or settings.get("AWS_ENDPOINT_URL") or None


def _credentials_source() -> str:
    if not (os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")) \
            and read_env_file(local_s3_env_file()):
        return f"the local S3 server's file {local_s3_env_file()}"
    return "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"


def s3_client():
    import boto3
    from botocore.config import Config

    settings = s3_settings()
    # A fresh session with the keys given here; boto3's default session caches the first ones it saw.
    return boto3.session.Session(aws_access_key_id=settings.get("AWS_ACCESS_KEY_ID"),
                                 aws_secret_access_key=settings.get("AWS_SECRET_ACCESS_KEY"),
                                 aws_session_token=settings.get("AWS_SESSION_TOKEN")).client(
        "s3", endpoint_url=s3_endpoint(),
        region_name=settings.get("AWS_DEFAULT_REGION") or settings.get("AWS_REGION") or "us-east-1",
        config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"},
                      s3={"addressing_style": "path"}),
    )


def parse_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise AptUssError(f"artifact_uri={uri!r} is not valid: use s3://<bucket>[/<prefix>]")
    return parsed.netloc, parsed.path.strip("/")


def explain_s3_error(exc: Exception, bucket: str) -> AptUssError:
    """A one-line message for S3 failures; never includes credentials."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    where = s3_endpoint() or "AWS S3 (no AWS_ENDPOINT_URL set)"
    if isinstance(exc, EndpointConnectionError):
        return AptUssError(f"S3 endpoint {where} does not answer: start it (make s3-up) or set AWS_ENDPOINT_URL")
    if isinstance(exc, NoCredentialsError):
        return AptUssError(f"no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for {where}, or "
                           f"start the local S3 server (make s3-up), which keeps its endpoint and keys in "
                           f"{local_s3_env_file()}")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "?")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "InvalidToken"):
            return AptUssError(f"S3 at {where} rejected the credentials from {_credentials_source()} ({code})")
        return AptUssError(f"S3 at {where} refused bucket {bucket!r}: {code}")
    return AptUssError(f"S3 at {where} failed: {type(exc).__name__}: {exc}")


def ensure_bucket(artifact_uri: str) -> None:
    """Check that the endpoint answers and the keys work; create the bucket if it is missing."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _ = parse_s3_uri(artifact_uri)
    client = s3_client()
    try:
        client.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise explain_s3_error(exc, bucket) from None
    except BotoCoreError as exc:
        raise explain_s3_error(exc, bucket) from None
    try:
        client.create_bucket(Bucket=bucket)
        log.info("created bucket %s", bucket)
    except (ClientError, BotoCoreError) as exc:
        raise explain_s3_error(exc, bucket) from None


def upload_run_files(artifact_uri: str, run_key: str, files: dict[str, str | Path]) -> dict[str, str]:
    """Upload ``files`` (name -> local path) under ``<artifact_uri>/<run_key>/``; return their URIs.

    The manifest listing every object is written last: a reader that finds it knows the
    set is complete.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = parse_s3_uri(artifact_uri)
    base = "/".join(p for p in (prefix, run_key) if p)
    client = s3_client()
    uris = {}
    try:
        for name, path in files.items():
            key = f"{base}/{name}"
            client.upload_file(str(path), bucket, key)
            uris[name] = f"s3://{bucket}/{key}"
        client.put_object(Bucket=bucket, Key=f"{base}/{MANIFEST}",
                          Body=json.dumps({"files": uris}, indent=2).encode())
    except (ClientError, BotoCoreError) as exc:
        raise explain_s3_error(exc, bucket) from None
    log.info("uploaded %d files to s3://%s/%s/", len(uris), bucket, base)
    return uris


def download(uri: str, path: str | Path) -> Path:
    """Fetch one ``s3://`` object to ``path``."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parse_s3_uri(uri)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        s3_client().download_file(bucket, key, str(path))
    except (ClientError, BotoCoreError) as exc:
        raise explain_s3_error(exc, bucket) from None
    return path
