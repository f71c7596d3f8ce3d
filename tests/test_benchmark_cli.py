"""The fairness benchmark's command line fails cleanly and loses nothing.

Every failure a user can fix ends ``main`` with a non-zero status and exactly
one line on stderr, ``error: ...``, that names the file and the fix; never a
traceback. Signals stop the worker processes too.
"""

import errno
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks import _files, _results, fairness
from benchmarks._config import InvalidConfigError
from benchmarks._data import load_benchmark_data
from benchmarks._files import OutputDirectoryError, atomic_path
from benchmarks._report import write_report
from benchmarks._results import CorruptFileError, read_rows

REPO = Path(__file__).resolve().parents[1]
SMOKE = ["--preset", "smoke", "--no-progress", "--figure-formats", "png"]
FASHION_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def run(capsys, *argv):
    """``main(argv)``; returns (exit status, stderr)."""
    status = fairness.main(list(argv))
    return status, capsys.readouterr().err


def assert_one_line_error(status, err, *fragments):
    """A failure reported as exactly one ``error: ...`` line holding ``fragments``."""
    assert status == 1, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert str(fragment) in lines[0]
    return lines[0]


def fd_path(descriptor):
    """The file a descriptor of this process refers to (Linux ``/proc``)."""
    return os.readlink(f"/proc/self/fd/{descriptor}")


needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(),
                                reason="finds files by descriptor through /proc")


def no_space_for(monkeypatch, matches, after=0):
    """Make ``os.fsync`` fail with ENOSPC on files ``matches(path)`` selects.

    The first ``after`` such calls succeed: a disk that fills up mid-run.
    """
    fsync, calls = os.fsync, []

    def full_disk_fsync(descriptor):
        if matches(fd_path(descriptor)):
            calls.append(descriptor)
            if len(calls) > after:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return fsync(descriptor)

    monkeypatch.setattr(os, "fsync", full_disk_fsync)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """An output directory of a finished smoke run, to copy."""
    out = tmp_path_factory.mktemp("finished") / "out"
    assert fairness.main([*SMOKE, "--out", str(out)]) == 0
    return out


