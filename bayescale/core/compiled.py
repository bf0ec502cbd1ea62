"""Compile a PyMC model for nutpie once per machine: an on-disk cache that survives the process.

``nutpie.compile_pymc_model`` spends most of its time in ``numba.cfunc`` wrappers that close over
dynamic globals, so numba cannot cache them and every process pays the compile again. Here the
model's joined log-density and gradient, and the function that expands a point into every traced
variable, are compiled by PyTensor in ``NUMBA`` mode (nutpie's own graph preparation, so the
parameter order, transforms and initial points are those of ``compile_pymc_model``), and wrapped
in ``cfunc`` s generated from source with static globals, so numba's ``cache=True`` applies to
them too. Everything is still generated from the PyMC model; nothing is written by hand.
(``nutpie.compiled_pyfunc.from_pyfunc`` with Python callbacks is kept as ``_build_pyfunc``: it
compiles faster but samples 2-3x slower, about 4 s instead of 1.3 s for 240 runs x 4 x 3000 steps.)

Cache layout (``cache_dir()``: ``BAYESCALE_CACHE_DIR``, else the platform's user cache folder)::

    <cache>/compiled-v1/<key>/          numba cache files of the model's two cfuncs
    <cache>/compiled-v1/<key>/load.json load record: sizes, names, shapes, data layout (JSON)
    <cache>/compiled-v1/<key>/MANIFEST  sha256 of every file in the entry
    <cache>/compiled-v1/<key>.lock      exclusive lock held while the entry is checked or written

The key hashes the model's structure (the printed log-density and deterministics graphs, the
names, ranks and dtypes of its ``pm.Data`` variables, the shapes of its free variables outside
data dims) with the versions of every package that shapes the compiled code, so a new version
starts a new entry.
An entry is used only if every file matches its manifest; otherwise (corrupted, truncated,
stale, files added by someone else) it is deleted and rebuilt with a one-line notice on stderr
(logger ``bayescale.core.compiled``). Numba's cache files are pickles, so this check is what keeps a
fit from loading anything the cache did not itself write. Each process loads from a private copy
of the verified entry and publishes a new entry by atomic rename, under the entry's lock; two
processes compiling the same model take the lock in turn (the second finds a warm entry). Work
folders (``<tmp>/bayescale-work-<pid>-...``) of processes that have ended, and staging folders
older than an hour, are what a killed process leaves behind; the next fit removes them.

Numba code loaded from its cache is not bit-identical to the same code compiled in the process,
so a cold compile runs in a helper process (``python -m bayescale.core.compiled``), and every fit,
cold
or warm, runs code loaded from the cache: same seed, same draws.

The object code of a cfunc includes the PyTensor numba functions it calls, so the entry holds only
the two cfuncs. PyTensor's own numba functions of the model stay in PyTensor's cache folder
(``<base_compiledir>/numba``, shared by every model compiled with PyTensor's numba backend): a
cold compile reuses what earlier models compiled there (about 14 s instead of 20 s for 240 runs
on 2 cores), and a warm load never reads it.

A warm load skips PyTensor: the two cfuncs are loaded from numba's cache with sources regenerated
from the load record, whose sizes, names and shapes are checked against the model first; the data
arrays are read from the model. That takes about 0.4 s instead of 3 s of graph rewriting for 240
runs. A record that does not fit the model (other shapes or data types, another format) is
ignored: the model is then built by PyTensor as on a cold load (with its cfuncs loaded from the
entry when they are there, so the draws do not change), and the record rewritten.

References
----------
Lao, J. et al. and the PyMC developers. nutpie: a fast NUTS sampler for PyMC and Stan models.
https://github.com/pymc-devs/nutpie
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

CACHE_ENV = "BAYESCALE_CACHE_DIR"
HELPER_ENV = "BAYESCALE_COMPILE_HELPER"
FORMAT = "compiled-v1"
MANIFEST = "MANIFEST"
META = "load.json"
META_VERSION = 1
_KEY_PACKAGES = ("bayescale", "pymc", "pytensor", "nutpie", "numba", "llvmlite", "numpy")

_MEMORY: OrderedDict = OrderedDict()
_MEMORY_MAX = 16
_LOCK = threading.Lock()
_LOG = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Folder of bayescale's on-disk caches.

    ``BAYESCALE_CACHE_DIR`` if set, else the platform's user cache folder
    (``platformdirs.user_cache_dir("bayescale")``, e.g. ``~/.cache/bayescale`` on Linux).
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("bayescale"))


def package_versions() -> dict:
    """Versions of the packages whose code ends up in a compiled model (part of the cache key)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0], "platform": sys.platform}
    for pkg in _KEY_PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def model_key(model, *, key_extra: str = "") -> str:
    """Hash of a PyMC model's structure: equal keys mean one compiled model serves both.

    Parameters
    ----------
    model : pymc.Model
        The model.
    key_extra : str, default ""
        Text folded into the key (e.g. the card JSON).

    Returns
    -------
    str
        Hex sha256 over the package versions, ``key_extra``, the name, rank and dtype of every
        ``pm.Data`` variable, the name, transform and shape of every free variable (dims carried
        by data variables, such as ``run``, masked: their length changes with the data), the
        printed graphs of the log-density and of the deterministics (in terms of the values), and
        the values of the constants in those graphs.
    """
    import pytensor

    data_dims = set()
    for var in model.data_vars:
        data_dims.update(model.named_vars_to_dims.get(var.name) or ())
    data = [[v.name, int(v.ndim), str(v.dtype)] for v in model.data_vars]
    point = None  # compiled only when a static shape is unknown
    free = []
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        dims = model.named_vars_to_dims.get(rv.name) or (None,) * rv.ndim
        static = value.type.shape
        if any(n is None for n in static):
            point = model.initial_point() if point is None else point
            static = point[value.name].shape
        shape = [None if d in data_dims else int(n)
                 for d, n in zip(dims, static, strict=False)]
        transform = model.rvs_to_transforms.get(rv)
        free.append([rv.name, type(transform).__name__ if transform else None, shape])
    logp = model.logp()
    graph = pytensor.printing.debugprint(logp, file="str", print_type=True)
    # the cached expand function computes the deterministics: their graphs are part of the key
    dets = model.replace_rvs_by_values(model.deterministics)
    det_graph = pytensor.printing.debugprint(dets, file="str", print_type=True) if dets else ""
    text = json.dumps(
        {"format": FORMAT, "versions": package_versions(), "extra": key_extra,
         "data": data, "free": free, "logp": graph, "deterministics": det_graph,
         "constants": _constants_digest([logp, *dets])},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _constants_digest(outputs: list) -> str:
    """sha256 of every constant array the graphs of ``outputs`` read (printing truncates them).

    Observed values given as arrays instead of ``pm.Data`` are constants compiled into the code.
    """
    import numpy as np
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import graph_inputs

    h = hashlib.sha256()
    for var in graph_inputs(outputs):
        if isinstance(var, Constant):
            value = np.asarray(var.data)
            h.update(f"{value.dtype.str}{value.shape}".encode())
            h.update(np.ascontiguousarray(value).tobytes() if value.dtype != object else
                     repr(value).encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------- disk entries
def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _entry_files(entry: Path) -> dict[str, str]:
    return {p.name: _hash_file(p) for p in sorted(entry.iterdir())
            if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")}


def _entry_ok(entry: Path) -> str | None:
    """``None`` if ``entry`` is absent or verified; else why it cannot be used."""
    if not entry.exists():
        return None
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return "no valid manifest"
    try:
        found = _entry_files(entry)
    except OSError as exc:
        return f"unreadable ({exc.__class__.__name__})"
    if found != files:
        bad = sorted(set(found) ^ set(files)) + sorted(
            k for k in set(found) & set(files) if found[k] != files[k])
        return f"{len(bad)} file(s) differ from the manifest"
    return None


def _write_manifest(entry: Path, key: str) -> None:
    tmp = entry / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"key": key, "files": _entry_files(entry)}, sort_keys=True))
    os.replace(tmp, entry / MANIFEST)


