"""Worker processes that never outlive the process that started them.

A parent killed by SIGKILL (or by the out-of-memory killer) cannot stop its
workers, and loky's idle workers then wait for tasks that never come, each
holding a torch runtime and its data. :func:`exit_with_parent`, run as a
worker's initializer, makes the worker exit within a second of its parent's
death, whatever ends the parent.

Examples
--------
A joblib fan-out on the loky backend, with workers tied to this process::

    from joblib import Parallel, delayed
    from skprune.utils import worker_initializer

    Parallel(n_jobs=2, **worker_initializer())(delayed(abs)(-n) for n in range(4))
"""

import os
import threading
import time

__all__ = ["exit_with_parent", "watch_parent_if_worker", "worker_initializer"]

#: Seconds between two checks that the parent still runs.
CHECK_INTERVAL = 1.0
#: Exit status of a worker whose parent died.
ORPHAN_EXIT_STATUS = 70

_watched = set()
_watched_lock = threading.Lock()


def exit_with_parent(parent_pid, interval=CHECK_INTERVAL):
    """Exit this process within ``interval`` seconds of process ``parent_pid``'s death.

    Meant as a worker process's initializer (joblib's and loky's
    ``initializer=``, ``multiprocessing.Pool(initializer=...)``): a daemon
    thread checks every ``interval`` seconds that the process is still a
    child of ``parent_pid``; once it is not (the parent died and the process
    was handed to another), it ends the process at once, without running
    cleanup code that could wait on the dead parent. A worker whose parent
    is already gone exits immediately. Calling it again is harmless.

    Parameters
    ----------
    parent_pid : int
        The process id of the parent, taken in the parent (``os.getpid()``).
    interval : float, default=CHECK_INTERVAL
    """
    if os.getppid() != parent_pid:
        os._exit(ORPHAN_EXIT_STATUS)
    with _watched_lock:
        if parent_pid in _watched:
            return
        _watched.add(parent_pid)

    def watch():
        while True:
            time.sleep(interval)
            if os.getppid() != parent_pid:
                os._exit(ORPHAN_EXIT_STATUS)

    threading.Thread(target=watch, name="skprune-exit-with-parent", daemon=True).start()


def worker_initializer():
    """Keyword arguments that tie a joblib fan-out's loky workers to this process.

    ``Parallel(n_jobs, **worker_initializer())``: with loky as the active
    backend (joblib's default), loky runs :func:`exit_with_parent` with this
    process's id in every worker it starts. With any other active backend
    (threads, dask) this is empty: those workers are not this process's
    children, and other backends do not take an initializer. Code that
    chooses loky itself passes ``initializer=exit_with_parent,
    initargs=(os.getpid(),)`` to ``parallel_config``.

    Returns
    -------
    dict
        ``{"initializer": exit_with_parent, "initargs": (pid,)}`` or ``{}``.
    """
    from joblib._parallel_backends import LokyBackend
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    if not isinstance(backend, LokyBackend):
        return {}
    return {"initializer": exit_with_parent, "initargs": (os.getpid(),)}


def watch_parent_if_worker():
    """In a loky worker, exit with the parent that started it; elsewhere do nothing.

    A pruner fitted inside someone else's fan-out (``GridSearchCV(n_jobs=2)``,
    ``cross_validate(n_jobs=...)``) runs in a loky worker that skprune did not
    start and cannot give an initializer to. Called before a query training,
    this ties that worker to its parent too, so that a killed search leaves
    no worker training on.
    """
    import multiprocessing

    if multiprocessing.current_process().name.startswith("LokyProcess"):
        exit_with_parent(os.getppid())
