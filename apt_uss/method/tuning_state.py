"""Per-epoch tuning state, kept where a restarted task finds it (a local folder or an S3 prefix).

A KFP retry starts the tuning task again in a fresh pod: its local disk is gone, but the
pipeline run's name is the same. So the state lives under a URI derived from that name,
and each state records a fingerprint of everything that decides the result (inputs,
hyper-parameters, backbone); state from a different computation is never resumed.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from apt_uss.io.atomic import atomic_path
from apt_uss.io.storage import explain_s3_error, parse_s3_uri, s3_client

log = logging.getLogger(__name__)

STATE_FILE = "tune_state.pt"


def fingerprint(initial: np.ndarray, train_mixtures: pd.DataFrame, settings: dict) -> str:
    """sha256 over the initial prompts, the training mixture table and the settings."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(initial, dtype=np.float32).tobytes())
    h.update(train_mixtures.to_csv(index=False).encode())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()


class EpochState:
    """Load and save the tuning state at ``uri`` (a folder path, ``file://`` or ``s3://`` prefix)."""

    def __init__(self, uri: str, fingerprint: str):
        self.uri = uri.rstrip("/")
        self.fingerprint = fingerprint
        self.is_s3 = self.uri.startswith("s3://")
        if not self.is_s3:
            self.path = Path(self.uri.removeprefix("file://")) / STATE_FILE

    def _read_bytes(self) -> bytes | None:
        if not self.is_s3:
            return self.path.read_bytes() if self.path.exists() else None
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, prefix = parse_s3_uri(self.uri)
        try:
            return s3_client().get_object(Bucket=bucket, Key=f"{prefix}/{STATE_FILE}")["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise explain_s3_error(exc, bucket) from None
        except BotoCoreError as exc:
            raise explain_s3_error(exc, bucket) from None

    def load(self) -> dict | None:
        """The saved state if it belongs to this computation, else None (and say why)."""
        data = self._read_bytes()
        if data is None:
            return None
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:  # a torn or foreign file: start over rather than fail the retry
            log.warning("tuning state at %s is unreadable (%s); starting from epoch 1", self.uri, exc)
            return None
        if state.get("fingerprint") != self.fingerprint:
            log.warning("tuning state at %s is from different inputs or settings; starting from epoch 1", self.uri)
            return None
        return state

    def save(self, state: dict) -> None:
        buffer = io.BytesIO()
        torch.save(dict(state, fingerprint=self.fingerprint), buffer)
        if not self.is_s3:
            with atomic_path(self.path) as tmp:
                tmp.write_bytes(buffer.getvalue())
            return
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, prefix = parse_s3_uri(self.uri)
        try:  # one PUT replaces the object whole: a reader never sees half a state
            s3_client().put_object(Bucket=bucket, Key=f"{prefix}/{STATE_FILE}", Body=buffer.getvalue())
        except (ClientError, BotoCoreError) as exc:
            raise explain_s3_error(exc, bucket) from None
