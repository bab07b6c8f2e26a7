"""Write outputs so that they appear complete or not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; move it onto ``path`` only if the block succeeds.

    Works for files and directories alike: the caller creates whatever it likes at
    the yielded path. A failure leaves ``path`` as it was and removes the temporary.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    staged = tmp / final.name
    try:
        yield staged
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(staged, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