@contextlib.contextmanager
def _file_lock(path: Path):
    """Exclusive advisory lock on ``path`` (POSIX ``flock``; no-op where unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _numba_cache_at(path: Path | None):
    """Point PyTensor's numba cache at ``path`` while functions are created and first called."""
    if path is None:
        yield
        return
    import pytensor.link.numba.cache as pt_cache

    old = pt_cache.NUMBA_CACHE_PATH
    pt_cache.NUMBA_CACHE_PATH = path
    try:
        yield
    finally:
        pt_cache.NUMBA_CACHE_PATH = old


def _pytensor_cache_path() -> Path:
    """PyTensor's own numba cache folder (``<base_compiledir>/numba``)."""
    import pytensor

    path = Path(pytensor.config.base_compiledir) / "numba"
    path.mkdir(parents=True, exist_ok=True)
    return path


# ------------------------------------------------------------------------------------ compile
def _build_pyfunc(model, key: str):
    """nutpie ``PyFuncModel`` from PyTensor NUMBA-mode functions of ``model``.

    Uses nutpie's own graph preparation (``_make_functions``, the one ``compile_pymc_model``
    uses), so the parameter order, transforms and initial points are those of the cfunc path.
    """
    import numpy as np
    from nutpie.compile_pymc import _make_functions, _prepare_dims_and_coords, _wrap_with_lock
    from nutpie.compiled_pyfunc import from_pyfunc
    from pymc.initial_point import make_initial_point_fn

    initial = _wrap_with_lock(make_initial_point_fn(
        model=model, default_strategy="support_point", jitter_rvs=set(model.free_RVs),
        return_transformed=True))
    n_dim, _, logp_pt, expand_pt, initial_point_fn, shape_info, reparam = _make_functions(
        model, mode="NUMBA", compute_grad=True, join_expanded=False,
        pymc_initial_point_fn=initial)
    logp_jit = logp_pt.vm.jit_fn
    expand_jit = expand_pt.vm.jit_fn
    logp_shared = [v.name for v in logp_pt.get_shared()]
    expand_shared = [v.name for v in expand_pt.get_shared()]
    shared = {}
    for var in [*logp_pt.get_shared(), *expand_pt.get_shared()]:
        value = np.array(var.get_value(), order="C", copy=True)
        if var.name in shared and not np.array_equal(shared[var.name], value):
            raise ValueError(f"two shared variables of the model are named {var.name!r}")
        shared[var.name] = value
    names, _, shapes = shape_info
    shapes = [tuple(int(s) for s in shape) for shape in shapes]
    dtypes = [np.dtype("float64")] * len(names)

    def make_logp_fn():
        def logp(x, **data):
            value, grad = logp_jit(x, *[data[n] for n in logp_shared])
            return float(value), grad

        return logp

    def make_expand_fn(seed1, seed2, chain):
        def expand(x, **data):
            values = expand_jit(x, *[data[n] for n in expand_shared])
            return {name: np.asarray(val, dtype="float64", order="C").reshape(shape)
                    for name, val, shape in zip(names, values, shapes, strict=True)}

        return expand

    # first calls compile (or load) the numba code now, inside the cache context
    x0 = initial_point_fn(0)
    make_logp_fn()(x0, **shared)
    make_expand_fn(0, 0, 0)(x0, **shared)
    dims, coords = _prepare_dims_and_coords(model, shape_info, reparam)
    return from_pyfunc(
        ndim=n_dim, make_logp_fn=make_logp_fn, make_expand_fn=make_expand_fn,
        make_initial_point_fn=initial_point_fn, expanded_dtypes=dtypes, expanded_shapes=shapes,
        expanded_names=names, shared_data=shared, dims=dims, coords=coords,
        reparameterized_names=reparam,
    )


