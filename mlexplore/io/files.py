"""File helpers shared by the readers and writers: compression and atomic writes."""

from __future__ import annotations

import bz2
import contextlib
import glob
import gzip
import io
import lzma
import math
import os
import re
import socket
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import InputError

try:  # POSIX: appends to a shared record file are serialised by an exclusive lock
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["open_text", "atomic_write", "strip_compression", "parse_number", "append_line", "reading", "text_lines",
           "MAX_LINE_CHARS", "clean_stale_temporaries"]

#: The longest line a text reader accepts (characters). Real structure files have lines of at most
#: a few hundred characters (an extxyz comment with a long ``mlx_meta`` a few thousand); a longer
#: one is a binary file or a stream without line ends (``/dev/zero``), which would otherwise be
#: read into memory whole before its first line could be looked at.
MAX_LINE_CHARS = 1 << 20

_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def strip_compression(path: str | os.PathLike) -> Path:
    """``a/b.xyz.gz`` → ``a/b.xyz`` (the name that tells the format)."""
    p = Path(path)
    return p.with_suffix("") if p.suffix in _OPENERS else p


def _gzip_writer(path: str | os.PathLike, mode: str) -> IO[str]:
    """A gzip text writer whose bytes depend only on the text: no time stamp and no file name
    in the header (the name would be the temporary one of :func:`atomic_write`), so that
    rewriting unchanged data leaves the file, and its version-control history, unchanged."""
    raw = open(path, mode.replace("t", "") + "b")
    try:
        gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
    except BaseException:
        raw.close()
        raise
    gz.myfileobj = raw  # closed with the GzipFile
    return io.TextIOWrapper(gz, encoding="utf-8", newline="\n")


def open_text(path: str | os.PathLike, mode: str = "r") -> IO[str]:
    """Open a text file, (de)compressing ``.gz``, ``.bz2`` and ``.xz`` by suffix. Written
    ``.gz`` files are reproducible (see :func:`_gzip_writer`)."""
    opener = _OPENERS.get(Path(path).suffix)
    if opener is gzip.open and mode in ("w", "x", "a"):
        return _gzip_writer(path, mode)
    if opener is None:
        return open(path, mode, encoding="utf-8", newline="\n" if "w" in mode else None)
    return opener(path, mode + "t", encoding="utf-8")


