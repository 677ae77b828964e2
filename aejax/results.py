"""Sweep results: the per-run record store on disk, the xarray Dataset, netCDF save and load.

A sweep's output directory holds ``manifest.json`` (what is being computed), one ``.npz`` file per
finished chunk under ``chunks/`` and, at the end, ``results.nc``. Every file is written to a
temporary name and renamed into place, so a crash (even ``kill -9``) leaves either a whole file or
none; a file that cannot be read back is reported and its runs are recomputed. While a sweep writes
into ``out`` it holds an exclusive lock on ``out/.lock`` (``fcntl.flock``), so a second sweep into
the same directory is refused instead of interleaving; the kernel releases the lock when its
process exits, even after ``kill -9``, so a stale lock never blocks a later sweep. (``flock`` is
advisory and only reliable on a local file system: on NFS two hosts may not see each other's lock.)

Examples:
    >>> import tempfile
    >>> with RunStore(tempfile.mkdtemp(), {"config": "x"}) as store:
    ...     store.load()
    {}
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from aejax import _validate, record
from aejax._build import UNRECORDED
from aejax.grid import Grid

if TYPE_CHECKING:  # imported where a Dataset is built or read: ``import aejax`` does without it (pandas too)
    import xarray as xr

ENGINE = "h5netcdf"


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file to ``path`` (same directory).

    The file gets the permissions of a newly created file (``0o666`` less the umask), not the
    owner-only ``0o600`` of ``mkstemp``.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class RunStore:
    """Finished runs of one sweep, kept as chunk files in ``out/chunks``.

    Args:
        out: output directory (created if missing).
        manifest: JSON-able description of the sweep; a directory holding a different manifest
            is refused, so finished work of another sweep is never mixed in or overwritten.
        resume: require an existing sweep in ``out`` to continue.

    The store holds ``out/.lock`` until ``close()`` (or the end of a ``with`` block); a second store
    on the same directory meanwhile raises ``ValueError``. Opening it removes temporary files that a
    killed writer left in ``out`` and ``out/chunks`` (``.<name>.*.tmp``; no other writer can be
    active while the lock is held).

    Every chunk file carries the sweep's ``fingerprint`` (``fingerprint(manifest)``), in its name
    and inside the file: ``load`` ignores, with a warning naming the file, a chunk of another sweep
    (even when ``manifest.json`` was deleted or replaced), a chunk whose fields do not have the shapes
    of ``aejax.record.FIELDS``, and an unreadable one; their runs are recomputed.
    """

    build: str = UNRECORDED  # the build that computes the runs saved here (set by the sweep)

    def __init__(self, out: str | os.PathLike, manifest: dict[str, Any], resume: bool = False):
        self.out = Path(out)
        self.fingerprint = fingerprint(manifest)
        self.chunks = self.out / "chunks"
        self.chunks.mkdir(parents=True, exist_ok=True)
        self._lock: int | None = _lock(self.out / ".lock")
        try:
            _remove_temporary_files(self.out)
            _remove_temporary_files(self.chunks)
            self._check_manifest(manifest, resume)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the directory's lock (idempotent)."""
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases the flock
            self._lock = None

    def _check_manifest(self, manifest: dict[str, Any], resume: bool) -> None:
        path = self.out / "manifest.json"
        text = json.dumps(manifest, indent=1, sort_keys=True)
        if path.exists():
            try:
                old = json.loads(path.read_text())
            except (OSError, ValueError) as err:
                raise _validate.InputError(
                    f"cannot read {path} ({err}); delete it or choose another out directory"
                ) from None
            if not isinstance(old, dict):
                raise _validate.InputError(
                    f"{path} is not a sweep manifest (it holds a JSON {type(old).__name__}, "
                    "not an object); delete it or choose another out directory"
                )
            new = json.loads(text)
            if old != new:
                differ = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
                details = "; ".join(_differences(old, new)[:5])
                raise _validate.InputError(
                    f"out={str(self.out)!r} holds a different sweep (differs in: {', '.join(differ)}); "
                    f"{details}; choose another out directory or delete it"
                )
        elif resume:
            raise _validate.InputError(f"resume=True but out={str(self.out)!r} holds no sweep to resume")
        else:
            atomic_write(path, lambda tmp: Path(tmp).write_text(text))

    def load(self, n_steps: int | None = None, n_runs: int | None = None) -> dict[int, dict[str, np.ndarray]]:
        """Records of finished runs by run index.

        A chunk file of another sweep (other fingerprint), one that cannot be read, and one whose
        fields do not fit the schema (``n_steps`` trace points per ``per_step`` field, run ids in
        ``[0, n_runs)``, when given) are reported with a warning naming the file and skipped.
        ``self.builds`` then maps each loaded run to the build that computed it.
        """
        done: dict[int, dict[str, np.ndarray]] = {}
        self.builds: dict[int, str] = {}  # run -> the build that computed it (``aejax._build``)
        for file in sorted(self.chunks.glob("chunk-*.npz")):
            if not file.name.startswith(f"chunk-{self.fingerprint}-"):
                warnings.warn(
                    f"ignoring chunk file {file}: it belongs to another sweep (its name lacks this sweep's "
                    f"fingerprint {self.fingerprint}); its runs will be recomputed",
                    stacklevel=2,
                )
                continue
            try:
                with np.load(file) as z:
                    stored = str(z["fingerprint"]) if "fingerprint" in z.files else None
                    ids = z["run_ids"]
                    fields = {name: z[name] for name in record.NAMES}
                    build = str(z["build"]) if "build" in z.files else UNRECORDED
            except Exception as err:  # a truncated or corrupted file: recompute its runs
                warnings.warn(
                    f"ignoring unreadable chunk file {file} ({type(err).__name__}: {err}); its runs will be recomputed",
                    stacklevel=2,
                )
                continue
            problem = _chunk_problem(stored, self.fingerprint, ids, fields, n_steps, n_runs)
            if problem:
                warnings.warn(f"ignoring chunk file {file}: {problem}; its runs will be recomputed", stacklevel=2)
                continue
            for i, run in enumerate(ids.tolist()):
                done[run] = {name: values[i] for name, values in fields.items()}
                self.builds[run] = build
        return done

    def save(self, run_ids: np.ndarray, records: dict[str, np.ndarray]) -> None:
        """Write one finished chunk atomically, tagged with the sweep's fingerprint and ``self.build``,
        the build that computed it (``aejax._build.describe``; the sweep sets it)."""
        tag = hashlib.sha1(np.asarray(run_ids).tobytes()).hexdigest()[:12]
        path = self.chunks / f"chunk-{self.fingerprint}-{int(run_ids[0]):07d}-{tag}.npz"

        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(
                    f,
                    fingerprint=np.asarray(self.fingerprint),
                    build=np.asarray(self.build),
                    run_ids=run_ids,
                    # the record's field names never include savez's own allow_pickle keyword
                    **{name: records[name] for name in record.NAMES},  # pyright: ignore[reportArgumentType]
                )

        atomic_write(path, write)