_LOGP_SRC = """
def logp_cfunc(dim, x_, out_, logp_, user_data_):
    if dim != {n_dim}:
        return -1
    ud = carray(user_data_, ({n_ud},), np.uint64)
    x = carray(x_, ({n_dim},))
    out = carray(out_, ({n_dim},))
    logp = carray(logp_, ())
{unpack}
    value, grad = inner(x{args})
    logp[()] = value
    out[...] = grad
    if not np.all(np.isfinite(out)):
        return 3
    if not np.isfinite(value):
        return 4
    return 0
"""

_EXPAND_SRC = """
def expand_cfunc(dim, expanded, x_, out_, user_data_):
    if dim != {n_dim}:
        return -1
    if expanded != {n_expanded}:
        return -1
    ud = carray(user_data_, ({n_ud},), np.uint64)
    x = carray(x_, ({n_dim},))
    out = carray(out_, ({n_expanded},))
{unpack}
    (values,) = inner(x{args})
    out[...] = values
    return 0
"""


def _layout(shared: dict) -> list[tuple[str, int, int, str]]:
    """``(name, offset, ndim, dtype)`` of each data array in the flat ``uint64`` user data."""
    out, offset = [], 0
    for name, value in shared.items():
        out.append((name, offset, value.ndim, value.dtype.name))
        offset += 1 + value.ndim
    return out


def _user_data(shared: dict):
    """Flat ``uint64`` array: for each data array its address, then its shape."""
    import numpy as np

    flat = []
    for value in shared.values():
        flat += [value.ctypes.data, *value.shape]
    return np.array(flat or [0], dtype=np.uint64)


def _cfunc_source(template: str, used: list[str], layout: list[tuple[str, int, int, str]],
                  **fmt) -> str:
    """Source of a cfunc that unpacks the data arrays ``used`` (by name) and calls ``inner``.

    Only integers and numpy dtype names (of the live data arrays) enter the template.
    """
    where = {n: (off, nd, dt) for n, off, nd, dt in layout}
    lines = []
    for i, n in enumerate(used):
        off, nd, dt = where[n]
        shape = "(" + "".join(f"int(ud[{off + 1 + k}]), " for k in range(nd)) + ")"
        lines.append(f"    a{i} = carray(voidp(ud[{off}]), {shape}, np.{dt})")
    return template.format(unpack="\n".join(lines) or "    pass",
                           args="".join(f", a{i}" for i in range(len(used))),
                           n_ud=max(1, sum(1 + nd for _, _, nd, _ in layout)), **fmt)


