"""Output files of the benchmark: written atomically, failing with one-line errors.

A table, figure or ``config.json`` is written to a temporary file next to
its destination, synced, and renamed over it: a run killed at any moment
leaves either the previous version or the new one, never a truncated file.
Every ``OSError`` met while writing becomes an :class:`OutputDirectoryError`
whose message names the file and says what to do about it.
"""

import errno
import os
import uuid
from contextlib import contextmanager
from pathlib import Path

#: Errors a user fixes by freeing space: the run itself is not at fault.
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


class OutputDirectoryError(RuntimeError):
    """The output directory cannot take this run's results.

    The message is one line that names the file or directory and the fix.
    """


def os_error_message(exc, path=None, action="write", output=True):
    """A one-line description of ``exc``, naming ``path`` and how to fix it.

    Parameters
    ----------
    exc : OSError
    path : str or Path, default=None
        The file concerned; ``exc.filename`` when not given. A temporary
        file's error is reported under its destination's name.
    action : str, default="write"
        What failed, as a verb: ``"Cannot {action} {path}"``.
    output : bool, default=True
        Whether ``path`` belongs to the output directory, which the user may
        replace with another ``--out``.

    Returns
    -------
    message : str

    Examples
    --------
    >>> import errno, os
    >>> from benchmarks._files import os_error_message
    >>> error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    >>> os_error_message(error, "out/results.jsonl")  # doctest: +NORMALIZE_WHITESPACE
    'Cannot write out/results.jsonl (No space left on device); free space on that
    disk and run the same command again; finished cells are kept.'
    """
    path = Path(path if path is not None else exc.filename or "?")
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in _NO_SPACE:
        fix = ("free space on that disk and run the same command again; finished cells "
               "are kept")
    elif exc.errno in _NOT_WRITABLE and output:
        fix = f"make {path.parent} writable, or choose another --out"
    else:
        fix = ("check that path and its permissions, then run the same command again; "
               "finished cells are kept")
    return f"Cannot {action} {path} ({reason}); {fix}."


def make_directory(path):
    """Create ``path`` and its parents unless they exist; one-line errors.

    Raises
    ------
    OutputDirectoryError
        If ``path`` or one of its parents is a file, or it cannot be created.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        # mkdir names the directory it wanted, not the file in its way.
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()),
                       path)
        raise OutputDirectoryError(
            f"Cannot create the directory {path}: {blocker} is a file, not a directory. "
            "Choose another --out, or move that file away."
        ) from None
    except OSError as exc:
        raise OutputDirectoryError(
            os_error_message(exc, exc.filename or path, "create the directory")
        ) from None
    return path


@contextmanager
def atomic_path(path):
    """Write a file atomically: yields a temporary path that then replaces ``path``.

    The temporary file lies in the same directory (a rename across file
    systems is not atomic) and ends with ``path``'s suffix, so that writers
    that infer the format from the name (pandas, matplotlib) treat it alike.
    It is synced before the rename, and removed if the block fails.

    Parameters
    ----------
    path : str or Path
        The destination.

    Yields
    ------
    partial : Path
        Where the block writes the file's content.

    Raises
    ------
    OutputDirectoryError
        On any ``OSError`` (a full disk, a read-only directory, ...); the
        message names ``path``, not the temporary file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from benchmarks._files import atomic_path
    >>> path = Path(tempfile.mkdtemp()) / "table.csv"
    >>> with atomic_path(path) as partial:
    ...     _ = partial.write_text("a,b\\n1,2\\n")
    >>> path.read_text()
    'a,b\\n1,2\\n'
    """
    path = Path(path)
    partial = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        # O_EXCL: never write into someone else's file. Mode 0o666 lets the
        # umask decide, as for a file written directly.
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        yield partial
        with open(partial, "rb") as file:
            os.fsync(file.fileno())
        os.replace(partial, path)
    except OSError as exc:
        raise OutputDirectoryError(os_error_message(exc, path)) from None
    finally:
        try:
            partial.unlink(missing_ok=True)
        except OSError:
            pass  # Best effort: the error that matters is already raised.


def write_text_atomic(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_path`."""
    with atomic_path(path) as partial:
        partial.write_text(text, encoding="utf-8")
    return Path(path)
