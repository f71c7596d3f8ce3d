"""Progress of query training and scoring: a tqdm bar over the epochs of the runs.

A pruner (or quota) opens a bar for the runs it is about to compute; every
query network trained meanwhile (through :func:`skprune._query_training.train_query_net`)
reports its epochs to it, wherever in the code the training happens, through
a context variable rather than an argument threaded through every call. The
bar counts epochs (runs times each run's epochs), so a single run moves too;
where no network reports its epochs (runs in worker processes), it counts
runs.
"""

import contextlib
import contextvars

from skorch.callbacks import Callback
from tqdm.auto import tqdm

_active = contextvars.ContextVar("skprune_progress", default=None)


class _Progress:
    """The bar of the runs being computed, and the verbosity asked for."""

    def __init__(self, bar, verbose):
        self.bar = bar
        self.verbose = verbose


class RunBar:
    """A tqdm bar over ``n_runs`` runs that counts their epochs once it knows them.

    ``update()`` marks one run done; a query network reports the epochs it
    will train (:meth:`start_run`) and each one it finishes
    (:meth:`end_epoch`). Other attributes are the tqdm bar's.

    Parameters
    ----------
    bar : tqdm.tqdm
    n_runs : int
    """

    def __init__(self, bar, n_runs):
        self.bar = bar
        self.n_runs = n_runs
        self.done = 0
        self.epochs_per_run = None

    def start_run(self, epochs):
        if self.epochs_per_run is None and epochs:
            self.epochs_per_run = epochs
            self.bar.unit = "epoch"
            self.bar.total = self.n_runs * epochs
            self._show(self.done * epochs)

    def end_epoch(self, epoch):
        if self.epochs_per_run is not None:
            self._show(self.done * self.epochs_per_run + min(epoch, self.epochs_per_run))

    def update(self):
        self.done += 1
        self._show(self.done * (self.epochs_per_run or 1))

    def _show(self, n):
        self.bar.n = n
        if not self.bar.disable:
            self.bar.refresh()

    def __getattr__(self, name):
        return getattr(self.bar, name)


@contextlib.contextmanager
def progress(total, description, verbose):
    """Context with a bar over ``total`` runs; yields the bar (disabled at ``verbose=0``).

    Parameters
    ----------
    total : int
        Runs (query trainings) to be computed.
    description : str
        What is computed, shown before the bar.
    verbose : int
        0: nothing; 1: the bar, with every epoch's loss; 2: also the query
        networks' own per-epoch log (skorch's ``verbose=1``).
    """
    tqdm_bar = tqdm(total=total, desc=description, unit="run", leave=False,
                    disable=verbose < 1)
    bar = RunBar(tqdm_bar, total)
    token = _active.set(_Progress(bar, verbose))
    try:
        yield bar
    finally:
        _active.reset(token)
        # tqdm draws at most every 0.1 s: without this, runs that end sooner
        # never show their final count (logs keep the last drawn state).
        if not bar.disable:
            bar.refresh()
        bar.close()


def query_net_verbose(estimator_verbose):
    """The ``verbose`` of a query network: the estimator's own, or 1 at ``verbose=2``."""
    active = _active.get()
    if active is not None and active.verbose >= 2:
        return 1
    return estimator_verbose


def epoch_callbacks():
    """``[(name, callback)]`` that report a query network's epochs to the active bar."""
    active = _active.get()
    if active is None or active.verbose < 1:
        return []
    return [("skprune_progress", EpochProgress(active.bar))]


#: The epochs the query network now fitting will train (set by fit_query_net).
_planned_epochs = contextvars.ContextVar("skprune_planned_epochs", default=None)


@contextlib.contextmanager
def planned_epochs(epochs):
    """Within, a fitting query network trains ``epochs`` epochs (``None``: its ``max_epochs``)."""
    token = _planned_epochs.set(epochs)
    try:
        yield
    finally:
        _planned_epochs.reset(token)


class EpochProgress(Callback):
    """Show a query network's epochs and loss on a :class:`RunBar`.

    Parameters
    ----------
    bar : RunBar
    """

    def __init__(self, bar):
        self.bar = bar

    def on_train_begin(self, net, **kwargs):
        self.epochs_ = _planned_epochs.get() or net.max_epochs
        self.start_ = len(net.history)
        self.bar.start_run(self.epochs_)

    def on_epoch_end(self, net, **kwargs):
        record = net.history[-1]
        loss = record.get("train_loss")
        epoch = len(net.history) - getattr(self, "start_", 0)
        postfix = f"epoch {epoch}/{getattr(self, 'epochs_', net.max_epochs)}"
        if loss is not None:
            postfix += f", loss {loss:.4g}"
        self.bar.set_postfix_str(postfix)
        self.bar.end_epoch(epoch)

    def __getstate__(self):
        # A fitted query net may be pickled; a bar cannot be.
        return {**self.__dict__, "bar": None}