def fingerprint(manifest: dict[str, Any]) -> str:
    """A sweep's fingerprint: the first 16 hex digits of the SHA-256 of its canonical manifest JSON.

    Example:
        >>> fingerprint({"seed": 0}) == fingerprint({"seed": 0}) != fingerprint({"seed": 1})
        True
    """
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _chunk_problem(
    stored: str | None,
    expected: str,
    ids: np.ndarray,
    fields: dict[str, np.ndarray],
    n_steps: int | None,
    n_runs: int | None,
) -> str | None:
    """Why a loaded chunk cannot be used (``None`` when it can)."""
    if stored != expected:
        return f"its fingerprint {stored} is not this sweep's {expected}"
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer) or not len(ids):
        return f"run_ids must be a non-empty 1-D integer array, got shape {ids.shape} of {ids.dtype}"
    if n_runs is not None and (ids.min() < 0 or ids.max() >= n_runs):
        return f"run ids outside [0, {n_runs}): {ids.min()}..{ids.max()}"
    steps = n_steps
    for field in record.FIELDS:
        got = fields[field.name].shape
        if field.per_step and steps is None and len(got) == 2:
            steps = got[1]  # no expected trace length: the chunk's own, the same for every per-step field
        want = (len(ids), *record.shape_of(field, -1 if steps is None else steps))
        if got != want:
            return f"field {field.name!r} has shape {got}, expected {want} (written with other steps or eval_every?)"
    return None


