"""Exceptions and warnings raised by bayescale.

Every user-facing error is a :class:`BayescaleError` (a ``ValueError``) with a one-line message that
names what was wrong (row, column, parameter) and what was expected. The CLI turns these into a
one-line message on stderr and a distinct exit code, never a traceback.
"""


class BayescaleError(ValueError):
    """Base class of all errors bayescale raises on purpose."""


class InputError(BayescaleError):
    """A runs table, option or query that cannot be used as given."""


class CardError(BayescaleError):
    """A model card (TOML) or prior specification that cannot be used as given."""


class SamplerWarning(UserWarning):
    """Convergence problems: divergences, R-hat above threshold, low ESS, tree-depth hits."""


class ConvergenceError(BayescaleError):
    """Raised instead of :class:`SamplerWarning` when a fit is run with ``strict=True``."""
