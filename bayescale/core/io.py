"""Atomic writes, and saving a fit as netCDF (HDF5); fits are read back by
:mod:`bayescale.fits.store`.

A fit is an ``xarray.DataTree``; :func:`save` writes it to a temporary file in the target folder and
renames it into place, so a crash or a full disk never leaves a half-written file and an existing
file stays intact until the new one is complete. Every file written here (fits, tables, reports,
figures) ends with the mode a plain ``open(path, "w")`` would give it, ``0o666 & ~umask``
(``0644`` under the usual umask ``022``), not the private ``0600`` of the temporary file.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from bayescale.errors import InputError

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """Return the process's file-mode creation mask without changing it.

    Read from ``/proc/self/status`` (Linux); elsewhere the mask is set and restored at once under
    a lock, so two threads of this module never see each other's temporary value.

    Returns
    -------
    int
        The umask, e.g. ``0o022``.

    Examples
    --------
    >>> 0 <= current_umask() <= 0o777
    True
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def atomic_write(path, write, *, inputs=()) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically.

    The temporary file is created private (``mkstemp``, mode ``0600``) in the destination folder
    and given mode ``0o666 & ~umask`` before it is renamed into place, so the result is readable
    by whoever could read a file the user's shell would have created there.

    Parameters
    ----------
    path : str or Path
        Destination.
    write : callable
        Writes the content to the temporary path it is given.
    inputs : iterable of str or Path, optional
        Files this output was made from; writing onto one of them is refused.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        If ``path`` is one of ``inputs``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write(d / "a.txt", lambda p: pathlib.Path(p).write_text("hi")).read_text()
    'hi'
    """
    path = Path(path)
    for source in inputs:
        source = Path(source)
        if path.exists() and source.exists() and os.path.samefile(path, source):
            raise InputError(
                f"refusing to write {path}: it is an input ({source}); choose another --out"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    return atomic_write(path, lambda p: Path(p).write_text(text, encoding="utf-8"))


def save(fit, path) -> Path:
    """Save a fit to a netCDF file, atomically.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit from :func:`bayescale.fit`.
    path : str or Path
        Destination (conventionally ``posterior.nc``).

    Returns
    -------
    Path
        The path written.

    Examples
    --------
    >>> import bayescale as bs
    >>> bs.save(post, "out/posterior.nc")  # doctest: +SKIP
    """
    return atomic_write(path, lambda p: fit.to_netcdf(p, engine="h5netcdf"))
