"""The files of a disk cache: entries read as data, and written so that teams can share them.

An entry is one ``.npz`` file (a zip archive of ``.npy`` arrays) named by its
key's digest. Anyone who can write the cache directory can plant a file
there, so an entry is opened as untrusted data:

- only a regular file is opened (a FIFO, a device or a symbolic link is
  refused without being opened for reading, so it cannot block);
- with a :class:`Schema`, only the members it declares are read, each after
  its size in the zip directory has been checked against the declared dtype
  and shape, and its ``.npy`` header against both; nothing else is inflated;
- nothing is ever unpickled.

An entry is written to a ``.partial`` file named after its writer (host and
process id), then published under its final name with a hard link, which
never replaces an entry another process published first: writers that race
leave one entry. The partial files of writers that died (killed during a
write) are removed by the next write.

Permissions follow the directory: an entry gets the permissions that the
writer's umask gives new files, without write access for others, and, in a
directory with the setgid bit, read access for the directory's group
whatever the umask, so that a directory made with
``install -d -m 2770 -g team DIR`` is shared by the team.
"""

import errno
import os
import re
import socket
import stat
import struct
import time
import zipfile
import zlib

import numpy as np

from .exceptions import with_article

__all__ = ["BadEntryError", "Schema", "UnreadableEntryError", "read_entry",
           "remove_stale_partials", "write_entry"]

#: A ``.partial`` file older than this (seconds) is removed whoever wrote it:
#: an entry takes seconds to write, and a writer on another machine cannot
#: be asked whether it is still alive.
PARTIAL_MAX_AGE = 24 * 3600

PARTIAL_SUFFIX = ".partial"

#: Room left in a member's size for its ``.npy`` header (numpy writes 64 to
#: a few hundred bytes; it reads at most 10,000).
_HEADER_ROOM = 10_000
#: Room per member for the zip format's own records (local header, central
#: directory entry, zip64 extras), and for the end records.
_ZIP_ROOM_PER_MEMBER = 512
_ZIP_ROOM = 1024


class BadEntryError(ValueError):
    """A cache entry that is not what its kind of result holds; it is recomputed and replaced."""


class UnreadableEntryError(OSError):
    """A cache entry this process may not read; it is recomputed but left in place."""


class Schema:
    """The arrays one kind of cached result holds: each one's name, dtype and shape.

    A stored entry is read only if it holds exactly these arrays, with
    exactly these dtypes and shapes; a computed result is cast to the
    declared dtypes before it is stored.

    Parameters
    ----------
    **arrays : (dtype, shape)
        Every array of the result, by name: a numpy dtype (or its name) and
        a tuple of ints.

    Examples
    --------
    >>> from skprune.cache import Schema
    >>> schema = Schema(scores=("float64", (300,)))
    >>> schema.max_bytes("scores") > 300 * 8
    True
    """

    def __init__(self, **arrays):
        self.arrays = {}
        for name, (dtype, shape) in arrays.items():
            dtype = np.dtype(dtype)
            if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
                raise TypeError(f"Schema array {name!r}: {dtype} is not a plain numeric dtype.")
            self.arrays[name] = (dtype, tuple(int(length) for length in shape))

    def __repr__(self):
        arrays = ", ".join(f"{name}=({str(dtype)!r}, {shape})"
                           for name, (dtype, shape) in self.arrays.items())
        return f"Schema({arrays})"

    def nbytes(self, name):
        """Bytes of the array ``name``'s data."""
        dtype, shape = self.arrays[name]
        return dtype.itemsize * int(np.prod(shape, dtype=np.int64))

    def max_bytes(self, name):
        """The largest ``.npy`` member that can hold the array ``name``."""
        return self.nbytes(name) + _HEADER_ROOM

    def max_file_bytes(self):
        """The largest ``.npz`` file that can hold these arrays."""
        return (sum(self.max_bytes(name) for name in self.arrays)
                + _ZIP_ROOM_PER_MEMBER * len(self.arrays) + _ZIP_ROOM)

    def conform(self, result):
        """``result`` with every array cast to its declared dtype.

        Raises
        ------
        ValueError
            If ``result`` does not hold exactly the declared arrays, with
            their shapes, or one cannot be cast (e.g. complex to float).
        """
        if set(result) != set(self.arrays):
            raise ValueError(f"the result holds {sorted(result)}; its schema declares "
                             f"{sorted(self.arrays)}")
        conformed = {}
        for name, (dtype, shape) in self.arrays.items():
            value = np.asarray(result[name])
            if value.shape != shape:
                raise ValueError(f"{name} has shape {value.shape}; its schema declares {shape}")
            if not np.can_cast(value.dtype, dtype, casting="same_kind"):
                raise ValueError(f"{name} has dtype {value.dtype}; its schema declares {dtype}")
            conformed[name] = value.astype(dtype, copy=False)
        return conformed


