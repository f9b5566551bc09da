"""The host side of a sandbox's /mnt/data: a directory the sandboxed code controls.

Everything here assumes the directory's contents are hostile. Code in the sandbox can
put a symlink to ``/etc/shadow`` where the host expects a file, a FIFO that blocks a
reader forever, or swap a directory for a symlink between two host calls. So every
path is walked one component at a time from an open directory descriptor with
``O_NOFOLLOW``; only regular files are read, opened non-blocking; files are written
to a fresh temporary name and renamed into place (a rename replaces a planted
symlink instead of writing through it).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidFilename

__all__ = ["MOUNT", "FileStat", "Scan", "Workspace", "name_problem", "sanitize_filename", "shown"]

MOUNT = "/mnt/data"
MAX_DEPTH = 8
MAX_ENTRIES = 5000
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def name_problem(name: str) -> str | None:
    """Why a name found in /mnt/data cannot be a file's name on the host, or None."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8"
    if any(_control(c) for c in name):
        return "its name contains control characters"
    return None


def _control(c: str) -> bool:
    return ord(c) < 32 or 127 <= ord(c) < 160


def shown(name: str) -> str:
    """A name as it may be printed: undecodable bytes and control characters escaped."""
    raw = os.fsencode(name).decode("utf-8", "backslashreplace")
    return "".join(c if 32 <= ord(c) < 127 or ord(c) >= 160 else repr(c)[1:-1] for c in raw)


def sanitize_filename(name: str) -> str:
    """A user-given name -> a safe relative path under /mnt/data (``a.csv``, ``dir/a.csv``).

    Accepts ``/mnt/data/x`` (clients send it), rejects traversal, other absolute paths,
    NUL and control characters, and empty names.
    """
    original = name
    if "\x00" in name:
        raise InvalidFilename(original, "it contains a NUL byte")
    if any(_control(c) for c in name):  # as name_problem: a scan would not see it
        raise InvalidFilename(original, "it contains control characters")
    if name.startswith(MOUNT + "/"):
        name = name[len(MOUNT) + 1 :]
    if name.startswith("/"):
        raise InvalidFilename(original, f"absolute paths outside {MOUNT} are not allowed")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts:
        raise InvalidFilename(original, "it is empty")
    if ".." in parts:
        raise InvalidFilename(original, f"'..' would leave {MOUNT}")
    if len(parts) > MAX_DEPTH or any(len(p.encode()) > 255 for p in parts):
        raise InvalidFilename(original, "it is too long or too deep")
    return "/".join(parts)


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    blocks: int = 0  # 512-byte blocks allocated: less than size in a sparse file

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_blocks)

    @property
    def sparse(self) -> bool:
        """More than 64 KiB of the file's length is not on disk (holes)."""
        return self.size > self.blocks * 512 + 65536


@dataclass
class Scan:
    """What a scan of /mnt/data found."""

    files: dict[str, FileStat] = field(default_factory=dict)  # relative path -> stat
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (shown path, why)
    truncated: bool = False  # more entries than MAX_ENTRIES: the rest were not looked at

    def same(self, other: Scan) -> bool:
        """Nothing to collect between this scan and ``other`` (a later one)."""
        return (
            not other.truncated
            and other.files == self.files
            and set(other.rejected) <= set(self.rejected)
        )


