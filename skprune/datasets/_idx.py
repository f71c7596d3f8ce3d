"""Reading IDX files (the MNIST family's format), plain or gzipped.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the
number of dimensions), one big-endian ``uint32`` per dimension, then the
values in C order.
"""

import gzip
import zlib
from pathlib import Path

import numpy as np

from ._base import DatasetFormatError

#: IDX type code -> numpy dtype of the values (big-endian where it matters).
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path):
    """The array stored in an IDX file; gzipped when the name ends in ``.gz``.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    array : ndarray
        In the file's dtype and shape.

    Raises
    ------
    DatasetFormatError
        If the file is not valid gzip, has a bad header, or holds fewer or
        more values than its header announces.
    """
    path = Path(path)
    content = _read_bytes(path)
    if len(content) < 4 or content[:2] != b"\x00\x00" or content[2] not in _IDX_DTYPES:
        raise DatasetFormatError(
            f"{path} is not an IDX file: its header {content[:4]!r} is not a valid IDX "
            "magic number. The file is corrupted or is not the file it is named "
            "after: download it again."
        )
    dtype, ndim = _IDX_DTYPES[content[2]], content[3]
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise DatasetFormatError(
            f"{path} is truncated: it ends inside its IDX header. Download it again."
        )
    shape = tuple(int(size) for size in np.frombuffer(content, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(content) - header_size
    if actual != expected:
        state = "truncated" if actual < expected else "corrupted (trailing bytes)"
        raise DatasetFormatError(
            f"{path} is {state}: its header announces an array of shape {shape} "
            f"({expected} bytes of data) but it holds {actual} bytes. Download it again."
        )
    return np.frombuffer(content, dtype, offset=header_size).reshape(shape)


def _read_bytes(path):
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as file:
            return file.read()
    # Truncated archives end in EOFError, damaged ones in BadGzipFile (an
    # OSError) or zlib.error: all mean the same to the user.
    except (EOFError, OSError, zlib.error) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise DatasetFormatError(
            f"{path} is not a readable gzip file ({error}); it is truncated or "
            "corrupted. Download it again."
        ) from None