def _cfunc(template: str, name: str, inner, used: list[str], layout: list, key: str, **fmt):
    """numba ``cfunc`` calling ``inner`` on the data arrays, cached on disk under ``key``.

    The source is generated and registered with PyTensor's numba cache locator, whose globals
    are the (disk-cached) PyTensor function and numba helpers, so numba's ``cache=True`` applies.
    With ``inner=None`` the cfunc can only come from numba's disk cache (a miss fails to type).
    """
    import numba
    import numpy as np
    from nutpie.compile_pymc import address_as_void_pointer
    from pytensor.link.numba.cache import compile_numba_function_src

    src = _cfunc_source(template, used, layout, **fmt)
    # __name__: numba rebuilds a cached function's environment by importing its module
    env = {"__name__": "bayescale.core.compiled", "carray": numba.carray, "np": np, "inner": inner,
           "voidp": address_as_void_pointer}
    digest = hashlib.sha256((key + src).encode()).hexdigest()
    fn = compile_numba_function_src(src, name, env, cache_key=f"bayescale-{name}-{digest}")
    sig = (numba.types.int64(numba.types.uint64, numba.types.CPointer(numba.types.double),
                             numba.types.CPointer(numba.types.double),
                             numba.types.CPointer(numba.types.double), numba.types.voidptr)
           if name == "logp_cfunc" else
           numba.types.int64(numba.types.uint64, numba.types.uint64,
                             numba.types.CPointer(numba.types.double),
                             numba.types.CPointer(numba.types.double), numba.types.voidptr))
    return numba.cfunc(sig, cache=True)(fn)


@functools.cache
def _model_class():
    """nutpie's ``CompiledPyMCModel`` with a ``with_data`` keyed by name and a ``meta`` record."""
    import dataclasses

    import numpy as np
    from nutpie.compile_pymc import CompiledPyMCModel

    @dataclasses.dataclass(frozen=True)
    class _Model(CompiledPyMCModel):
        meta: dict | None = None  # what a later process needs to load the cfuncs (_load_cfunc)

        def with_data(self, **updates):
            data = dict(self.shared_data)
            for name, value in updates.items():
                if name not in data:
                    raise KeyError(f"unknown data variable {name!r}")
                old = data[name]
                new = np.array(value, dtype=old.dtype, order="C", copy=True)
                if new.ndim != old.ndim:
                    raise ValueError(f"data variable {name!r} must have rank {old.ndim}")
                new.flags.writeable = False
                data[name] = new
            return dataclasses.replace(self, shared_data=data, user_data=_user_data(data))

    return _Model


def _initial_point_fn(model, names: list[str], shapes: list):
    """nutpie's seeded flat initial point: support point, U(-1, 1) jitter on every free variable.

    The same function ``_make_functions`` builds (``compile_pymc_model``'s defaults).
    """
    from nutpie.compile_pymc import _rv_dict_to_flat_array_wrapper, _wrap_with_lock
    from pymc.initial_point import make_initial_point_fn

    initial = _wrap_with_lock(make_initial_point_fn(
        model=model, default_strategy="support_point", jitter_rvs=set(model.free_RVs),
        return_transformed=True))
    return initial, _rv_dict_to_flat_array_wrapper(initial, names=names, shapes=shapes)


