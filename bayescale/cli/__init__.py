"""The ``bayescale`` command line: fit, predict, allocate, plot, report, compare and backtest.

Data and JSON go to stdout; progress, warnings and errors go to stderr. Exit codes: 0 success,
2 bad input (an unreadable runs table, a bad option, an unknown card or prior; one line
``error: <message>`` on stderr, no traceback), 5 sampler problems under ``--strict``, 1 anything
unexpected (set ``BAYESCALE_DEBUG=1`` to see its traceback).

Each command parses its options, calls the library and renders the answer:

- :mod:`~bayescale.cli.common`: the app, consoles, error mapping, output helpers;
- :mod:`~bayescale.cli.options`: the option groups declared once (runs, sampler);
- :mod:`~bayescale.cli.fitting` (``fit``, ``demo``), :mod:`~bayescale.cli.cards`,
  :mod:`~bayescale.cli.answers` (``predict``, ``optimal``, ``contrast``, ``plan``, ``epochs``,
  ``plot``), :mod:`~bayescale.cli.workflows` (``report``, ``compare``, ``backtest``);
- :mod:`~bayescale.cli.docs` and :mod:`~bayescale.cli.render`: JSON and tables.

PyMC, ArviZ and matplotlib are imported inside the commands that need them, so ``bayescale --help``
and ``bayescale cards`` start fast. BLAS and OpenMP are limited to one thread unless the
environment says otherwise: the sampler already runs one chain per core, and oversubscribing cores
made sampling several times slower.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from bayescale.cli import answers, cards, fitting, workflows  # noqa: E402, F401 (registers)
from bayescale.cli.common import (  # noqa: E402
    EXIT_INPUT,
    EXIT_OK,
    EXIT_SAMPLER,
    EXIT_UNEXPECTED,
    app,
)

__all__ = ["EXIT_INPUT", "EXIT_OK", "EXIT_SAMPLER", "EXIT_UNEXPECTED", "app", "main"]

# the commands in the order --help lists them
_ORDER = ("fit", "cards", "predict", "optimal", "contrast", "plan", "plot", "report", "compare",
          "backtest", "epochs", "demo")
app.registered_commands.sort(key=lambda c: _ORDER.index(c.callback.__name__))


def main(argv=None) -> None:
    """Entry point of the ``bayescale`` console script.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Examples
    --------
    >>> main(["--version"])  # doctest: +SKIP
    bayescale 0.1.0

    Notes
    -----
    Run as the console script (``argv`` None), the process ends with the command, so when the
    command is done (outputs written and closed, success or not) the garbage collector is
    frozen: the interpreter's last collection would otherwise walk every PyMC and PyTensor graph
    the command built, about 0.7 s of a 6 s warm ``bayescale fit``, to free memory the operating
    system takes back anyway. Exit handlers and module teardown still run. Called with ``argv``
    (from Python, where the process goes on), nothing is frozen.
    """
    import gc

    try:
        app(args=argv, prog_name="bayescale")
    finally:
        if argv is None:
            gc.freeze()
