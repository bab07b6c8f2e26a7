"""Safe extraction of zip and tar archives: nothing may land outside the target folder."""

from __future__ import annotations

import logging
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from apt_uss.errors import AptUssError

log = logging.getLogger(__name__)


def _check_name(archive: Path, name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and path.parts[0].endswith(":")):
        raise AptUssError(f"{archive.name}: refusing entry {name!r}: absolute path")
    if ".." in path.parts:
        raise AptUssError(f"{archive.name}: refusing entry {name!r}: '..' would leave the target folder")


def find_layout_root(folder: Path, is_root, missing: str) -> Path:
    """``folder`` or the first folder one or two levels down for which ``is_root`` holds.

    Archives usually wrap a dataset in one or two folders of their own (``ESC-50-master/``).
    ``missing`` is the error message, with ``{folder}`` where the folder's name goes.
    """
    for candidate in [folder, *sorted(folder.glob("*/")), *sorted(folder.glob("*/*/"))]:
        if is_root(candidate):
            return candidate
    raise AptUssError(missing.format(folder=folder))


def extract_archive(archive: str | Path, dest: str | Path) -> Path:
    """Extract a zip or tar (.gz, .bz2, .xz) archive into ``dest`` after checking every entry.

    Absolute paths, ``..`` components, links and device files are refused with an error
    naming the entry; the check runs before anything is written.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                _check_name(archive, info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise AptUssError(f"{archive.name}: refusing entry {info.filename!r}: symbolic link")
            zf.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for member in members:
                _check_name(archive, member.name)
                if not (member.isfile() or member.isdir()):
                    kind = "link" if (member.issym() or member.islnk()) else "special file"
                    raise AptUssError(f"{archive.name}: refusing entry {member.name!r}: {kind}")
            tf.extractall(dest, filter="data")
    else:
        raise AptUssError(f"{archive} is neither a zip nor a tar archive")
    log.info("extracted %d entries from %s", len(members), archive.name)
    return dest