def text_lines(path: str | os.PathLike, fh: IO[str] | None = None) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a text file (decompressed by suffix), numbered from 1.

    Reads at most :data:`MAX_LINE_CHARS` characters at a time, so that a file with no line ends
    cannot fill the memory, and refuses (:class:`InputError`, naming the file and line) a line
    longer than that or one holding NUL characters: both mean binary data, not text. Decoding and
    decompression failures become :class:`InputError` too (:func:`reading`).
    ``fh``: an already open handle of ``path`` to read instead.
    """
    with reading(path):
        yield from _lines(path, fh)


def _lines(path: str | os.PathLike, fh: IO[str] | None) -> Iterator[tuple[int, str]]:
    own = fh is None
    if own:
        fh = open_text(path)
    try:
        line_no = 0
        while True:
            line = fh.readline(MAX_LINE_CHARS + 1)
            if not line:
                return
            line_no += 1
            if len(line) > MAX_LINE_CHARS:
                raise InputError(f"a line longer than {MAX_LINE_CHARS} characters: not a text file of "
                                 "structures (binary data, or no line ends)?", path=path, line=line_no)
            if "\x00" in line:
                raise InputError("holds NUL characters: binary data, not a text file", path=path, line=line_no)
            yield line_no, line
    finally:
        if own:
            fh.close()


#: this machine, as it appears in temporary file names (so that a stale one can be told from a live one)
_HOST = re.sub(r"\W", "_", socket.gethostname())[:24] or "host"
#: ``.<name>.<host>-<pid>-<random>.tmp[.<suffix>]``, and the older ``.<name>.<random>.tmp[.<suffix>]``
_TMP_NAME = re.compile(r"(?:(?P<host>\w+)-(?P<pid>\d+)-)?(?P<rand>\w{8})\.tmp(?:\.\w+)?")
#: a temporary file of another machine (or of the older naming) is stale after this long (s)
_STALE_AFTER = 3600.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed writes of ``path`` left beside it; returns them.

    A write by :func:`atomic_write` that was killed (SIGKILL, power loss) before its rename leaves
    ``.<name>.<host>-<pid>-….tmp``. It is stale when its process on this machine no longer runs;
    a temporary file of another machine, or of the older naming without a process, when it is
    older than an hour. Live writes of other processes are never touched.
    """
    path = Path(path)
    prefix = f".{path.name}."
    removed = []
    now = time.time()
    for tmp in path.parent.glob(glob.escape(prefix) + "*.tmp*"):
        m = _TMP_NAME.fullmatch(tmp.name[len(prefix):])
        if m is None:
            continue
        pid = m["pid"]
        try:
            if pid is not None and m["host"] == _HOST:
                stale = int(pid) != os.getpid() and not _alive(int(pid))
            else:
                stale = now - tmp.stat().st_mtime > _STALE_AFTER
            if stale:
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # removed by someone else meanwhile
            continue
    return removed


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, text: bool = True) -> Iterator[Any]:
    """Write to a temporary file beside ``path`` and rename it over ``path`` at the end.

    An interrupted or failed write leaves any previous ``path`` untouched and
    no partial file behind; the temporary files of writes that were killed outright are
    deleted by the next write of the same ``path`` (:func:`clean_stale_temporaries`). Yields an
    open text handle (compressed by suffix) or, with ``text=False``, the temporary path to write to.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_HOST}-{os.getpid()}-",
                               suffix=".tmp" + "".join(path.suffixes[-1:]), dir=path.parent)
    os.close(fd)
    try:
        if text:
            with open_text(tmp, "w") as fh:
                yield fh
        else:
            yield tmp
        # mkstemp makes the file private (0600); give it the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def parse_number(token: str, path: Any, line: int, field: str, integer: bool = False) -> float:
    """``float(token)``, or an :class:`InputError` naming file, line and field for text,
    NaN/inf, or (with ``integer``) a fractional value."""
    try:
        x = float(token)
    except ValueError:
        raise InputError(f"{token!r} is not a number", path=path, line=line, field=field) from None
    if not math.isfinite(x):
        raise InputError(f"non-finite value {token!r}", path=path, line=line, field=field)
    if integer and x != int(x):
        raise InputError(f"{token!r} is not an integer", path=path, line=line, field=field)
    return x


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line of text (a record) to ``path``, durably (flushed and fsync'ed).

    A last line cut short by an earlier kill or power loss (no final newline) is dropped first,
    so the new record starts on a line of its own instead of being glued to the torn one and
    lost with it. The append holds an exclusive lock on the file (POSIX ``flock``), so several
    processes can share one record file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (line if line.endswith("\n") else line + "\n").encode("utf-8")
    with open(path, "a+b") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # released when the file is closed
        size = fh.seek(0, os.SEEK_END)
        if size:
            fh.seek(size - 1)
            if fh.read(1) != b"\n":  # a partial line from an interrupted write: drop it
                fh.seek(0)
                fh.truncate(fh.read().rfind(b"\n") + 1)
                fh.seek(0, os.SEEK_END)
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


#: what a damaged or mislabelled file raises while it is decoded or decompressed
_DECODING_ERRORS = (UnicodeDecodeError, EOFError, gzip.BadGzipFile, lzma.LZMAError, zlib.error)


@contextlib.contextmanager
def reading(path: str | os.PathLike, what: str = "") -> Iterator[None]:
    """The boundary where a file enters: a decoding, decompression or read failure inside
    becomes an :class:`InputError` naming the file (``what``: the format it was read as)."""
    as_what = f" as {what}" if what else ""
    try:
        yield
    except InputError:
        raise
    except UnicodeDecodeError as exc:
        raise InputError(f"is not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x}): not a readable "
                         f"text file{as_what}; binary or damaged data?", path=path) from None
    except EOFError:
        raise InputError(f"ends in the middle of its compressed data: the file is truncated (read{as_what})",
                         path=path) from None
    except (gzip.BadGzipFile, lzma.LZMAError, zlib.error) as exc:
        raise InputError(f"is not valid {Path(path).suffix or 'compressed'} data ({exc}); is the file name's "
                         "suffix right?", path=path) from None
    except (FileNotFoundError, IsADirectoryError):
        raise
    except OSError as exc:  # bz2's "Invalid data stream", permissions, I/O errors
        raise InputError(f"could not be read{as_what}: {exc.strerror or exc}", path=path) from None