@pytest.fixture
def copy_of(finished, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    return out


# --out that cannot take results --------------------------------------------


def test_out_is_a_regular_file(tmp_path, capsys):
    out = tmp_path / "results.txt"
    out.write_text("not a directory\n")
    status, err = run(capsys, *SMOKE, "--out", str(out))
    assert_one_line_error(status, err, out, "is a file, not a directory", "--out")
    assert out.read_text() == "not a directory\n"


def test_out_below_a_regular_file(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    status, err = run(capsys, *SMOKE, "--out", str(blocker / "out"))
    assert_one_line_error(status, err, f"{blocker} is a file", "--out")


def test_out_in_a_read_only_parent(tmp_path, capsys, monkeypatch):
    # Tests may run as root, whom permission bits do not stop: refuse the
    # mkdir as a read-only parent directory would.
    parent, out = tmp_path / "read-only", tmp_path / "read-only" / "out"
    mkdir = Path.mkdir

    def read_only_mkdir(self, *args, **kwargs):
        if self == out:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only_mkdir)
    status, err = run(capsys, *SMOKE, "--out", str(out))
    assert_one_line_error(status, err, out, "Permission denied", f"make {parent} writable",
                          "--out")


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_out_is_a_read_only_directory(tmp_path, capsys, monkeypatch, code):
    out = tmp_path / "out"
    out.mkdir()
    real_open = open

    def read_only_open(file, mode="r", *args, **kwargs):
        if Path(file).parent == out and set(mode) & set("wax+"):
            raise OSError(code, os.strerror(code), str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(_results, "open", read_only_open, raising=False)
    status, err = run(capsys, *SMOKE, "--out", str(out))
    assert_one_line_error(status, err, out, os.strerror(code), f"make {out} writable")


# A full disk -----------------------------------------------------------------


@needs_proc
def test_full_disk_while_saving_a_cell_keeps_the_finished_ones(tmp_path, capsys,
                                                               monkeypatch):
    out = tmp_path / "out"
    results = out / "results.jsonl"
    no_space_for(monkeypatch, lambda path: path == str(results), after=1)
    status, err = run(capsys, *SMOKE, "--out", str(out))
    assert_one_line_error(status, err, results, "No space left on device", "free space",
                          "finished cells are kept")
    # The cell saved before the disk filled up is whole, the failed one is
    # cut off: no partial line.
    content = results.read_bytes()
    assert content.endswith(b"\n") and content.count(b"\n") == 1
    assert len(read_rows(results)) == 1


@needs_proc
def test_full_disk_while_writing_tables_keeps_the_old_ones(copy_of, capsys, monkeypatch):
    tables = copy_of / "tables"
    before = {path.name: path.read_bytes() for path in tables.iterdir()}
    no_space_for(monkeypatch, lambda path: path.endswith(".csv") and ".tmp" in path)
    status, err = run(capsys, *SMOKE, "--out", str(copy_of))
    assert_one_line_error(status, err, tables / "accuracy.csv", "No space left on device",
                          "free space")
    assert {path.name: path.read_bytes() for path in tables.iterdir()} == before


def test_os_errors_from_anywhere_get_one_line(tmp_path, capsys, monkeypatch):
    # An OSError that no code described, e.g. from a worker writing the cache.
    target = tmp_path / "out" / "cache" / "scores.npz"

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    monkeypatch.setattr(fairness, "run_benchmark", full_disk)
    status, err = run(capsys, *SMOKE, "--out", str(tmp_path / "out"))
    assert_one_line_error(status, err, target, "free space")


# Damaged files in the output directory --------------------------------------


@pytest.mark.parametrize("damage", [
    b'{"accuracy": 0.9, "class_co',  # a line cut short, then more rows
    b"[1, 2, 3]",
    b'{"accuracy": 0.9}',
    b'{"protocol": "Random", "strategy": "-", "density": "dense", "seed": 0}',
    b"\xff\xfe\x00 not text",
])
def test_damaged_results_line_names_file_and_line(copy_of, capsys, damage):
    results = copy_of / "results.jsonl"
    lines = results.read_bytes().splitlines(keepends=True)
    lines[2] = damage + b"\n"
    results.write_bytes(b"".join(lines))
    status, err = run(capsys, *SMOKE, "--out", str(copy_of))
    assert_one_line_error(status, err, f"{results}, line 3,", "Delete that line",
                          "another --out")
    assert results.read_bytes() == b"".join(lines), "the file must be left as it was"
    with pytest.raises(ValueError, match="line 3"):  # as read_rows raised before
        read_rows(results)


def with_a_second_seed(out):
    """The rows of ``out`` again as seed 1 (with other numbers): a finished ``--seeds 0 1`` run."""
    results = out / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    second = [{**row, "seed": 1, "accuracy": round(row["accuracy"] * 0.99, 6)} for row in rows]
    lines = [json.dumps(row, sort_keys=True) for row in rows + second]
    results.write_text("".join(line + "\n" for line in lines))
    return results, rows + second


@pytest.mark.parametrize("field, value", [
    ("accuracy", "high"),
    ("class_recall", "as a list"),
    ("protocol", "Bogus"),
    ("seed", "1"),
    ("accuracy", None),
])
def test_a_row_with_a_bad_field_names_its_line_and_field(copy_of, capsys, field, value):
    results, rows = with_a_second_seed(copy_of)
    number = next(number for number, row in enumerate(rows, 1)
                  if row["seed"] == 0 and row["protocol"] == "Strategy")
    edited = dict(rows[number - 1])
    edited[field] = list(edited["class_recall"].values()) if value == "as a list" else value
    lines = results.read_text().splitlines(keepends=True)
    lines[number - 1] = json.dumps(edited, sort_keys=True) + "\n"
    results.write_text("".join(lines))
    status, err = run(capsys, *SMOKE, "--seeds", "0", "1", "--out", str(copy_of))
    assert_one_line_error(status, err, f"{results}, line {number},", f"field {field!r}",
                          "Delete that line")
    assert results.read_text() == "".join(lines), "the file must be left as it was"


def test_partial_last_line_is_still_repaired(copy_of, capsys):
    results = copy_of / "results.jsonl"
    finished = results.read_bytes()
    results.write_bytes(finished + b'{"accuracy": 0.9, "class_co')
    with pytest.warns(UserWarning, match="partial line"):
        status, err = run(capsys, *SMOKE, "--out", str(copy_of))
    assert status == 0, err
    assert results.read_bytes() == finished


@pytest.mark.parametrize("damage", [
    "truncated",
    b"[]",
    b'{"fingerprint": "0123"}',
    b"\xff\xfe garbage",
])
def test_damaged_config_json_names_file_and_fix(copy_of, capsys, damage):
    config = copy_of / "config.json"
    if damage == "truncated":
        damage = config.read_bytes()[:40]
    config.write_bytes(damage)
    status, err = run(capsys, *SMOKE, "--out", str(copy_of))
    assert_one_line_error(status, err, config, "Restore it", "delete it",
                          f"delete {copy_of}")
    assert config.read_bytes() == damage


def test_deleting_a_damaged_config_json_is_enough(copy_of, capsys):
    # What the message suggests: the rows are still checked, and kept.
    results = copy_of / "results.jsonl"
    before = results.read_bytes()
    (copy_of / "config.json").write_text("{")
    run(capsys, *SMOKE, "--out", str(copy_of))
    (copy_of / "config.json").unlink()
    status, err = run(capsys, *SMOKE, "--out", str(copy_of))
    assert status == 0, err
    assert results.read_bytes() == before
    assert json.loads((copy_of / "config.json").read_text())["fingerprint"]


# Damaged dataset files ------------------------------------------------------


def idx_bytes(array):
    """An array in the IDX format (uint8 values)."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def fashion_mnist_root(root, damaged):
    """Four small, valid Fashion-MNIST files, gzipped, with ``damaged`` bytes as the first."""
    root.mkdir()
    images, labels = np.zeros((20, 28, 28)), np.arange(20) % 10
    for stem, array in zip(FASHION_MNIST_FILES, (images, labels, images, labels), strict=True):
        (root / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(array)))
    first = root / f"{FASHION_MNIST_FILES[0]}.gz"
    first.write_bytes(damaged(first.read_bytes()))
    return first


@pytest.mark.parametrize("damaged", [
    lambda content: content[: len(content) // 2],  # a cut download
    lambda content: b"<html>Not found</html>",  # an error page saved as the file
    lambda content: gzip.compress(b"\x08\x08\x08\x08"),  # not IDX inside
    lambda content: gzip.compress(gzip.decompress(content)[:-100]),  # short array
], ids=["truncated-gzip", "not-gzip", "bad-idx-header", "truncated-idx"])
def test_damaged_dataset_file_names_it(tmp_path, capsys, damaged):
    first = fashion_mnist_root(tmp_path / "fm", damaged)
    status, err = run(capsys, "--dataset", "fashion-mnist", "--model", "mlp", "--data-root",
                      str(tmp_path / "fm"), "--out", str(tmp_path / "out"), "--no-progress",
                      "--figure-formats", "png")
    line = assert_one_line_error(status, err, first)
    assert "again" in line  # download it again
    assert not (tmp_path / "out").exists(), "nothing is written before the data loads"


def test_n_train_below_the_number_of_classes(tmp_path, capsys):
    status, err = run(capsys, *SMOKE, "--n-train", "5", "--out", str(tmp_path))
    assert_one_line_error(status, err, "n_train=5", "--n-train 10")


# Paths with ~ ----------------------------------------------------------------


def test_tilde_is_expanded_in_path_options(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    args = fairness.build_parser().parse_args(
        ["--preset", "smoke", "--out=~/results", "--data-root", "~/data"])
    assert args.out == str(tmp_path / "results")
    assert args.data_root == str(tmp_path / "data")


def test_tilde_reaches_the_data_loader_expanded(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    first = fashion_mnist_root(tmp_path / "fm", lambda content: b"garbage")
    status, err = run(capsys, "--dataset", "fashion-mnist", "--model", "mlp",
                      "--data-root=~/fm", "--out=~/out", "--no-progress", "--figure-formats", "png")
    assert_one_line_error(status, err, first)


def test_empty_path_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        fairness.main([*SMOKE, "--out", ""])
    assert exit_info.value.code == 2
    assert "--out: a path must not be empty" in capsys.readouterr().err


# Density hint ----------------------------------------------------------------


@pytest.mark.parametrize("n_classes, n_train", [
    (10, 1347), (10, 15), (3, 4), (2, 3), (10, 60000), (100, 50000), (200, 100000),
    (10, 10), (7, 12345),
])
def test_smallest_density_is_the_smallest_that_works(n_classes, n_train):
    hint = fairness.smallest_density(n_classes, n_train)
    density = float(hint)
    assert 0 < density <= 1
    assert round(density * n_train) >= n_classes
    # Rounded up at its precision (3 significant digits), not much further.
    bound = (n_classes - 0.5) / n_train
    assert density <= bound + 2 * 10.0 ** (np.floor(np.log10(bound)) - 2)


def test_density_hint_passes_the_check(tmp_path, capsys):
    status, err = run(capsys, *SMOKE, "--densities", "1e-6", "--out", str(tmp_path))
    line = assert_one_line_error(status, err, "fewer than one sample per class")
    hint = line.rsplit("at least ", 1)[1].rstrip(".")
    data = load_benchmark_data("digits")
    fairness._check_densities(SimpleNamespace(densities=(float(hint),)), data)
    with pytest.raises(InvalidConfigError):
        fairness._check_densities(SimpleNamespace(densities=(1e-6,)), data)


# Atomic tables and figures ---------------------------------------------------


def test_atomic_path_leaves_the_old_file_when_the_writer_dies(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("old\n")

    class Killed(BaseException):
        pass

    with pytest.raises(Killed):
        with atomic_path(path) as partial:
            partial.write_text("new, but cut sh")
            raise Killed()
    assert path.read_text() == "old\n"
    assert list(tmp_path.iterdir()) == [path]


def test_atomic_path_keeps_the_umask_mode(tmp_path):
    path = tmp_path / "table.md"
    with atomic_path(path) as partial:
        partial.write_text("| a |\n")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_every_table_and_figure_is_replaced_atomically(finished, tmp_path, monkeypatch):
    rows = list(read_rows(finished / "results.jsonl").values())
    replaced, replace = [], os.replace

    def recording_replace(source, target):
        assert Path(source).parent == Path(target).parent
        replaced.append(Path(target))
        return replace(source, target)

    monkeypatch.setattr(_files.os, "replace", recording_replace)
    paths = write_report(rows, tmp_path)
    written = paths["tables"] + paths["figures"]
    assert sorted(replaced) == sorted(written)
    # 4 metrics x (csv, md, tex) + 2 per-class CSVs + paired differences against
    # Random and against the strategy (csv, md); 3 figures x (png, pdf, svg).
    assert len(written) == 4 * 3 + 2 + 2 * 2 + 3 * 3
    assert not [path for path in tmp_path.rglob("*") if ".tmp" in path.name]


def test_write_errors_in_tables_name_the_file(tmp_path):
    rows = []
    (tmp_path / "tables").write_text("")
    with pytest.raises(OutputDirectoryError, match="tables is a file"):
        write_report(rows, tmp_path)


def test_corrupt_file_error_is_an_output_directory_error():
    assert issubclass(CorruptFileError, OutputDirectoryError)
    assert issubclass(CorruptFileError, ValueError)


# Interrupts and worker processes --------------------------------------------


def test_keyboard_interrupt_prints_the_resume_hint(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fairness, "run_benchmark", interrupted)
    status, err = run(capsys, *SMOKE, "--out", str(tmp_path))
    assert status == 130
    assert "Interrupted" in err and "run the same command again to resume" in err
    assert str(tmp_path / "results.jsonl") in err and "Traceback" not in err


@pytest.mark.skipif(
    signal.getsignal(signal.SIGTERM) != signal.SIG_DFL,
    reason="SIGTERM has a handler in this test process; main leaves it alone",
)
def test_sigterm_in_process_prints_the_resume_hint(tmp_path, capsys, monkeypatch):
    def terminated(*args, **kwargs):
        # Without a handler, SIGTERM would end the test run itself.
        handler = signal.getsignal(signal.SIGTERM)
        assert handler not in (signal.SIG_DFL, signal.SIG_IGN), "main handles no SIGTERM"
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # The handler raises before this ends.
        raise AssertionError("SIGTERM was not handled")

    monkeypatch.setattr(fairness, "run_benchmark", terminated)
    status, err = run(capsys, *SMOKE, "--out", str(tmp_path))
    assert status == 128 + signal.SIGTERM
    assert "Terminated" in err and "run the same command again to resume" in err
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, "handler not restored"


def descendants(pid):
    """``{pid: command line}`` of every live descendant of ``pid``."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        found = {}
        try:
            children = psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return {}
        for child in children:
            try:
                found[child.pid] = " ".join(child.cmdline())
            except psutil.Error:
                pass
        return found
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = {}, {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        for child in frontier:
            try:
                cmdline = (Path("/proc") / str(child) / "cmdline").read_bytes()
            except OSError:
                continue
            found[child] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def is_running(pid):
    """Whether ``pid`` is alive: a zombie (exited, not yet reaped) is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def loky_workers(pid):
    return {child: cmdline for child, cmdline in descendants(pid).items()
            if "loky" in cmdline and "resource_tracker" not in cmdline}


@pytest.mark.slow
@pytest.mark.parametrize("outcome", ["finished", "failed"])
def test_execution_stops_its_workers(outcome):
    from joblib import Parallel, delayed

    class Failed(Exception):
        pass

    tasks = [delayed(os.getpid)()] + [delayed(time.sleep)(60)] * (outcome == "failed")
    try:
        with fairness._execution("loky", None, 2) as (n_jobs, _):
            results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(tasks)
            assert next(results) != os.getpid()
            assert loky_workers(os.getpid())
            if outcome == "failed":
                # Raised outside joblib's code, with its generator still alive
                # (joblib would stop its workers itself when that is closed).
                raise Failed()
    except Failed:
        pass
    deadline = time.monotonic() + 5
    while loky_workers(os.getpid()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not loky_workers(os.getpid())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # that its tasks were cancelled
        results.close()


@pytest.mark.slow
@needs_proc
def test_failure_with_workers_is_one_line_and_stops_them(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    no_space_for(monkeypatch, lambda path: path == str(out / "results.jsonl"), after=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, err = run(capsys, *SMOKE, "--n-jobs", "2", "--out", str(out))
    assert_one_line_error(status, err, out / "results.jsonl", "free space")
    # Outside pytest, a warning would be a second line on stderr.
    assert not [str(warning.message) for warning in caught
                if "joblib" in warning.filename or "tasks" in str(warning.message)]
    assert not loky_workers(os.getpid())


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_stops_the_loky_workers(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    # stderr to a file, not a pipe: workers inherit it, and a pipe would only
    # end when the last of them exits.
    log = tmp_path / "stderr.txt"
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.fairness", *SMOKE, "--n-jobs", "2",
             "--out", str(out)],
            cwd=REPO, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    children = {}
    try:
        deadline = time.monotonic() + 120
        while not loky_workers(process.pid):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no loky worker started within 2 minutes"
            time.sleep(0.05)
        children = descendants(process.pid)
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=30)
        stopped_at = time.monotonic()
        while any(is_running(pid) for pid in children) and time.monotonic() < stopped_at + 5:
            time.sleep(0.05)
        lingering = {pid: cmd for pid, cmd in children.items() if is_running(pid)}
        assert not lingering, f"still running 5 s after the parent exited: {lingering}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in children:
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)
    err = log.read_text()
    assert status == 128 + signal.SIGTERM, err
    assert "Terminated" in err and "run the same command again to resume" in err
    assert "Traceback" not in err


#: A short grid whose scoring warm-up and cells run on two loky workers.
TWO_WORKERS = [*SMOKE, "--protocols", "Random", "Strategy", "--densities", "0.3",
               "--n-jobs", "2"]


def start_benchmark(tmp_path, *argv):
    """``python -m benchmarks.fairness`` in its own session; its process and stderr file."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    # stderr to a file, not a pipe: workers inherit it, and a pipe would only
    # end when the last of them exits.
    log = tmp_path / "stderr.txt"
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.fairness", *argv, "--out", str(tmp_path / "out")],
            cwd=REPO, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    return process, log


@pytest.mark.slow
def test_a_clean_run_with_two_workers_leaks_no_semaphore(tmp_path):
    process, log = start_benchmark(tmp_path, *TWO_WORKERS)
    status = process.wait(timeout=600)
    err = log.read_text()
    assert status == 0, err
    assert "leaked" not in err and "resource_tracker" not in err, err


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_no_worker_outlives_a_sigkilled_benchmark(tmp_path):
    process, log = start_benchmark(tmp_path, *TWO_WORKERS)
    children = {}
    try:
        deadline = time.monotonic() + 120
        while len(loky_workers(process.pid)) < 2:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no two loky workers within 2 minutes"
            time.sleep(0.05)
        time.sleep(1)  # workers busy with their first tasks
        children = descendants(process.pid)
        process.send_signal(signal.SIGKILL)  # no cleanup code runs
        process.wait(timeout=30)
        killed_at = time.monotonic()
        while any(is_running(pid) for pid in children) and time.monotonic() < killed_at + 10:
            time.sleep(0.1)
        lingering = {pid: cmd for pid, cmd in children.items() if is_running(pid)}
        assert not lingering, f"still running 10 s after the parent was killed: {lingering}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in children:
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)
