"""Atomic file writes: a reader sees the old file or the complete new one, never a part."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

#: The name of a temporary file of :func:`atomic_path`: ``.<target name>.<8 random characters>.tmp``
#: (what ``tempfile.mkstemp`` makes of its prefix and suffix).
TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


class DiskFullError(OSError):
    """Writing a file failed because its disk (or the user's quota) is full; the message names
    the file and the free space."""

    def __str__(self) -> str:
        return str(self.strerror)


#: errno values that mean "no room left": a full disk, an exhausted quota.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the same folder as ``path``; on success it is fsynced, renamed
    over ``path`` and the folder fsynced (so that a power loss cannot undo the rename); on error
    it is deleted and ``path`` is left as it was. A writer killed mid-write (``kill -9``, power
    loss) leaves its temporary file behind (named as :data:`TEMP_NAME` says);
    :func:`remove_stale_temp_files` clears those.

    Raises:
        DiskFullError: the disk or quota filled up while writing (names ``path``; every file
            melforge writes goes through here, so every one of them says so).
        OSError: any other failure of the write, fsync or rename.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _disk_full(path, exc) or exc
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
        fsync_folder(path.parent)
    except OSError as exc:
        full = _disk_full(path, exc)
        if full is not None:
            raise full from exc
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def fsync_folder(folder: Path) -> None:
    """fsync a folder, so that the entries renamed into it survive a power loss (a no-op where
    the system cannot open folders, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder; the rename is done regardless
        pass
    finally:
        os.close(fd)


def _disk_full(path: Path, exc: BaseException) -> DiskFullError | None:
    """A :class:`DiskFullError` naming ``path`` when ``exc`` says the disk is full, else ``None``."""
    if getattr(exc, "errno", None) not in NO_SPACE:
        return None
    try:
        free = f"{shutil.disk_usage(path.parent).free / 2**20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    return DiskFullError(exc.errno, f"could not write {path}: the disk is full ({free}); "
                         "free some space and run again", str(path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result over ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def remove_stale_temp_files(directory: str | os.PathLike, older_than: float | None = None) -> list[Path]:
    """Delete the temporary files of :func:`atomic_path` in ``directory`` (not below it) last
    modified before ``older_than`` (a ``time.time()``; default now), and return their paths.

    Only call it where no other process can be writing into ``directory`` (e.g. under the run
    directory's lock, :func:`melforge.core.run_dir.locked_run_dir`): such files belong to
    writers that died before renaming them.
    """
    directory = Path(directory)
    older_than = time.time() if older_than is None else older_than
    removed = []
    if not directory.is_dir():
        return removed
    for path in sorted(directory.iterdir()):
        try:
            if TEMP_NAME.match(path.name) and path.is_file() and path.stat().st_mtime < older_than:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # gone meanwhile
            continue
    return removed
