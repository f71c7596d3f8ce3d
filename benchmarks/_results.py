"""The results file of a benchmark run: append-only, crash-safe, resumable.

Every finished cell is one JSON line in ``results.jsonl``, written with a
single ``write`` and synced to disk, so a run killed at any moment loses only
the cells it was computing. A kill in the middle of a write leaves at most
one partial last line, which the next run removes. ``config.json`` records
the settings the rows were computed with, so that a rerun with other settings
into the same directory stops instead of mixing incomparable rows.

Whatever goes wrong with the directory (a full disk, a read-only directory, a
damaged file) raises an :class:`OutputDirectoryError` whose one-line message
names the file and the fix; finished rows are never lost to it.
"""

import fcntl
import json
import os
import warnings
from pathlib import Path

from ._config import cell_key
from ._files import OutputDirectoryError, make_directory, os_error_message, write_text_atomic
from ._row_schema import CELL_FIELDS, RowError, check_row

__all__ = ["ConfigMismatchError", "CorruptFileError", "OutputDirectoryError", "ResultStore",
           "read_rows"]

RESULTS_FILE = "results.jsonl"
CONFIG_FILE = "config.json"
LOCK_FILE = ".lock"


class ConfigMismatchError(OutputDirectoryError):
    """The output directory holds results computed with other settings."""


class CorruptFileError(OutputDirectoryError, ValueError):
    """A file of the output directory is damaged beyond automatic repair.

    Also a ``ValueError``, for callers of :func:`read_rows` that catch one.
    """


class ResultStore:
    """Finished cells of one output directory; a context manager.

    Entering it takes an exclusive lock on the directory (two runs appending
    to one file would duplicate cells), checks or writes ``config.json``,
    repairs a partial last line and loads the finished rows.

    Parameters
    ----------
    out_dir : str or Path
    config : BenchmarkConfig
    """

    def __init__(self, out_dir, config):
        self.out_dir = Path(out_dir)
        self.config = config
        self.path = self.out_dir / RESULTS_FILE
        self.rows = {}

    def __enter__(self):
        make_directory(self.out_dir)
        lock_path = self.out_dir / LOCK_FILE
        try:
            self._lock = open(lock_path, "w")
        except OSError as exc:
            raise OutputDirectoryError(os_error_message(exc, lock_path)) from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise OutputDirectoryError(
                f"Another benchmark run is writing to {self.out_dir}; wait for it to "
                "finish or use another --out."
            ) from None
        try:
            self.check_config()
            self.rows = read_rows(self.path, repair=True, strategies=self.config.strategies)
            foreign = {row.get("config") for row in self.rows.values()}
            foreign.discard(self.config.fingerprint())
            if foreign:
                raise ConfigMismatchError(
                    f"{self.path} holds rows computed with other settings (fingerprints "
                    f"{sorted(map(str, foreign))}, this run: {self.config.fingerprint()}). "
                    "Use another --out, or delete the directory to start over."
                )
            # Unbuffered: a failed write leaves nothing behind in a buffer that
            # closing the file would try to write again.
            self._file = open(self.path, "ab", buffering=0)
        except OSError as exc:
            self._lock.close()
            raise OutputDirectoryError(
                os_error_message(exc, exc.filename or self.path, "use")
            ) from None
        except BaseException:
            self._lock.close()
            raise
        return self

    def __exit__(self, *exc_info):
        self._file.close()
        self._lock.close()

    def __contains__(self, cell):
        return cell_key(*cell) in self.rows

    def append(self, row):
        """Write one finished cell to disk; a cell already stored is ignored.

        Raises
        ------
        OutputDirectoryError
            If the row cannot be written and synced (a full disk, ...). The
            file is then cut back to its previous rows, which stay valid.
        RowError
            If the row is not what a results file holds (a bug: it is not
            written, so that the file stays readable).
        """
        check_row(row, self.config.strategies)
        key = cell_key(*(row[name] for name in CELL_FIELDS))
        if key in self.rows:
            return
        data = (json.dumps(row, sort_keys=True) + "\n").encode("utf-8")
        descriptor = self._file.fileno()
        size = os.fstat(descriptor).st_size
        try:
            while data:
                data = data[self._file.write(data):]
            os.fsync(descriptor)
        except OSError as exc:
            # A row that did not reach the disk whole is not finished: cut it
            # off rather than leave a partial line for the next run to repair.
            try:
                os.ftruncate(descriptor, size)
            except OSError:
                pass  # The next run removes a partial last line anyway.
            raise OutputDirectoryError(os_error_message(exc, self.path)) from None
        self.rows[key] = row

    def check_config(self):
        """Raise :class:`ConfigMismatchError` if the directory holds results of other settings."""
        path = self.out_dir / CONFIG_FILE
        settings = self.config.result_settings()
        if path.exists():
            previous = _read_settings(path, self.out_dir)
            if previous != settings:
                changes = [
                    f"{name}: {previous.get(name)!r} -> {settings.get(name)!r}"
                    for name in sorted(set(previous) | set(settings))
                    if previous.get(name) != settings.get(name)
                ]
                raise ConfigMismatchError(
                    f"{self.out_dir} holds results of a different configuration "
                    f"({'; '.join(changes)}). Its finished cells cannot be reused: use "
                    "another --out, or delete the directory to start over."
                )
        # Rewritten every run: the grid (densities, seeds, ...) may have grown.
        document = {
            "fingerprint": self.config.fingerprint(),
            "result_settings": settings,
            "config": self.config.to_dict(),
        }
        # Replaced atomically: a kill mid-write must not leave it unreadable.
        write_text_atomic(path, json.dumps(document, indent=2, sort_keys=True) + "\n")


