"""Read a saved fit back, checking that the file holds a fit of some kind.

Writing is :func:`bayescale.core.io.save` (atomic, umask-respecting); reading needs to know the
layouts of the kinds of fit, so it lives here.
"""

from __future__ import annotations

from pathlib import Path

from bayescale.errors import InputError
from bayescale.fits.accuracy import is_accuracy_ensemble
from bayescale.fits.members import is_ensemble

__all__ = ["load"]


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
    stacked = is_ensemble(tree) or is_accuracy_ensemble(tree)
    is_fit = "posterior" in tree.children or (stacked and "member_0" in tree.children)
    if "bayescale_card" not in tree.attrs or not is_fit:
        raise InputError(f"{path} is a netCDF file but not a bayescale fit (no card or posterior)")
    return tree