def _remove_temporary_files(folder: Path) -> None:
    """Delete the temporary files ``atomic_write`` leaves when killed mid-write (``.<name>.<random>.tmp``)."""
    for tmp in folder.glob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _differences(old: Any, new: Any, where: str = "") -> list[str]:
    """Where two JSON values differ, as ``"path: saved X, now Y"`` lines (dicts and lists recursed)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            line
            for k in sorted({*old, *new})
            if old.get(k) != new.get(k)
            for line in _differences(old.get(k), new.get(k), f"{where}.{k}" if where else k)
        ]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            line
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            if a != b
            for line in _differences(a, b, f"{where}[{i}]")
        ]
    if isinstance(old, list) and isinstance(new, list):
        return [f"{where}: saved {len(old)} entries, now {len(new)}"]
    return [f"{where}: saved {old!r}, now {new!r}"]


def _lock(path: Path) -> int:
    """Take an exclusive, non-blocking ``flock`` on ``path``; return its descriptor."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise _validate.InputError(
            f"out={str(path.parent)!r} is in use by another sweep (process {holder} holds "
            f"{str(path)!r}); wait for it to finish or choose another out directory"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


OVERFLOW_LEVEL = 1e30  # a loss this large is a step or two from float32's largest value, 3.4e38
MIN_EXPECTED_NONZERO = 100  # expected non-zero input coordinates over a final risk's Monte Carlo samples


def run_status(records: dict[str, np.ndarray], expected_nonzero: np.ndarray | None = None) -> np.ndarray:
    """Per run: ``"ok"``, ``"unreliable"``, ``"overflow"``, ``"diverged"`` or ``"nonfinite"``.

    ``"overflow"``: a value left the float32 range — the final risks or a trace hold ±inf, or the
    loss trace passed ``OVERFLOW_LEVEL`` before turning NaN (the usual path of a too-large learning
    rate: the loss grows, overflows to inf, and inf − inf gives NaN). ``"diverged"``: NaN without
    that sign of overflow, after the loss trace rose above its first point. ``"nonfinite"``: NaN with
    neither sign, so a numerical failure (e.g. a NaN gradient) rather than a diverging training as
    far as the trace can tell. The trace is a mean over ``eval_every`` steps, so an overflow and the
    NaN that follows it inside one block are seen only as NaN: ``"diverged"`` and ``"nonfinite"`` may
    hide an overflow, but ``"overflow"`` is never reported without one.

    ``"unreliable"``: finite, but the final Monte Carlo risk cannot be trusted: the Monte Carlo
    samples are expected to hold fewer than ``MIN_EXPECTED_NONZERO`` non-zero input coordinates
    (``expected_nonzero`` = mc_samples·d·p per run, for sparse sources; with none at all the estimate
    is 0 ± 0 whatever the weights), or its standard error is exactly 0 while the last training loss
    is not. With 100 non-zero coordinates the estimate's relative error is already of order
    1/√100 = 10%; raise ``mc_samples`` (or ``p``) to get an ``ok``.

    Examples:
        >>> run_status({"risk": np.array([0.5, np.nan, np.nan, 0.0]), "risk_se": np.array([0.01, 0, 0, 0]),
        ...             "exact_risk": np.full(4, np.nan),
        ...             "loss_trace": np.array([[1.0, 0.5], [1.0, np.inf], [1.0, np.nan], [0.0, 0.0]]),
        ...             "risk_trace": np.full((4, 2), np.nan)}, np.array([1e4, 1e4, 1e4, 0.004])).tolist()
        ['ok', 'overflow', 'nonfinite', 'unreliable']
    """
    loss = records["loss_trace"]
    finite = np.isfinite(records["risk"]) & np.all(np.isfinite(loss), axis=-1)
    inf = np.isinf(records["risk"]) | np.isinf(records["exact_risk"])
    inf |= np.any(np.isinf(loss), axis=-1) | np.any(np.isinf(records["risk_trace"]), axis=-1)
    huge = np.any(np.abs(np.where(np.isfinite(loss), loss, 0.0)) > OVERFLOW_LEVEL, axis=-1)
    unreliable = np.zeros(np.shape(records["risk"]), bool)
    if "risk_se" in records:
        unreliable |= (records["risk_se"] == 0) & (loss[..., -1] != 0)
    if expected_nonzero is not None:
        unreliable |= np.asarray(expected_nonzero) < MIN_EXPECTED_NONZERO
    ok = np.where(unreliable, "unreliable", "ok")
    failed = np.where(_grew(loss), "diverged", "nonfinite")
    return np.where(finite, ok, np.where(inf | huge, "overflow", failed))