def read_entry(path, schema=None):
    """The arrays of the entry at ``path``, or ``None`` if there is none.

    Parameters
    ----------
    path : pathlib.Path
    schema : Schema or None
        Without one, every member is read, but only from an archive whose
        members are stored uncompressed (as ``np.savez`` writes them), so
        that nothing inflates beyond the file's own size.

    Returns
    -------
    dict of str to ndarray, or None

    Raises
    ------
    BadEntryError
        For anything but a regular ``.npz`` file holding what ``schema``
        declares.
    UnreadableEntryError
        If this process may not read it.
    """
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return None
    except PermissionError as exc:
        raise UnreadableEntryError(exc.errno, exc.strerror) from None
    _check_regular(status)
    if schema is not None and status.st_size > schema.max_file_bytes():
        raise BadEntryError(f"it is {status.st_size} bytes; an entry of its kind holds at "
                            f"most {schema.max_file_bytes()}")
    flags = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        return None  # replaced by its writer meanwhile
    except PermissionError as exc:
        raise UnreadableEntryError(exc.errno, exc.strerror) from None
    except OSError as exc:  # ELOOP: it became a link meanwhile
        raise BadEntryError(f"it cannot be opened as a file ({exc.strerror})") from None
    with os.fdopen(descriptor, "rb") as file:
        _check_regular(os.fstat(descriptor))
        try:
            with zipfile.ZipFile(file) as archive:
                return _read_members(archive, schema)
        except BadEntryError:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, struct.error, EOFError,
                ValueError, KeyError, OSError, NotImplementedError, RuntimeError) as exc:
            # A damaged archive or .npy header, an unsupported or encrypted member.
            raise BadEntryError(f"it is not a valid .npz archive ({exc})") from None


def _check_regular(status):
    if not stat.S_ISREG(status.st_mode):
        kind = ("a symbolic link" if stat.S_ISLNK(status.st_mode)
                else "a FIFO" if stat.S_ISFIFO(status.st_mode)
                else "a device" if stat.S_ISCHR(status.st_mode) or stat.S_ISBLK(status.st_mode)
                else "a directory" if stat.S_ISDIR(status.st_mode)
                else "not a regular file")
        raise BadEntryError(f"it is {kind}, not a regular file")


def _read_members(archive, schema):
    infos = archive.infolist()
    names = [info.filename for info in infos]
    expected = None if schema is None else [f"{name}.npy" for name in schema.arrays]
    if len(set(names)) != len(names):
        raise BadEntryError("it holds a member twice")
    if expected is not None and set(names) != set(expected):
        raise BadEntryError(f"it holds the members {sorted(names)}; an entry of its kind "
                            f"holds {sorted(expected)}")
    result = {}
    for info in infos:
        if not info.filename.endswith(".npy") or info.flag_bits & 0x1:
            raise BadEntryError(f"its member {info.filename!r} is not a plain .npy array")
        name = info.filename[:-len(".npy")]
        if schema is None:
            if info.compress_type != zipfile.ZIP_STORED:
                raise BadEntryError(f"its member {info.filename!r} is compressed")
            declared = None
        else:
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise BadEntryError(f"its member {info.filename!r} uses an unexpected "
                                    "compression")
            if info.file_size > schema.max_bytes(name):
                raise BadEntryError(
                    f"its member {info.filename!r} inflates to {info.file_size} bytes; "
                    f"{with_article(schema.arrays[name][0])} array of shape "
                    f"{schema.arrays[name][1]} "
                    f"takes at most {schema.max_bytes(name)}")
            declared = schema.arrays[name]
        with archive.open(info) as member:
            result[name] = _read_array(member, info, declared)
    return result