def _build_cfunc(model, key: str):
    """nutpie ``CompiledPyMCModel`` whose cfuncs numba caches on disk (no Python callbacks).

    Its ``meta`` (plain data: sizes, names, shapes, data layout) lets a later process load the
    same cfuncs from the cache without PyTensor's graph rewriting (:func:`_load_cfunc`).
    """
    import numpy as np
    from nutpie.compile_pymc import _make_functions, _prepare_dims_and_coords

    initial, _ = _initial_point_fn(model, [], [])
    # PyTensor's numba functions in PyTensor's own cache (shared by every model, so mostly warm);
    # the cfuncs, whose object code includes them, in the entry (numba fixes a function's cache
    # folder when the function is created)
    with _numba_cache_at(_pytensor_cache_path()):
        n_dim, n_expanded, logp_pt, expand_pt, initial_point_fn, shape_info, reparam = (
            _make_functions(model, mode="NUMBA", compute_grad=True, join_expanded=True,
                            pymc_initial_point_fn=initial))
    shared = {}
    for var in [*logp_pt.get_shared(), *expand_pt.get_shared()]:
        value = np.array(var.get_value(), order="C", copy=True)
        if var.name in shared and not np.array_equal(shared[var.name], value):
            raise ValueError(f"two shared variables of the model are named {var.name!r}")
        value.flags.writeable = False
        shared[var.name] = value
    layout = _layout(shared)
    logp_used = [v.name for v in logp_pt.get_shared()]
    expand_used = [v.name for v in expand_pt.get_shared()]
    logp_c = _cfunc(_LOGP_SRC, "logp_cfunc", logp_pt.vm.jit_fn, logp_used, layout, key,
                    n_dim=n_dim)
    expand_c = _cfunc(_EXPAND_SRC, "expand_cfunc", expand_pt.vm.jit_fn, expand_used, layout, key,
                      n_dim=n_dim, n_expanded=n_expanded)
    dims, coords = _prepare_dims_and_coords(model, shape_info, reparam)
    names, slices, shapes = shape_info
    meta = {
        "version": META_VERSION, "key": key, "n_dim": int(n_dim),
        "n_expanded": int(n_expanded), "n_free": len(model.free_RVs), "names": list(names),
        "slices": [[int(s.start), int(s.stop)] for s in slices],
        "shapes": [[int(n) for n in shape] for shape in shapes], "reparam": list(reparam),
        "logp_used": logp_used, "expand_used": expand_used,
        "data": [[name, ndim, dtype] for name, _, ndim, dtype in layout],
    }
    return _model_class()(
        _n_dim=n_dim, dims=dims, _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp_c, compiled_expand_func=expand_c,
        initial_point_func=initial_point_fn, shared_data=shared,
        shared_var_keys={name: name for name in shared}, user_data=_user_data(shared),
        n_expanded=n_expanded, shape_info=shape_info, logp_func=logp_pt, expand_func=expand_pt,
        reparameterized_names=reparam, meta=meta,
    )


_SAME_SHAPE_TRANSFORMS = frozenset({"log", "logodds", "interval", "log_exp_m1", "ordered"})


def _static_shape(model, name: str, by_value: dict):
    """Shape of the model variable ``name`` without compiling anything, or ``None``.

    From the variable's static type, else from its dims whose lengths are shared or constant
    (for a transformed value: when the transform keeps the shape, or is a zero-sum transform,
    one less along each zero-sum axis; other transforms give ``None``).
    """
    var = by_value.get(name)
    if var is None:
        var = model.named_vars.get(name)
    if var is None:
        return None
    if all(n is not None for n in var.type.shape):
        return tuple(int(n) for n in var.type.shape)
    rv = model.values_to_rvs.get(var, var)
    dims = model.named_vars_to_dims.get(rv.name)
    if not dims or len(dims) != rv.type.ndim:
        return None
    out = []
    for dim, n in zip(dims, rv.type.shape, strict=True):
        if n is None:
            length = model.dim_lengths.get(dim)
            if hasattr(length, "get_value"):
                n = length.get_value()
            elif hasattr(length, "data"):
                n = length.data
            else:
                return None
        out.append(int(n))
    transform = model.rvs_to_transforms.get(rv) if rv is not var else None
    if transform is None or transform.name in _SAME_SHAPE_TRANSFORMS:
        return tuple(out)
    if transform.name == "zerosum" and len(out) == var.type.ndim:
        for axis in transform.zerosum_axes:
            out[axis] -= 1
        return tuple(out)
    return None


