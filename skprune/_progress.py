"""Progress of query training and scoring: a tqdm bar over runs, updated every epoch.

A pruner (or quota) opens a bar for the runs it is about to compute; every
query network trained meanwhile (through :func:`skprune._query_training.train_query_net`)
reports its epochs to it, wherever in the code the training happens, through
a context variable rather than an argument threaded through every call.
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
    bar = tqdm(total=total, desc=description, unit="run", leave=False, disable=verbose < 1)
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


class EpochProgress(Callback):
    """Show a query network's epoch and loss on a tqdm bar.

    Parameters
    ----------
    bar : tqdm.tqdm
    """

    def __init__(self, bar):
        self.bar = bar

    def on_epoch_end(self, net, **kwargs):
        record = net.history[-1]
        loss = record.get("train_loss")
        postfix = f"epoch {record['epoch']}/{net.max_epochs}"
        if loss is not None:
            postfix += f", loss {loss:.4g}"
        self.bar.set_postfix_str(postfix)

    def __getstate__(self):
        # A fitted query net may be pickled; a bar cannot be.
        return {**self.__dict__, "bar": None}
