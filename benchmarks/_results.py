"""The results file of a benchmark run: append-only, crash-safe, resumable.

Every finished cell is one JSON line in ``results.jsonl``, written with a
single ``write`` and synced to disk, so a run killed at any moment loses only
the cells it was computing. A kill in the middle of a write leaves at most
one partial last line, which the next run removes. ``config.json`` records
the settings the rows were computed with, so that a rerun with other settings
into the same directory stops instead of mixing incomparable rows.
"""

import fcntl
import json
import os
import warnings
from pathlib import Path

from ._config import cell_key

RESULTS_FILE = "results.jsonl"
CONFIG_FILE = "config.json"
LOCK_FILE = ".lock"


class OutputDirectoryError(RuntimeError):
    """The output directory cannot take this run's results."""


class ConfigMismatchError(OutputDirectoryError):
    """The output directory holds results computed with other settings."""


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
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.out_dir / LOCK_FILE, "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise OutputDirectoryError(
                f"Another benchmark run is writing to {self.out_dir}; wait for it to "
                "finish or use another --out."
            ) from None
        try:
            self._check_config()
            self.rows = read_rows(self.path, repair=True)
            foreign = {row.get("config") for row in self.rows.values()}
            foreign.discard(self.config.fingerprint())
            if foreign:
                raise ConfigMismatchError(
                    f"{self.path} holds rows computed with other settings (fingerprints "
                    f"{sorted(map(str, foreign))}, this run: {self.config.fingerprint()}). "
                    "Use another --out, or delete the directory to start over."
                )
            self._file = open(self.path, "a", encoding="utf-8")
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
        """Write one finished cell to disk; a cell already stored is ignored."""
        key = cell_key(row["protocol"], row["strategy"], row["density"], row["seed"])
        if key in self.rows:
            return
        self._file.write(json.dumps(row, sort_keys=True) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.rows[key] = row

    def _check_config(self):
        path = self.out_dir / CONFIG_FILE
        settings = self.config.result_settings()
        if path.exists():
            stored = json.loads(path.read_text())
            previous = stored.get("result_settings", {})
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
        partial = path.with_suffix(".json.tmp")
        partial.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        os.replace(partial, path)


def read_rows(path, repair=False):
    """Finished rows of a results file, by cell; each cell once.

    Parameters
    ----------
    path : str or Path
    repair : bool, default=False
        Cut a partial last line (left by a kill during a write) from the
        file; otherwise it is only skipped.

    Returns
    -------
    rows : dict
        :class:`~benchmarks._config.Cell` -> row, in file order.
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
    for number, line in enumerate(content[:complete_end].decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{path}, line {number}, is not valid JSON ({exc}). Only the last line "
                "can be cut short by a crash; was the file edited by hand?"
            ) from None
        key = cell_key(row["protocol"], row["strategy"], row["density"], row["seed"])
        if key in rows:
            warnings.warn(f"{path}, line {number}: {key} is stored twice; keeping the "
                          "first row.", UserWarning, stacklevel=2)
            continue
        rows[key] = row
    return rows