def _load_cfunc(model, key: str, meta: dict):
    """The compiled model of :func:`_build_cfunc` from its ``meta`` and numba's cache, or ``None``.

    No PyTensor function is compiled: the cfuncs (whose object code includes the PyTensor
    numba functions they call) are loaded from numba's cache, the data arrays are read from
    ``model``, and ``meta`` (checked against ``model``) supplies the sizes and the data layout.
    ``None`` when ``meta`` does not describe ``model`` (other shapes, other data) or a cfunc is
    not in the cache: the caller then builds it with PyTensor.
    """
    import numpy as np
    from nutpie.compile_pymc import _prepare_dims_and_coords

    try:
        if meta.get("version") != META_VERSION or meta.get("key") != key:
            return None
        n_dim, n_expanded, n_free = (int(meta[k]) for k in ("n_dim", "n_expanded", "n_free"))
        names = [str(n) for n in meta["names"]]
        shapes = [tuple(int(n) for n in shape) for shape in meta["shapes"]]
        slices = [slice(int(a), int(b)) for a, b in meta["slices"]]
        reparam = [str(n) for n in meta["reparam"]]
        logp_used = [str(n) for n in meta["logp_used"]]
        expand_used = [str(n) for n in meta["expand_used"]]
        data = [(str(n), int(nd), str(dt)) for n, nd, dt in meta["data"]]
    except (KeyError, TypeError, ValueError):
        return None
    by_value = {v.name: v for v in model.value_vars}
    if ([model.rvs_to_values[rv].name for rv in model.free_RVs] != names[:n_free]
            or not set(reparam) <= set(names[:n_free])):
        return None
    if any(_static_shape(model, n, by_value) != s for n, s in zip(names, shapes, strict=True)):
        return None
    sizes = [int(np.prod(s)) for s in shapes]
    if sum(sizes[:n_free]) != n_dim or sum(sizes) != n_expanded or len(slices) != len(names):
        return None
    shared = {}
    for name, ndim, dtype in data:
        var = model.named_vars.get(name)
        if var is None:
            var = model.dim_lengths.get(name)
        if var is None or not hasattr(var, "get_value"):
            return None
        value = np.array(var.get_value(), order="C", copy=True)
        if value.ndim != ndim or value.dtype.name != dtype:
            return None
        value.flags.writeable = False
        shared[name] = value
    if not set(logp_used) | set(expand_used) <= set(shared):
        return None
    layout = _layout(shared)
    try:
        logp_c = _cfunc(_LOGP_SRC, "logp_cfunc", None, logp_used, layout, key, n_dim=n_dim)
        expand_c = _cfunc(_EXPAND_SRC, "expand_cfunc", None, expand_used, layout, key,
                          n_dim=n_dim, n_expanded=n_expanded)
    except Exception:  # noqa: BLE001 - not in numba's cache (fails to type without inner)
        return None
    shape_arrays = [np.array(s, dtype=np.int64) for s in shapes]
    _, initial_point_fn = _initial_point_fn(model, names[:n_free], shape_arrays[:n_free])
    shape_info = (names, slices, shape_arrays)
    dims, coords = _prepare_dims_and_coords(model, shape_info, reparam)
    return _model_class()(
        _n_dim=n_dim, dims=dims, _coords=coords,
        _shapes={name: tuple(shape) for name, shape in zip(names, shape_arrays, strict=True)},
        compiled_logp_func=logp_c, compiled_expand_func=expand_c,
        initial_point_func=initial_point_fn, shared_data=shared,
        shared_var_keys={name: name for name in shared}, user_data=_user_data(shared),
        n_expanded=n_expanded, shape_info=shape_info, logp_func=None, expand_func=None,
        reparameterized_names=reparam, meta=meta,
    )


