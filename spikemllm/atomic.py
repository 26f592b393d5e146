"""Writing outputs so that nothing is ever half-written, lost or mixed between two runs.

Three mechanisms, shared by :func:`spikemllm.save` and every command that writes a run folder:

* :func:`atomic_write_bytes` / :func:`atomic_write_text`: one file, written under a unique temporary name in
  the same folder, flushed, then ``os.replace``-d over the target. Readers see the old file or the new one,
  never a torn one, and two writers never share a temporary name.
* :func:`staging_folder` + :func:`swap_in`: a whole folder (a checkpoint, a run's outputs) is written into
  a hidden sibling ``.<name>.spikemllm-tmp-<token>``, then swapped in: the old folder is renamed aside to
  ``.<name>.spikemllm-old-<token>``, the new one renamed in, the old one removed. A process killed at any
  point leaves either the old folder in place, or the old folder aside and the new one staged;
  :func:`recover_leftovers` (called by the next writer, and by a loader) puts the old one back or removes
  what is left over, and says so in one log line.
* :class:`TargetLock`: ``.<name>.lock`` beside the target, holding the owner's pid under an exclusive
  ``flock``. A second writer is refused at once; a lock left by a killed process is taken over (the kernel
  releases ``flock`` when its holder dies) with a one-line note. Recovery runs only under this lock, so it
  never removes the staging folder of a live writer.

Everything created here follows the process umask (``mkstemp``/``mkdtemp`` alone would give 0600/0700).
"""
from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import OutputError
from .logs import get_logger

log = get_logger(__name__)

TMP_TAG = "spikemllm-tmp"
OLD_TAG = "spikemllm-old"


def umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux: /proc/self/status)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but only a fallback)
    os.umask(mask)
    return mask


def follow_umask(path: str | os.PathLike, folder: bool = False) -> None:
    """Give ``path`` the mode a plain ``open``/``mkdir`` would have given it (0666/0777 minus the umask)."""
    os.chmod(path, (0o777 if folder else 0o666) & ~umask())


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (checkpoint manifests and run.json record these)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(folder: Path) -> None:
    """Persist a folder's entries (a rename) on file systems that need it; a no-op where it is not allowed."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a unique temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        follow_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _leftover_re(name: str) -> re.Pattern[str]:
    # The token has no dots, so the leftovers of a target "a" never match those of "a.spikemllm-tmp-x".
    return re.compile(rf"^\.{re.escape(name)}\.({TMP_TAG}|{OLD_TAG})-[A-Za-z0-9_]+$")


def leftovers(target: Path) -> Iterator[tuple[str, Path]]:
    """``("tmp" | "old", path)`` for each staging or aside folder of ``target`` left by an interrupted write."""
    pattern = _leftover_re(target.name)
    try:
        names = sorted(os.listdir(target.parent))
    except OSError:
        return
    for n in names:
        m = pattern.match(n)
        if m:
            yield ("tmp" if m.group(1) == TMP_TAG else "old"), target.parent / n


def staging_folder(target: Path) -> Path:
    """A new, empty hidden sibling of ``target`` to write into (then :func:`swap_in`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{TMP_TAG}-{os.getpid()}_", dir=target.parent))
    follow_umask(tmp, folder=True)
    return tmp


def sync_tree(folder: Path) -> None:
    """fsync every file and folder under ``folder``: the data is on disk before a rename publishes it."""
    for root, _dirs, files in os.walk(folder):
        for n in files:
            fd = os.open(os.path.join(root, n), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))


def swap_in(staged: Path, target: Path) -> None:
    """Replace ``target`` (if any) by the folder ``staged``: rename the old aside, the new in, remove the old."""
    sync_tree(staged)
    if target.exists() or target.is_symlink():
        aside = target.parent / f".{target.name}.{OLD_TAG}-{os.getpid()}_{secrets.token_hex(4)}"
        os.rename(target, aside)
        os.rename(staged, target)
        _fsync_dir(target.parent)
        shutil.rmtree(aside)
    else:
        os.rename(staged, target)
        _fsync_dir(target.parent)


def recover_leftovers(target: Path) -> list[str]:
    """Clean up after writes of ``target`` that were killed; call it holding :class:`TargetLock`.

    The previous version renamed aside comes back when the target is missing (killed between the two
    renames of :func:`swap_in`); any other aside or staging folder is removed. Each action is logged as one
    warning line; the lines are also returned.
    """
    notes: list[str] = []
    found = list(leftovers(target))
    olds = sorted((p for kind, p in found if kind == "old"), key=lambda p: p.stat().st_mtime, reverse=True)
    if olds and not (target.exists() or target.is_symlink()):
        os.rename(olds[0], target)
        notes.append(f"restored {target} from {olds[0].name}, left aside by an interrupted write")
        olds = olds[1:]
    for p in olds:
        shutil.rmtree(p, ignore_errors=True)
        notes.append(f"removed {p}: an old version of {target.name} left aside by an interrupted write")
    for kind, p in found:
        if kind == "tmp":
            shutil.rmtree(p, ignore_errors=True)
            notes.append(f"removed {p}: a partial write of {target.name} left by an interrupted run")
    for n in notes:
        log.warning(n)
    return notes


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class TargetLock:
    """Exclusive ownership of an output target for one process: ``.<name>.lock`` beside it, holding the pid.

    ``flock`` does the locking, so a killed holder never blocks anyone; the pid in the file is what the
    refusal message and the take-over note show. Use as a context manager, or :meth:`acquire` /
    :meth:`release`. ``what`` names the target in messages (``"--out runs/demo"``).
    """

    def __init__(self, target: str | os.PathLike, what: str | None = None) -> None:
        self.target = Path(target)
        self.path = self.target.parent / f".{self.target.name}.lock"
        self.what = what or str(self.target)
        self._fd: int | None = None

    def acquire(self) -> "TargetLock":
        import fcntl  # POSIX; spikemllm's outputs are locked the same way on Linux and macOS

        self.target.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = _read_pid(fd)
                os.close(fd)
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                raise OutputError(f"{self.what} is in use by another spikemllm run (pid {holder or '?'}, lock "
                                  f"{self.path}); wait for it to finish or choose another output") from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder removed the file between our open and our lock: lock the new one
                os.close(fd)
                continue
            previous = _read_pid(fd)
            if previous and previous != os.getpid():
                state = "no longer running" if not _pid_alive(previous) else "not holding it"
                log.warning(f"took over the stale lock {self.path} of pid {previous} ({state})")
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._fd = fd
            return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still holding it: a waiter re-checks the inode
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "TargetLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        raw = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(raw) if raw else None
    except (OSError, ValueError):
        return None


__all__ = ["TargetLock", "atomic_write_bytes", "atomic_write_text", "follow_umask", "leftovers",
           "recover_leftovers", "sha256_file", "staging_folder", "swap_in", "sync_tree", "umask"]