def _grew(loss: np.ndarray) -> np.ndarray:
    """Per run: whether the finite points of the loss trace rose above the first one (a divergence
    seen before the NaN)."""
    finite = np.isfinite(loss)
    first = np.take_along_axis(loss, np.argmax(finite, axis=-1)[..., None], axis=-1)[..., 0]
    return np.any(finite & (np.where(finite, loss, -np.inf) > first[..., None]), axis=-1)


def build_dataset(
    grid: Grid,
    records: dict[str, np.ndarray],
    trace_coords: dict[str, Any],
    theory: np.ndarray,
    attrs: dict[str, Any],
    expected_nonzero: np.ndarray | None = None,
) -> xr.Dataset:
    """Arrange per-run records (leading axis = run index) into a Dataset with one dim per axis.

    Args:
        grid: the ``aejax.grid.Grid`` of the sweep.
        records: arrays of ``aejax.record.FIELDS`` by name; traces have a trailing step axis.
        trace_coords: coordinates of the trace dimension, which is the first key: ``{"step": steps}``,
            or ``{"tau": taus, "step": ("tau", steps)}`` for a τ grid.
        theory: per-run theory value (stored in float32, the dtype of the records).
        attrs: JSON-able attributes.
        expected_nonzero: per run, the non-zero input coordinates expected over the final risk's
            Monte Carlo samples (``None``: not a sparse source); see ``run_status``.

    Returns:
        The Dataset (``status``: see ``run_status``).
    """
    shape = grid.shape
    dims = grid.dims
    trace_dim = next(iter(trace_coords))
    points = len(trace_coords[trace_dim])
    data: dict[str, Any] = {}
    for field in record.FIELDS:
        values = records[field.name]
        data[field.name] = (
            ((*dims, trace_dim), values.reshape(*shape, points)) if field.per_step else (dims, values.reshape(shape))
        )
    data["theory"] = (dims, np.asarray(theory, np.float32).reshape(shape))  # float32, as every record
    data["status"] = (dims, run_status(records, expected_nonzero).astype(object).reshape(shape))
    coords: dict[str, Any] = dict(trace_coords)
    if dims == ("run",):
        coords["run"] = np.arange(len(grid.runs))
        for axis in grid.runs[0]:
            coords[axis] = ("run", np.asarray([run[axis] for run in grid.runs]))
    else:
        coords.update({dim: np.asarray(grid.coords[dim]) for dim in dims})
    import xarray as xr

    ds = xr.Dataset(data, coords=coords, attrs={k: _attr(v) for k, v in attrs.items()})
    for field in record.FIELDS:
        ds[field.name].attrs.update(long_name=field.long_name, units=field.units)
    ds["theory"].attrs["long_name"] = "theory value (aejax.theory.gaussian_limit at the run's rate)"
    ds["status"].attrs["long_name"] = "ok, unreliable, overflow, diverged or nonfinite (aejax.results.run_status)"
    return ds


def _attr(value: Any) -> Any:
    if isinstance(value, (str, int, float, np.integer, np.floating)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def save_results(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` as netCDF atomically (write to a temporary file, then rename).

    Examples:
        >>> import tempfile, xarray as xr
        >>> p = save_results(xr.Dataset({"a": ("x", [1.0])}), Path(tempfile.mkdtemp()) / "r.nc")
        >>> float(load_results(p)["a"][0])
        1.0
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine=ENGINE))
    return path


def load_results(path: str | os.PathLike) -> xr.Dataset:
    """Load a results file written by ``aejax.sweep`` (a netCDF file, or a sweep's out directory).

    Raises:
        InputError (a ValueError): when the file is missing, truncated or not a results file.

    Examples:
        >>> load_results("/nonexistent.nc")
        Traceback (most recent call last):
        ...
        aejax.InputError: cannot read results file '/nonexistent.nc': no such file
    """
    path = Path(path)
    if path.is_dir():
        path = path / "results.nc"
    if not path.exists():
        raise _validate.InputError(f"cannot read results file {str(path)!r}: no such file")
    import xarray as xr

    try:
        return xr.load_dataset(path, engine=ENGINE)
    except Exception as err:
        raise _validate.InputError(
            f"cannot read results file {str(path)!r}: {type(err).__name__}: {err} (truncated or not a netCDF file)"
        ) from None
