"""One progress bar over the fits of a long command, on stderr, only on a terminal.

Commands that run many fits (``compare``, ``backtest --calibration``, SBC, law ensembles) show a
single bar that advances once per finished fit. Library functions take a ``progress`` keyword and
turn it into an ``advance()`` callable with :func:`tracker`:

- ``None`` or ``False``: nothing is shown;
- ``True``: a bar from :func:`fit_progress` (drawn only when stderr is a terminal);
- a callable: called as ``progress(done, total)`` after each fit (to log, or to drive a bar
  owned by the caller, as the CLI does).

The bar goes to stderr, so stdout stays data only, and it is never drawn into a pipe or a log
file: with stderr redirected the commands are as quiet as before.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from bayescale.errors import InputError

__all__ = ["FitProgress", "fit_progress", "tracker"]


class FitProgress:
    """Counts finished fits and, when enabled, moves a rich progress bar.

    Attributes
    ----------
    total : int
        Number of fits expected.
    done : int
        Number of fits finished so far.
    enabled : bool
        Whether a bar is drawn.
    """

    def __init__(self, total: int, *, description: str, bar=None):
        self.total = int(total)
        self.done = 0
        self.description = description
        self._bar = bar
        self._task = None if bar is None else bar.add_task(description, total=self.total)

    @property
    def enabled(self) -> bool:
        return self._bar is not None

    def advance(self, n: int = 1) -> None:
        """Record ``n`` more finished fits."""
        self.done += int(n)
        if self._bar is not None:
            self._bar.advance(self._task, int(n))

    def describe(self, text: str) -> None:
        """Change the text before the bar (e.g. the card being fitted)."""
        self.description = text
        if self._bar is not None:
            self._bar.update(self._task, description=text)

    def __call__(self, done: int | None = None, total: int | None = None, *_) -> None:
        """Callable form for library ``progress=`` keywords: advance to ``done`` (or by one)."""
        self.advance(1 if done is None else max(int(done) - self.done, 0))


def _stderr_is_terminal() -> bool:
    stream = sys.stderr
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def fit_progress(total: int, *, description: str = "fits", enabled=None) -> Iterator[FitProgress]:
    """A progress bar over ``total`` fits on stderr, shown only on a terminal.

    Parameters
    ----------
    total : int
        Number of fits the bar counts to.
    description : str, default "fits"
        Text before the bar.
    enabled : bool, optional
        Force the bar on or off; default: on when stderr is a terminal.

    Yields
    ------
    FitProgress
        Call ``.advance()`` after each fit (or pass the object itself as a ``progress=``
        callable).

    Raises
    ------
    InputError
        If ``total`` is not a non-negative integer.

    Examples
    --------
    >>> with fit_progress(3, description="cards", enabled=False) as bar:
    ...     for _ in range(3):
    ...         bar.advance()
    >>> bar.done, bar.enabled
    (3, False)
    """
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise InputError(f"total must be a non-negative integer number of fits; got {total!r}")
    show = _stderr_is_terminal() if enabled is None else bool(enabled)
    if not show:
        yield FitProgress(total, description=description)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("fits"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        yield FitProgress(total, description=description, bar=bar)


@contextlib.contextmanager
def tracker(progress, *, total: int, description: str) -> Iterator[Callable[[], None]]:
    """Turn a library ``progress=`` keyword into an ``advance()`` callable.

    Parameters
    ----------
    progress : None, bool or callable
        ``None``/``False``: silent; ``True``: a :func:`fit_progress` bar; a callable: called as
        ``progress(done, total)`` after each fit.
    total : int
        Number of fits.
    description : str
        Text before the bar (``progress=True`` only).

    Yields
    ------
    callable
        Call with no argument after each finished fit.

    Raises
    ------
    InputError
        If ``progress`` is none of the above.

    Examples
    --------
    >>> seen = []
    >>> with tracker(lambda done, total: seen.append((done, total)), total=2,
    ...              description="x") as advance:
    ...     advance(); advance()
    >>> seen
    [(1, 2), (2, 2)]
    """
    if progress is None or progress is False:
        yield lambda: None
    elif progress is True:
        with fit_progress(total, description=description) as bar:
            yield bar.advance
    elif callable(progress):
        count = [0]

        def advance() -> None:
            count[0] += 1
            progress(count[0], total)

        yield advance
    else:
        raise InputError(
            f"progress must be True, False, None or a callable progress(done, total); "
            f"got {progress!r}"
        )