class Workspace:
    """Safe operations on one session's data directory (mounted at /mnt/data)."""

    def __init__(self, root: Path, owner: tuple[int, int] | None = None) -> None:
        self.root = root
        self.owner = owner  # (uid, gid) to give new files and dirs, when we may chown

    def create(self) -> None:
        """Make the root (the session's disk makes it for real sandboxes)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._chown(str(self.root))

    # -- walking -------------------------------------------------------------------

    @contextmanager
    def _dir(self, parts: list[str], create: bool = False) -> Iterator[int]:
        """An fd of root/parts..., never following a symlink on the way."""
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for i, part in enumerate(parts):
                if create:
                    try:
                        os.mkdir(part, 0o755, dir_fd=fd)
                        self._chown(part, dir_fd=fd)
                    except FileExistsError:
                        pass
                try:
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if create and exc.errno in (errno.ENOTDIR, errno.ELOOP):
                        where = "/".join(parts[: i + 1])
                        raise InvalidFilename(
                            "/".join(parts), f"{where!r} is a file or a link, not a directory"
                        ) from None
                    raise
                os.close(fd)
                fd = nxt
            yield fd
        finally:
            os.close(fd)

    def _chown(self, path: str, dir_fd: int | None = None) -> None:
        if self.owner is not None and os.geteuid() == 0:
            os.chown(path, *self.owner, dir_fd=dir_fd, follow_symlinks=False)

    def scan(self, limit: int = MAX_ENTRIES, dir_bytes: int = 0) -> Scan:
        """Regular files under the root (relative paths), skipping dot-files and links.

        Bounded in depth and entries (``limit``), so a hostile tree cannot make it slow;
        ``dir_bytes`` (0: any) also gives up (``truncated``) on a directory larger than
        that, whose reading costs its size even when it holds few entries (a directory
        never shrinks after its entries are deleted). Names that are not valid UTF-8 or
        hold control characters are rejected, with their subtree."""
        scan = Scan()
        budget = [min(limit, MAX_ENTRIES), dir_bytes]
        try:
            fd = os.open(self.root, _DIR_FLAGS)
        except OSError:
            return scan
        self._scan(fd, "", 0, scan, budget)
        return scan

    def _scan(self, fd: int, prefix: str, depth: int, out: Scan, budget: list[int]) -> None:
        """One directory, read lazily: a directory of a million entries costs only the
        entries the budget lets through."""
        subdirs = []
        try:
            if budget[1] and os.fstat(fd).st_size > budget[1]:
                out.truncated = True
                return
            with os.scandir(fd) as it:  # scandir works on a duplicate; fd stays ours
                for entry in it:
                    budget[0] -= 1
                    if budget[0] < 0:
                        out.truncated = True
                        break
                    found = self._entry(entry, prefix, depth, out)
                    if found is not None:
                        subdirs.append(found)
            for name in subdirs:
                if budget[0] < 0:
                    break
                try:
                    sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue
                self._scan(sub, prefix + name + "/", depth + 1, out, budget)
        finally:
            os.close(fd)

    def _entry(self, entry: os.DirEntry[str], prefix: str, depth: int, out: Scan) -> str | None:
        """Note one entry; return its name when it is a directory to look into."""
        if entry.name.startswith("."):
            return None
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            return None
        rel = prefix + entry.name
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            return None
        problem = name_problem(entry.name)
        if problem is not None:
            out.rejected.append((shown(rel), problem))
        elif stat.S_ISREG(st.st_mode):
            out.files[rel] = FileStat.of(st)
        elif depth + 1 < MAX_DEPTH:
            return entry.name
        else:
            why = f"it is more than {MAX_DEPTH} directories deep: its files are not collected"
            out.rejected.append((shown(rel), why))
        return None

    # -- reading and writing ---------------------------------------------------------

    @contextmanager
    def open_regular(self, relpath: str) -> Iterator[int]:
        """An fd to read a regular file; raises OSError for anything else."""
        parts = relpath.split("/")
        with self._dir(parts[:-1]) as dfd:
            fd = os.open(
                parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd
            )
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(f"{relpath} is not a regular file")
            yield fd
        finally:
            os.close(fd)

    def place(self, relpath: str, source: Path) -> int:
        """Copy ``source`` (a host file we trust) to root/relpath; return its size."""
        parts = relpath.split("/")
        with self._dir(parts[:-1], create=True) as dfd:
            tmp = f".lci-upload-{os.urandom(6).hex()}"
            out = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=dfd
            )
            size = 0
            try:
                with open(source, "rb") as src:
                    while chunk := src.read(1 << 20):
                        size += os.write(out, chunk)
                self._chown(tmp, dir_fd=dfd)
            finally:
                os.close(out)
            try:
                os.replace(tmp, parts[-1], src_dir_fd=dfd, dst_dir_fd=dfd)
            except IsADirectoryError:
                os.unlink(tmp, dir_fd=dfd)
                raise InvalidFilename(
                    relpath, "a directory of that name exists in /mnt/data"
                ) from None
        return size

    def stat(self, relpath: str) -> FileStat | None:
        """The stat of a regular file, or None (missing, a link, anything else)."""
        parts = relpath.split("/")
        try:
            with self._dir(parts[:-1]) as dfd:
                st = os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return FileStat.of(st)

    def remove(self, relpath: str) -> bool:
        """Unlink a file (or a link: never what it points to); False when it was missing."""
        parts = relpath.split("/")
        try:
            with self._dir(parts[:-1]) as dfd:
                os.unlink(parts[-1], dir_fd=dfd)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except IsADirectoryError:
            raise InvalidFilename(relpath, "it is a directory") from None
        return True