def _read_settings(path, out_dir):
    """The ``result_settings`` stored in ``config.json``; a one-line error if damaged."""
    try:
        stored = json.loads(path.read_bytes())
        reason = None if isinstance(stored, dict) else "not a JSON object"
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    except json.JSONDecodeError as exc:
        reason = f"invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
    if reason is None and not isinstance(stored.get("result_settings"), dict):
        reason = "no result_settings object"
    if reason is not None:
        # Deleting only config.json is safe: every row records the fingerprint
        # of its settings, and rows of other settings are refused anyway.
        raise CorruptFileError(
            f"{path} is damaged ({reason}). Restore it, or delete it to have it "
            f"rewritten (the rows of {RESULTS_FILE} are still checked against this "
            f"run's settings), or delete {out_dir} to start over."
        )
    return stored["result_settings"]


def read_rows(path, repair=False, strategies=()):
    """Finished rows of a results file, by cell; each cell once.

    Every row is checked field by field (:func:`benchmarks._row_schema.check_row`):
    a row that is not what the benchmark writes ends the read, naming its
    line and field, rather than being coerced, dropped or left to fail in
    the tables.

    Parameters
    ----------
    path : str or Path
    repair : bool, default=False
        Cut a partial last line (left by a kill during a write) from the
        file; otherwise it is only skipped.
    strategies : iterable of str, default=()
        The run's strategies: strategies of the user's own (``module:Class``)
        are valid beside the registry's.

    Returns
    -------
    rows : dict
        :class:`~benchmarks._config.Cell` -> row, in file order.

    Raises
    ------
    CorruptFileError
        If a complete line is not a valid row; the message gives its number
        and, for a row, the field.
    """
    path = Path(path)
    if not path.exists():
        return {}
    content = path.read_bytes()
    complete_end = content.rfind(b"\n") + 1
    if complete_end < len(content):
        warnings.warn(
            f"{path} ends with a partial line (a run was killed while writing it); "
            f"{'removing' if repair else 'skipping'} it. That cell runs again.",
            UserWarning, stacklevel=2,
        )
        if repair:
            with open(path, "r+b") as file:
                file.truncate(complete_end)
                os.fsync(file.fileno())
    rows = {}
    for number, line in enumerate(content[:complete_end].split(b"\n")[:-1], 1):
        if not line.strip():
            continue
        key, row = _parse_row(line, path, number, strategies)
        if key in rows:
            warnings.warn(f"{path}, line {number}: {key} is stored twice; keeping the "
                          "first row.", UserWarning, stacklevel=2)
            continue
        rows[key] = row
    return rows


def _parse_row(line, path, number, strategies=()):
    """``(cell, row)`` of one line of a results file; a one-line error if damaged."""
    what = "is not a result row"
    try:
        row = json.loads(line)
        if not isinstance(row, dict):
            raise TypeError("not a JSON object")
        what = "is not a valid result row"
        check_row(row, strategies)
        return cell_key(*(row[name] for name in CELL_FIELDS)), row
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    except json.JSONDecodeError as exc:
        reason = f"invalid JSON: {exc.msg} at column {exc.colno}"
    except (RowError, TypeError) as exc:
        reason = exc.args[0] if exc.args else type(exc).__name__
    # Only the last line can be cut short by a crash (and is repaired); a bad
    # line elsewhere was damaged otherwise, and guessing its cell could mix
    # rows of different runs. A row is never coerced nor left out of the
    # tables: the run stops, and the user decides.
    raise CorruptFileError(
        f"{path}, line {number}, {what} ({reason}). Delete that line "
        "(its cell runs again) or fix it by hand, or use another --out."
    )
