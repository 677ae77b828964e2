"""Sweep results: the per-run record store on disk, the xarray Dataset, netCDF save and load.

A sweep's output directory holds ``manifest.json`` (what is being computed), one ``.npz`` file per
finished chunk under ``chunks/`` and, at the end, ``results.nc``. Every file is written to a
temporary name and renamed into place, so a crash (even ``kill -9``) leaves either a whole file or
none; a file that cannot be read back is reported and its runs are recomputed.

Example:
    >>> import tempfile
    >>> store = RunStore(tempfile.mkdtemp(), {"config": "x"})
    >>> store.load()
    {}
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

RECORD_FIELDS = ("risk", "risk_se", "exact_risk", "loss_trace", "risk_trace", "wall_time")
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
    """

    def __init__(self, out: str | os.PathLike, manifest: dict[str, Any], resume: bool = False):
        self.out = Path(out)
        self.chunks = self.out / "chunks"
        self.chunks.mkdir(parents=True, exist_ok=True)
        path = self.out / "manifest.json"
        text = json.dumps(manifest, indent=1, sort_keys=True)
        if path.exists():
            try:
                old = json.loads(path.read_text())
            except (OSError, ValueError) as err:
                raise ValueError(f"cannot read {path} ({err}); delete it or choose another out directory") from None
            if old != json.loads(text):
                differ = sorted(k for k in {*old, *manifest} if old.get(k) != json.loads(text).get(k))
                raise ValueError(f"out={str(self.out)!r} holds a different sweep (differs in: {', '.join(differ)}); "
                                 "choose another out directory or delete it")
        elif resume:
            raise ValueError(f"resume=True but out={str(self.out)!r} holds no sweep to resume")
        else:
            atomic_write(path, lambda tmp: Path(tmp).write_text(text))

    def load(self) -> dict[int, dict[str, np.ndarray]]:
        """Records of finished runs by run index; unreadable chunk files are reported and skipped."""
        done: dict[int, dict[str, np.ndarray]] = {}
        for file in sorted(self.chunks.glob("chunk-*.npz")):
            try:
                with np.load(file) as z:
                    ids = z["run_ids"]
                    fields = {name: z[name] for name in RECORD_FIELDS}
            except Exception as err:  # a truncated or corrupted file: recompute its runs
                warnings.warn(f"ignoring unreadable chunk file {file} ({type(err).__name__}: {err}); "
                              "its runs will be recomputed", stacklevel=2)
                continue
            for i, run in enumerate(ids.tolist()):
                done[run] = {name: values[i] for name, values in fields.items()}
        return done

    def save(self, run_ids: np.ndarray, records: dict[str, np.ndarray]) -> None:
        """Write one finished chunk atomically."""
        tag = hashlib.sha1(np.asarray(run_ids).tobytes()).hexdigest()[:12]
        path = self.chunks / f"chunk-{int(run_ids[0]):07d}-{tag}.npz"

        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, run_ids=run_ids, **{name: records[name] for name in RECORD_FIELDS})

        atomic_write(path, write)


def build_dataset(grid, records: dict[str, np.ndarray], steps: tuple[int, ...], theory: np.ndarray,
                  attrs: dict[str, Any]) -> xr.Dataset:
    """Arrange per-run records (leading axis = run index) into a Dataset with one dim per axis.

    Args:
        grid: the ``aejax.grid.Grid`` of the sweep.
        records: arrays of ``RECORD_FIELDS``; traces have a trailing step axis.
        steps: the trace's step values.
        theory: per-run theory value.
        attrs: JSON-able attributes.

    Returns:
        The Dataset (``status`` is ``"ok"`` or ``"diverged"``).
    """
    shape = grid.shape
    dims = grid.dims
    finite = np.isfinite(records["risk"]) & np.all(np.isfinite(records["loss_trace"]), axis=-1)
    data = {name: (dims, records[name].reshape(shape)) for name in ("risk", "risk_se", "exact_risk", "wall_time")}
    data["theory"] = (dims, np.asarray(theory, np.float64).reshape(shape))
    data["status"] = (dims, np.where(finite, "ok", "diverged").astype(object).reshape(shape))
    for name in ("loss_trace", "risk_trace"):
        data[name] = ((*dims, "step"), records[name].reshape(*shape, len(steps)))
    coords: dict[str, Any] = {"step": np.asarray(steps)}
    if dims == ("run",):
        coords["run"] = np.arange(len(grid.runs))
        for axis in grid.runs[0]:
            coords[axis] = ("run", np.asarray([run[axis] for run in grid.runs]))
    else:
        coords.update({dim: np.asarray(grid.coords[dim]) for dim in dims})
    ds = xr.Dataset(data, coords=coords, attrs={k: _attr(v) for k, v in attrs.items()})
    ds["risk"].attrs["long_name"] = "final Monte Carlo risk"
    ds["risk_se"].attrs["long_name"] = "standard error of risk"
    ds["exact_risk"].attrs["long_name"] = "exact Gaussian risk of the final parameters (NaN if not Gaussian)"
    ds["theory"].attrs["long_name"] = "theory value (aejax.theory.gaussian_limit at the run's rate)"
    ds["wall_time"].attrs["units"] = "s"
    return ds


def _attr(value: Any) -> Any:
    if isinstance(value, (str, int, float, np.integer, np.floating)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def save_results(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` as netCDF atomically (write to a temporary file, then rename).

    Example:
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
        ValueError: when the file is missing, truncated or not a results file.

    Example:
        >>> load_results("/nonexistent.nc")
        Traceback (most recent call last):
        ...
        ValueError: cannot read results file '/nonexistent.nc': no such file
    """
    path = Path(path)
    if path.is_dir():
        path = path / "results.nc"
    if not path.exists():
        raise ValueError(f"cannot read results file {str(path)!r}: no such file")
    try:
        return xr.load_dataset(path, engine=ENGINE)
    except Exception as err:
        raise ValueError(f"cannot read results file {str(path)!r}: {type(err).__name__}: {err} "
                         "(truncated or not a netCDF file)") from None