def _read_meta(work: Path) -> dict | None:
    """The entry's load record (plain JSON, verified by the manifest with the rest), or None."""
    try:
        meta = json.loads((work / META).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _write_meta(work: Path, compiled) -> None:
    """Store ``compiled.meta`` (if it has one) in ``work``; unchanged content, unchanged file."""
    meta = getattr(compiled, "meta", None)
    if not isinstance(meta, dict):
        return
    text = json.dumps(meta, sort_keys=True)
    path = work / META
    if path.is_file() and path.read_text() == text:
        return
    tmp = work / f".{META}.{os.getpid()}.tmp"
    tmp.write_text(text)
    os.replace(tmp, path)


_BUILDERS = {"pyfunc": _build_pyfunc, "cfunc": _build_cfunc}
_KIND = os.environ.get("BAYESCALE_COMPILED_KIND", "cfunc")


def _notice(message: str) -> None:
    """One line on stderr (logger ``bayescale.core.compiled``): informational, never an error."""
    _LOG.warning("bayescale compile cache: %s", message)


def _copy_files(src: Path, dst: Path) -> None:
    for path in src.iterdir():
        if path.is_file() and not path.name.startswith("."):
            shutil.copy2(path, dst / path.name)


def _publish(work: Path, entry: Path, key: str) -> None:
    """Replace ``entry`` by a copy of ``work`` with a manifest (caller holds the entry lock)."""
    staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=entry.parent))
    try:
        _copy_files(work, staging)
        (staging / MANIFEST).unlink(missing_ok=True)
        _write_manifest(staging, key)
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(staging, entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


_WORK_PREFIX = "bayescale-work-"
_STAGING_MAX_AGE = 3600.0  # seconds; a publish takes well under a second


def _work_dir(key: str) -> Path:
    """A private folder of this process for numba's cache files of one model (removed at exit).

    Its name carries the process id, so folders left behind by a killed process are removed by
    the next one (:func:`_sweep_work_dirs`).
    """
    root = Path(tempfile.gettempdir())
    _sweep_work_dirs_once(root)
    path = Path(tempfile.mkdtemp(prefix=f"{_WORK_PREFIX}{os.getpid()}-{key[:12]}-", dir=root))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: some other user's live process
        return True
    return True


@functools.cache
def _sweep_work_dirs_once(root: Path) -> None:
    """:func:`_sweep_work_dirs` at most once per folder and process (not on every compile)."""
    _sweep_work_dirs(root)


def _sweep_work_dirs(root: Path) -> None:
    """Remove this user's work folders under ``root`` whose process has ended (killed fits)."""
    try:
        paths = list(root.glob(f"{_WORK_PREFIX}*"))
    except OSError:
        return
    uid = os.getuid() if hasattr(os, "getuid") else None
    for path in paths:
        pid = path.name[len(_WORK_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
            continue
        try:
            if not path.is_dir() or path.is_symlink() or (
                    uid is not None and path.stat().st_uid != uid):
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)


def _sweep_staging(base: Path, *, now: float | None = None) -> None:
    """Remove staging folders of :func:`_publish` older than an hour (left by a killed process)."""
    import time

    now = time.time() if now is None else now
    try:
        paths = [p for p in base.iterdir() if p.name.startswith(".") and p.is_dir()
                 and not p.is_symlink()]
    except OSError:
        return
    for path in paths:
        try:
            if now - path.stat().st_mtime > _STAGING_MAX_AGE:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


def _compile_on_disk(model, key: str, root: Path | None):
    """Compile ``model``, with numba's cache files of it kept in the entry ``key`` under ``root``.

    The process works on a private copy of the verified entry (numba may add an overload to it
    at any later time, outside the lock), and publishes a new entry when the compile wrote new
    files. A cold compile is followed by a second build that loads the fresh entry, because numba
    code loaded from its cache is not bit-identical to the same code compiled in the process:
    loading in both cases gives the same draws for the same seed, cold or warm. A load first
    tries the entry's load record (:func:`_load_from`: no PyTensor graph rewriting), then
    PyTensor's build of the model with its numba code loaded from the entry.
    """
    build = _BUILDERS[_KIND]
    if root is None:
        return build(model, key)
    base = root / FORMAT
    try:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        _notice(f"cannot create {base} ({exc.__class__.__name__}); compiling without it")
        return build(model, key)
    entry = base / key
    _sweep_staging(base)
    work = _work_dir(key)
    with _file_lock(base / f"{key}.lock"):
        why = _entry_ok(entry)
        if why is not None:
            _notice(f"entry {key[:12]} unusable ({why}); rebuilding")
            shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            fresh = _cold_compile(model, key, work)
            if _entry_files(work):
                try:
                    _publish(work, entry, key)
                except OSError as exc:
                    _notice(f"cannot write entry {key[:12]} ({exc.__class__.__name__})")
            if fresh is not None:
                return fresh
        else:
            _copy_files(entry, work)
            (work / MANIFEST).unlink(missing_ok=True)
        before = _entry_files(work)
        try:
            compiled = _load_or_build(work, model, key)
        except Exception as exc:  # noqa: BLE001 - a bad entry must never break a fit
            if not before:
                raise
            _notice(f"entry {key[:12]} failed to load ({exc.__class__.__name__}); rebuilding")
            shutil.rmtree(entry, ignore_errors=True)
            for path in work.iterdir():
                path.unlink()
            _cold_compile(model, key, work)
            _publish(work, entry, key)
            compiled = _load_or_build(work, model, key)
        if _entry_files(work) != before:  # the load compiled something new: keep it
            try:
                _publish(work, entry, key)
            except OSError as exc:
                _notice(f"cannot write entry {key[:12]} ({exc.__class__.__name__})")
    return compiled


def _cold_compile(model, key: str, work: Path):
    """Compile ``model`` into numba cache files in ``work``, in a helper process.

    Returns ``None``, or the compiled model when it was built in this process (helper failed,
    or ``BAYESCALE_COMPILE_HELPER=0``: saves the helper's imports and the reload, about a third
    of a cold start, at the price of cold draws that differ from warm ones in the last bits).

    numba code loaded from its cache is not bit-identical to the same code compiled in the
    process (and a process that compiled a function keeps running its own copy), so the first
    compile runs in a child and every fit, cold or warm, runs code loaded from the cache: the
    same seed gives the same draws either way. The model goes to the child through a pipe
    (cloudpickle of this process's own object; nothing is read back but cache files).
    """
    import subprocess

    if os.environ.get(HELPER_ENV, "1") == "0":  # faster cold start, draws differ from warm ones
        return _build_into(work, model, key)
    import cloudpickle

    payload = cloudpickle.dumps({"model": model, "key": key, "kind": _KIND})
    proc = subprocess.Popen(
        [sys.executable, "-m", "bayescale.core.compiled", str(work)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    talk: dict = {}
    pipe = threading.Thread(target=lambda: talk.update(out=proc.communicate(payload)),
                            daemon=True)
    pipe.start()
    _prepare_load()  # on the other core, while the helper compiles
    pipe.join()
    if proc.returncode != 0:
        stderr = talk.get("out", (b"", b""))[1] or b""
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        _notice(f"helper compile failed ({tail[0][:200]}); compiling in this process")
        return _build_into(work, model, key)
    return None


def _prepare_load() -> None:
    """Import what loading a compiled model needs (nutpie, numba's CPU target): a head start."""
    try:
        import nutpie.compile_pymc  # noqa: F401
        import pytensor.link.numba.cache  # noqa: F401
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()
    except Exception:  # noqa: BLE001, S110 - only a head start; the load imports them anyway
        pass


def _build_into(work: Path, model, key: str):
    """Build ``model`` with numba's cache in ``work``; its load record goes there too."""
    with _numba_cache_at(work):
        compiled = _BUILDERS[_KIND](model, key)
    _write_meta(work, compiled)
    return compiled


def _load_or_build(work: Path, model, key: str):
    """``model`` through the load record in ``work`` if it fits, else built by PyTensor."""
    compiled = _load_from(work, model, key)
    return compiled if compiled is not None else _build_into(work, model, key)


def _load_from(work: Path, model, key: str):
    """``model`` loaded through the load record in ``work`` (:func:`_load_cfunc`), or ``None``."""
    if _KIND != "cfunc":
        return None
    meta = _read_meta(work)
    if meta is None:
        return None
    with _numba_cache_at(work):
        return _load_cfunc(model, key, meta)


def with_model_data(compiled, model):
    """``compiled`` with every data variable it reads replaced by its value in ``model``.

    Every ``pm.Data`` variable (and shared dim length) the compiled functions read is taken from
    the freshly built ``model``, so refits need no list of data names.
    """
    import numpy as np

    updates = {}
    if hasattr(compiled, "_shared_data"):  # nutpie PyFuncModel
        names = list(compiled._shared_data)
    else:  # CompiledPyMCModel and its cfunc subclass here: keyed by variable (or name)
        names = [getattr(var, "name", var) for var in compiled.shared_var_keys]
    for name in names:
        var = model.named_vars.get(name)
        if var is None:
            var = model.dim_lengths.get(name)
        if var is None or not hasattr(var, "get_value"):
            raise ValueError(f"the model has no data variable {name!r} to refit the compiled one")
        updates[name] = np.array(var.get_value(), order="C", copy=True)
    return compiled.with_data(**updates)


def compiled_for(model, *, key_extra: str = "", disk: bool = True):
    """nutpie-compiled ``model``, from the process cache, the disk cache or a fresh compile.

    Parameters
    ----------
    model : pymc.Model
        The model to sample. A compiled model of the same structure (:func:`model_key`) is reused
        with the data of ``model`` swapped in.
    key_extra : str, default ""
        Text folded into the structure key (e.g. the card JSON).
    disk : bool, default True
        Use the on-disk numba cache under :func:`cache_dir` (``False``: PyTensor's default).

    Returns
    -------
    compiled : nutpie.compiled_pyfunc.PyFuncModel
        Ready for ``nutpie.sample``.
    cached : bool
        Whether the compiled model came from this process's cache.
    """
    key = model_key(model, key_extra=key_extra)
    with _LOCK:
        hit = _MEMORY.get(key)
        if hit is not None:
            _MEMORY.move_to_end(key)
    if hit is not None:
        return with_model_data(hit, model), True
    try:
        compiled = _compile_on_disk(model, key, cache_dir() if disk else None)
    except (ImportError, AttributeError) as exc:  # nutpie internals moved (nutpie != 0.16)
        import nutpie

        _notice(f"cached compile unavailable ({exc}); using nutpie.compile_pymc_model")
        compiled = nutpie.compile_pymc_model(model)
    with _LOCK:
        _MEMORY[key] = compiled
        while len(_MEMORY) > _MEMORY_MAX:
            _MEMORY.popitem(last=False)
    return compiled, False


def _main(argv: list[str]) -> int:
    """Helper-process entry point: compile the model piped on stdin into numba cache files."""
    import pickle

    work = Path(argv[0])
    job = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - written by the parent process
    with _numba_cache_at(work):
        compiled = _BUILDERS[job["kind"]](job["model"], job["key"])
    _write_meta(work, compiled)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
