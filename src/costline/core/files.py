"""Outputs that appear whole or not at all, and input files read through their compression.

Every file or directory costline writes is first built under a temporary name beside its
target and renamed into place when complete, so an interrupted command (Ctrl-C, a full disk, a
crash) leaves the previous output or nothing, never half of one. The temporary paths still
being built are remembered: :func:`discard_pending` removes them, for a process that stops
before its ``finally`` blocks could run (the command line's Ctrl-C path).
"""

from __future__ import annotations

import gzip
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from costline.core.errors import CostlineError

_PARTIAL = ".partial-"
_pending: set[Path] = set()
_lock = threading.Lock()


def _remember(path: Path) -> None:
    with _lock:
        _pending.add(path)


def _forget(path: Path) -> None:
    with _lock:
        _pending.discard(path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(OSError):
            path.unlink()


def discard_pending(settle_s: float = 0.0) -> None:
    """Remove every output still being built (for a process about to stop). With
    ``settle_s``, once more after that long: a worker thread of an interrupted step that was
    still writing has by then failed on the removed directory or finished its write."""
    with _lock:
        paths = list(_pending)
    for path in paths:
        _remove(path)
    if settle_s > 0:
        time.sleep(settle_s)
        for path in paths:
            _remove(path)
    with _lock:
        _pending.difference_update(paths)


def _temporary(target: Path) -> Path:
    return target.with_name(f".{target.name}{_PARTIAL}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_writable(path: Path, what: str = "output") -> None:
    """Refuse, before any work, an output path that cannot be written: a directory, a missing
    or read-only parent directory."""
    if path.is_dir():
        raise CostlineError(f"{what} {path}: is a directory, not a file")
    parent = path.parent if str(path.parent) else Path()
    if not parent.is_dir():
        raise CostlineError(f"{what} {path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CostlineError(f"{what} {path}: the directory {parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise CostlineError(f"{what} {path}: the file is not writable")


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole: a temporary file beside it, renamed over it."""
    temporary = _temporary(path)
    _remember(temporary)
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        raise CostlineError(f"cannot write {path}: {_describe(exc)}") from None
    finally:
        _forget(temporary)
        with suppress(OSError):
            temporary.unlink()


def _clear_stale(target: Path) -> None:
    """Remove temporary builds of ``target`` left by processes that no longer run."""
    for stale in target.parent.glob(f".{target.name}{_PARTIAL}*"):
        pid = stale.name.rpartition(_PARTIAL)[2].partition("-")[0]
        if not pid.isdigit() or not _alive(int(pid)):
            _remove(stale)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare_directory(target: Path, *, replace: bool, what: str = "directory") -> None:
    """Refuse, before any work, a target directory :func:`build_directory` could not fill."""
    if target.exists() and not target.is_dir():
        raise CostlineError(f"{target}: is a file, not a {what}")
    if target.is_dir() and any(target.iterdir()) and not replace:
        raise CostlineError(
            f"{target}: not empty; choose a new directory or pass --force to replace it"
        )
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CostlineError(f"cannot create {parent}: {_describe(exc)}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CostlineError(f"cannot create {target}: {parent} is not writable")


@contextmanager
def build_directory(target: Path, *, replace: bool, what: str = "directory") -> Iterator[Path]:
    """Build a directory under a temporary name beside ``target``; on success it takes
    ``target``'s place (replacing a non-empty one only when ``replace``), on any error or
    interruption it is removed and ``target`` is left as it was."""
    target = Path(target).resolve()
    prepare_directory(target, replace=replace, what=what)
    _clear_stale(target)
    temporary = _temporary(target)
    _remember(temporary)
    try:
        try:
            temporary.mkdir()
        except OSError as exc:
            raise CostlineError(f"cannot create {target}: {_describe(exc)}") from None
        yield temporary
        _move_into_place(temporary, target)
    except BaseException:
        # Still remembered: threads of an interrupted build may write into it after this
        # removal, and the process's last discard_pending() removes it again.
        _remove(temporary)
        raise
    _forget(temporary)


def _move_into_place(built: Path, target: Path) -> None:
    old: Path | None = None
    try:
        if target.is_dir() and any(target.iterdir()):
            old = _temporary(target)
            os.rename(target, old)
        elif target.is_dir():
            target.rmdir()
        os.rename(built, target)
    except OSError as exc:
        if old is not None and not target.exists():
            os.rename(old, target)
        raise CostlineError(f"cannot move the new {target} into place: {_describe(exc)}") from None
    if old is not None:
        _remove(old)


def read_text(path: Path) -> str:
    """The text of ``path`` (UTF-8), decompressed when its name ends in ``.gz``."""
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as f:
                return f.read()
        return path.read_text(encoding="utf-8")
    except (OSError, EOFError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CostlineError(f"{path}: cannot read: {reason}") from None
    except UnicodeDecodeError as exc:
        raise CostlineError(f"{path}: not UTF-8 text (byte {exc.start})") from None
