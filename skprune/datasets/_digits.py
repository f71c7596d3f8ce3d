"""scikit-learn's digits as 1×8×8 images."""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from ._base import make_bunch


def load_digits_images(test_size=0.25, random_state=0):
    """scikit-learn's handwritten digits as 1×8×8 images, split into train and test.

    The 1,797 digits ship with scikit-learn, so this loader needs no files
    and no network: it is the dataset for quick CPU runs and examples.

    Parameters
    ----------
    test_size : float or int, default=0.25
        Share (float) or number (int) of samples in the test set; the split
        is stratified by class.
    random_state : int, RandomState instance or None, default=0
        Seeds the split.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_train``, ``X_test``: ``float32`` arrays of shape (n, 1, 8, 8)
        with values in [0, 1] (pixel intensities 0..16 divided by 16);
        ``y_train``, ``y_test``: ``int64`` labels 0..9; ``class_names``:
        ``["0", ..., "9"]``; ``name`` and ``DESCR``.

    Examples
    --------
    >>> from skprune.datasets import load_digits_images
    >>> data = load_digits_images()
    >>> data.X_train.shape, data.X_test.shape
    ((1347, 1, 8, 8), (450, 1, 8, 8))
    >>> data.class_names[:3]
    ['0', '1', '2']
    """
    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)[:, np.newaxis]
    y = digits.target.astype(np.int64)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=random_state, stratify=y
    )
    return make_bunch(
        "digits",
        X_train,
        y_train,
        X_test,
        y_test,
        [str(label) for label in digits.target_names],
        "scikit-learn's 8×8 handwritten digits (10 classes), as 1×8×8 images in [0, 1].",
    )
