"""File helpers shared by the readers and writers: compression and atomic writes."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import math
import os
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import InputError

try:  # POSIX: appends to a shared record file are serialised by an exclusive lock
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["open_text", "atomic_write", "strip_compression", "parse_number", "append_line", "reading"]

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


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, text: bool = True) -> Iterator[Any]:
    """Write to a temporary file beside ``path`` and rename it over ``path`` at the end.

    An interrupted or failed write leaves any previous ``path`` untouched and
    no partial file behind. Yields an open text handle (compressed by suffix)
    or, with ``text=False``, the temporary path to write to.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + "".join(path.suffixes[-1:]),
                               dir=path.parent)
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
