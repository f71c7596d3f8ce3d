"""The global random states: seeding runs, and leaving the caller's state alone."""

import random
from contextlib import contextmanager

import numpy as np
import torch


@contextmanager
def preserved_random_state():
    """Context that restores the global torch (CPU and CUDA), numpy and Python RNGs.

    Whatever runs inside may draw from or reseed the global generators (a
    ``DataLoader`` draws its base seed from torch's, user callbacks may use
    numpy's); the caller finds them exactly as it left them.
    """
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


@contextmanager
def seeded(seed):
    """Context in which the global torch, numpy and Python RNGs are seeded, then restored.

    Parameters
    ----------
    seed : int
    """
    seed = int(seed)
    with preserved_random_state():
        _seed_torch(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        yield


def _seed_torch(seed):
    """``torch.manual_seed(seed)``, without its cost on a machine without accelerators.

    ``torch.manual_seed`` also queues a seeding of every accelerator backend
    that is not initialized yet, capturing a stack trace for each, which
    costs a millisecond per call; where none is available, seeding the CPU
    generator is the same.
    """
    accelerators = (torch.cuda.is_available() or torch.backends.mps.is_available()
                    or (hasattr(torch, "xpu") and torch.xpu.is_available()))
    if accelerators:
        torch.manual_seed(seed)
    else:
        torch.random.default_generator.manual_seed(seed)


def run_seeds(seed, n_runs):
    """The seed of each of ``n_runs`` independent runs, derived from ``seed``.

    Parameters
    ----------
    seed : int
    n_runs : int

    Returns
    -------
    list of int
        Non-negative seeds below ``2**31``.
    """
    return [int(np.random.SeedSequence([int(seed), run]).generate_state(1)[0] >> 1)
            for run in range(n_runs)]
