"""Save and load fits as netCDF (HDF5), atomically.

A fit is an ``xarray.DataTree``; :func:`save` writes it to a temporary file in the target folder and
renames it into place, so a crash or a full disk never leaves a half-written file and an existing
file stays intact until the new one is complete.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bayescale.errors import InputError


def atomic_write(path, write) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically.

    Parameters
    ----------
    path : str or Path
        Destination.
    write : callable
        Writes the content to the temporary path it is given.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write(d / "a.txt", lambda p: pathlib.Path(p).write_text("hi")).read_text()
    'hi'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
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


def load(path):
    """Load a fit saved by :func:`save`.

    Parameters
    ----------
    path : str or Path
        A ``posterior.nc`` written by bayescale.

    Returns
    -------
    xarray.DataTree
        Fully loaded in memory (the file is closed), ready for :func:`bayescale.predict`.

    Raises
    ------
    InputError
        If the file is missing, unreadable, or not a bayescale fit.

    Examples
    --------
    >>> import bayescale as bs
    >>> post = bs.load("out/posterior.nc")  # doctest: +SKIP
    """
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise InputError(f"fit file not found: {path}")
    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            tree = tree.load()
    except (OSError, ValueError) as err:
        raise InputError(f"{path} is not a readable netCDF fit: {err}") from None
    if "bayescale_card" not in tree.attrs or "posterior" not in tree.children:
        raise InputError(f"{path} is a netCDF file but not a bayescale fit (no card or posterior)")
    return tree