def _read_array(member, info, declared):
    """One ``.npy`` member, its header checked against ``declared`` before its data is read."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
    elif version in ((2, 0), (3, 0)):
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise BadEntryError(f"its member {info.filename!r} has .npy version {version}")
    where = f"its member {info.filename!r}"
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise BadEntryError(f"{where} holds {dtype} data, not numbers")
    if declared is not None:
        if dtype.newbyteorder("=") != declared[0].newbyteorder("="):
            raise BadEntryError(f"{where} has dtype {dtype}; an entry of its kind holds "
                                f"{declared[0]}")
        if tuple(shape) != declared[1]:
            raise BadEntryError(f"{where} has shape {tuple(shape)}; an entry of its kind "
                                f"holds shape {declared[1]}")
    nbytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if nbytes > info.file_size:
        raise BadEntryError(f"{where} is shorter than its header says")
    data = member.read(nbytes)
    if len(data) != nbytes or member.read(1):  # the last read checks the CRC
        raise BadEntryError(f"{where} does not hold exactly the array its header describes")
    array = np.frombuffer(data, dtype=dtype)
    array = array.reshape(shape[::-1]).T if fortran_order else array.reshape(shape)
    return array.astype(dtype.newbyteorder("="), order="C", copy=True)


def write_entry(path, result, *, replace=False):
    """Store ``result`` at ``path``; keep an entry another writer published first.

    Parameters
    ----------
    path : pathlib.Path
    result : dict of str to ndarray
    replace : bool, default=False
        Replace an existing entry (one found damaged).

    Raises
    ------
    OSError
        If the entry cannot be written (a full disk, a read-only cache).
    """
    folder = path.parent
    make_shared_folder(folder)
    remove_stale_partials(folder)
    partial = folder / f"{path.stem}.{_host()}.{os.getpid()}.{os.urandom(4).hex()}{PARTIAL_SUFFIX}"
    flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    descriptor = os.open(partial, flags, 0o644)  # the umask applies
    try:
        with os.fdopen(descriptor, "wb") as file:
            _share_with_group(descriptor, folder)
            np.savez(file, **result)
        _publish(partial, path, replace)
    finally:
        try:
            os.unlink(partial)
        except FileNotFoundError:
            pass


def _publish(partial, path, replace):
    try:
        os.link(partial, path)  # atomic, and never replaces an existing entry
        return
    except FileExistsError:
        if replace:
            os.replace(partial, path)
        return
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV,
                             errno.EMLINK, errno.ENOSYS, errno.EACCES):
            raise
    # A file system without hard links: a rename, which replaces whatever
    # another writer published between this check and the rename (rare, and
    # both entries hold the same result).
    if replace or not os.path.lexists(path):
        os.replace(partial, path)


def _share_with_group(descriptor, folder):
    """Give a setgid folder's group read access to a new entry, whatever the umask."""
    folder_mode = os.stat(folder).st_mode
    if folder_mode & stat.S_ISGID and folder_mode & stat.S_IRGRP:
        mode = stat.S_IMODE(os.fstat(descriptor).st_mode)
        if not mode & stat.S_IRGRP:
            os.fchmod(descriptor, mode | stat.S_IRGRP)


def make_shared_folder(folder):
    """Create ``folder`` (and its parents); in a setgid parent, with the parent's group access.

    ``mkdir`` applies the umask, and a writer with umask 077 would otherwise
    make the folder private inside a directory its team shares.
    """
    if folder.is_dir():
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(folder)
    except FileExistsError:
        return  # made by another writer meanwhile
    parent_mode = os.stat(folder.parent).st_mode
    if parent_mode & stat.S_ISGID:
        mode = os.stat(folder).st_mode
        os.chmod(folder, stat.S_IMODE(mode) | stat.S_ISGID | (parent_mode & stat.S_IRWXG))


def remove_stale_partials(folder, now=None):
    """Remove the ``.partial`` files whose writers are gone.

    A partial file names its writer's host and process id. One of this host
    whose process no longer runs, or runs a process started after the file
    was last written (its id was reused), is removed; so is any partial file
    older than :data:`PARTIAL_MAX_AGE`, whoever wrote it.

    Parameters
    ----------
    folder : pathlib.Path
    now : float, default=None
        The current time (``time.time()``).

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    host = _host()
    for entry in entries:
        if not entry.name.endswith(PARTIAL_SUFFIX):
            continue
        try:
            written = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        writer = _writer_of(entry.name)
        stale = now - written > PARTIAL_MAX_AGE or (
            writer is not None and writer[0] == host and not _alive_since(writer[1], written))
        if stale:
            try:
                os.unlink(entry.path)
                removed.append(folder / entry.name)
            except OSError:
                pass  # removed by another writer, or not ours to remove
    return removed


def _writer_of(name):
    """``(host, pid)`` of a partial file's writer, from its name; ``None`` if it has none."""
    parts = name[:-len(PARTIAL_SUFFIX)].split(".")
    if len(parts) < 4 or not parts[-2].isdigit():
        return None
    return ".".join(parts[1:-2]), int(parts[-2])


def _host():
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _alive_since(pid, written):
    """Whether process ``pid`` runs and may have written a file last modified at ``written``."""
    if pid == os.getpid():
        return True
    started = _start_time(pid)
    if started is False:
        return False
    if started is None:  # no /proc: whether the id is in use at all
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's process
        return True
    # /proc gives the start in clock ticks after a boot time in whole seconds.
    return started <= written + 2


def _start_time(pid):
    """Start time of ``pid`` (seconds since the epoch); ``False`` if it is not running (or a
    zombie), ``None`` where ``/proc`` cannot tell."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            fields = file.read().rsplit(b")", 1)[1].split()
    except FileNotFoundError:
        return False if os.path.isdir("/proc/self") else None
    except OSError:
        return None
    if fields[0] in (b"Z", b"X"):
        return False
    try:
        boot = _boot_time()
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _boot_time():
    with open("/proc/stat", "rb") as file:
        for line in file:
            if line.startswith(b"btime "):
                return int(line.split()[1])
    raise ValueError("no btime in /proc/stat")
