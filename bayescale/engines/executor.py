"""Run independent fits at once: in this process, in a local process pool, or on Ray.

The law ensemble fits every card to all runs and again to each rolling split's training runs;
backtests nest one such ensemble, and metrics, laws and splits multiply the fits. The fits are
independent given the seed, so they can run in any order and anywhere. This module hands them to
an existing engine, never to a scheduler of its own:

- ``"serial"``: one after the other in this process (the reference);
- ``"process"``: loky's reusable process pool (``loky.get_reusable_executor``, the engine
  under joblib; a :class:`concurrent.futures.Executor`). Loky rather than
  :class:`~concurrent.futures.ProcessPoolExecutor` because its workers outlive one call: a worker
  pays the imports (about 7 s of pymc, nutpie and arviz on 2 cores) and the load of a model
  from the compile cache once, then serves the next ensemble, backtest or calibration fold, and
  exits after :data:`IDLE_SECONDS` idle. Workers start fresh (fork + exec: this process runs
  threads, nutpie's and BLAS's, and a bare ``fork`` may then deadlock), with one BLAS thread
  (:data:`ONE_THREAD`, and :mod:`threadpoolctl`): the parallelism is nutpie's chains and the
  pool, not BLAS. Two workers compiling the same model take the compile cache's entry lock in
  turn (:mod:`bayescale.core.compiled`), and every fit runs code loaded from that cache, so a
  fit's draws do not depend on the process it ran in;
- ``"ray"``: Ray tasks (``pip install bayescale[ray]``), on the cluster at ``RAY_ADDRESS`` when
  that is set, else on a local Ray instance. Each task asks for as many CPUs as it runs threads
  (capped at the largest node's), with one BLAS thread. Ray's workers must be able to import
  ``bayescale`` (the same version: a fit's draws are bit-identical to a serial fit's on the
  same machine; on another CPU, numba may compile code that differs in the last bits).

Results come back in task order, a task's exception propagates with the task named in a note,
and the warnings a task raised in a worker are re-emitted here, in task order, so the caller's
warning filters (and ``warnings.catch_warnings``) see them as in a serial run.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, wait

from bayescale.errors import InputError

__all__ = ["EXECUTORS", "available_cores", "default_workers", "run_tasks"]

EXECUTORS = ("serial", "process", "ray")
"""Names of the ways :func:`run_tasks` can run tasks."""

IDLE_SECONDS = 60
"""Worker processes of ``"process"`` exit after this long without a task (until then, later
calls reuse them, with their imports and loaded models)."""

ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                     "MKL_NUM_THREADS", "BLIS_NUM_THREADS")}
"""Environment of the worker processes, set before they import anything: one BLAS thread."""

_BLAS_LIMIT = []  # the worker's threadpoolctl limiter, kept alive for the process's lifetime


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(threads_per_task: int = 1) -> int:
    """Worker processes that fill the cores without oversubscribing them.

    ``available_cores() // threads_per_task``, at least 1. A fit with nutpie runs one thread
    per chain (up to the cores), so with ``threads_per_task`` the number of chains, two cores
    and four chains give one worker: the fits then run in this process.

    Parameters
    ----------
    threads_per_task : int, default 1
        Threads each task keeps busy.

    Returns
    -------
    int
    """
    return max(1, available_cores() // max(1, int(threads_per_task)))


def run_tasks(
    fn: Callable,
    tasks: Sequence[tuple[str, dict]],
    *,
    executor: str = "process",
    max_workers: int | None = None,
    threads_per_task: int = 1,
    on_done: Callable[[int], None] | None = None,
) -> list:
    """Call ``fn(**kwargs)`` for every task, independently, and return the results in task order.

    Parameters
    ----------
    fn : callable
        The task. For ``"process"`` and ``"ray"``, ``fn``, its arguments and its result must
        pickle (with cloudpickle: a module-level function travels by name, and its module must
        import in the workers).
    tasks : sequence of (str, dict)
        ``(label, kwargs)`` per task; the label names the task in errors.
    executor : {"process", "serial", "ray"}, default "process"
        Where the tasks run (see the module's docstring).
    max_workers : int, optional
        Worker processes of ``"process"``. Default :func:`default_workers` of
        ``threads_per_task``; with one worker (or one task) the tasks run serially in this
        process, since a pool of one only adds its start-up. Ignored by ``"ray"``, which
        schedules by CPUs.
    threads_per_task : int, default 1
        Threads each task keeps busy (the number of chains for a nutpie fit): sets the default
        ``max_workers`` and the CPUs a Ray task asks for.
    on_done : callable, optional
        Called in this process with the task's index as each task finishes (progress).

    Returns
    -------
    list
        ``fn``'s results, in the order of ``tasks``.

    Raises
    ------
    InputError
        For an unknown executor, or ``"ray"`` without Ray installed.
    Exception
        The first failing task's exception (in order of finishing), with a note naming the task.
    """
    tasks = list(tasks)
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r}; valid executors: {', '.join(EXECUTORS)}")
    if max_workers is not None and (int(max_workers) != max_workers or max_workers < 1):
        raise InputError(f"max_workers must be a positive integer, got {max_workers!r}")
    done = on_done or (lambda i: None)
    if executor == "ray":
        return _run_ray(fn, tasks, threads_per_task=threads_per_task, done=done)
    workers = default_workers(threads_per_task) if max_workers is None else int(max_workers)
    if executor == "serial" or min(workers, len(tasks)) <= 1:
        return _run_serial(fn, tasks, done=done)
    return _run_pool(fn, tasks, workers=min(workers, len(tasks)), done=done)


def _run_serial(fn, tasks, *, done) -> list:
    out = []
    for i, (label, kwargs) in enumerate(tasks):
        try:
            out.append(fn(**kwargs))
        except Exception as err:
            err.add_note(f"in task {label!r} (executor 'serial')")
            raise
        done(i)
    return out


def _call(fn, kwargs):
    """Run one task in a worker: one BLAS thread, every warning recorded for the caller."""
    if not _BLAS_LIMIT:  # the BLAS loaded so far (numpy's, by fn's module); ONE_THREAD the rest
        from threadpoolctl import threadpool_limits

        _BLAS_LIMIT.append(threadpool_limits(limits=1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(**kwargs)
    records = [(w.message, w.category, w.filename, w.lineno) for w in caught]
    return result, records


def _reemit(records) -> None:
    for message, category, filename, lineno in records:
        warnings.warn_explicit(message, category, filename, lineno)


def _finish(results, tasks, done_idx):
    """Re-emit the warnings of the finished tasks in task order; return their results."""
    for i in sorted(done_idx):
        _reemit(results[i][1])
    return [results[i][0] for i in range(len(tasks))] if len(done_idx) == len(tasks) else None


def _run_pool(fn, tasks, *, workers, done) -> list:
    from loky import get_reusable_executor

    results, finished = {}, set()
    # loky's start method is fork + exec (a fresh interpreter, as spawn): this process runs
    # threads (nutpie, BLAS), and fork() alone may then deadlock. The workers are reused by
    # later calls and exit after IDLE_SECONDS without work.
    pool = get_reusable_executor(max_workers=workers, timeout=IDLE_SECONDS, env=ONE_THREAD)
    futures = {pool.submit(_call, fn, kwargs): i for i, (_, kwargs) in enumerate(tasks)}
    pending = set(futures)
    while pending:
        ready, pending = wait(pending, return_when=FIRST_COMPLETED)
        for fut in sorted(ready, key=futures.get):
            i = futures[fut]
            try:
                results[i] = fut.result()
            except Exception as err:
                for other in pending:
                    other.cancel()
                _finish(results, tasks, finished)
                err.add_note(f"in task {tasks[i][0]!r} (executor 'process')")
                raise
            finished.add(i)
            done(i)
    return _finish(results, tasks, finished)


def _ray():
    try:
        import ray
    except ImportError as err:
        raise InputError("executor 'ray' needs Ray: pip install 'bayescale[ray]'") from err
    if not ray.is_initialized():
        # the cluster at RAY_ADDRESS, else a new local instance; worker output stays off this
        # process's stdout, which carries data only
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, log_to_driver=False,
                 include_dashboard=False)
    return ray


def _run_ray(fn, tasks, *, threads_per_task, done) -> list:
    ray = _ray()
    if not tasks:
        return []
    node_cpus = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
    cpus = max(1, min(int(threads_per_task), int(max(node_cpus, default=1))))
    remote = ray.remote(num_cpus=cpus, max_retries=0,
                        runtime_env={"env_vars": ONE_THREAD})(_call)
    refs = {remote.remote(fn, kwargs): i for i, (_, kwargs) in enumerate(tasks)}
    results, finished, pending = {}, set(), list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        for ref in ready:
            i = refs[ref]
            try:
                results[i] = ray.get(ref)
            except ray.exceptions.RayError as err:  # the task's own error, or Ray's
                for other in pending:
                    ray.cancel(other)
                _finish(results, tasks, finished)
                cause = getattr(err, "cause", None)
                cause = cause if isinstance(cause, Exception) else err
                cause.add_note(f"in task {tasks[i][0]!r} (executor 'ray')")
                if cause is err:
                    raise
                raise cause from err
            finished.add(i)
            done(i)
    return _finish(results, tasks, finished)
