"""Every prediction of the theory subpackage at given rates and sparsities, as table rows.

Examples:
    >>> rows = prediction_table(ps=[0.3], rates=[0.5])
    >>> [row["prior"] for row in rows]
    ['bg', 'sr']
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from aejax import _validate
from aejax.theory._quad import as_float, check_sparsity
from aejax.theory.gaussian import gaussian_limit, pca_risk, shannon_limit
from aejax.theory.sparse import (
    best_partial_identity,
    critical_sparsity,
    identity_risk,
    kurtosis_threshold,
    rotation_risk,
)
from aejax.theory.state_evolution import _check, _layers_and_fixed_point

COLUMNS = (
    "r",
    "p",
    "prior",
    "gaussian_limit",
    "shannon",
    "pca",
    "rotation",
    "identity_tied",
    "identity_plus_untied",
    "partial_identity",
    "denoiser",
    "se_1",
    "se_2",
    "se_3",
    "se_fixed_point",
    "p_c_tied",
    "p_c_plus_untied",
    "p_kurtosis",
)


def prediction_table(*, ps: Sequence[float], rates: Sequence[float]) -> list[dict]:
    """One row per (r, p, prior) with every prediction; keys are ``COLUMNS``.

    Identity-encoder risks are ``None`` for r > 1 (the identity has at most d rows);
    ``partial_identity`` is the best orthogonal encoder √a I + √(1−a) M (``best_partial_identity``).
    ``se_t`` is the multi-layer decoder's risk after t layers and ``se_fixed_point`` its limit;
    ``p_c_*`` are the critical sparsities (≥ 1: no transition) and ``p_kurtosis`` the sparsity above
    which a rotation is locally unstable.

    Not jittable (it returns Python rows); both arguments are keyword-only, since two lists of
    numbers cannot be told apart.

    Args:
        ps: sparsities in [``P_MIN`` = 1e-12, 1] (``_quad.P_MIN``: smaller p underflows).
        rates: rates r > 0.

    Returns:
        List of dicts with Python floats (JSON-serialisable).

    Examples:
        See the module docstring.
    """
    check_sparsity("ps", ps)
    _validate.positive_number("rates", rates)
    grid_r, grid_p = (np.asarray(a, dtype=np.float64).ravel() for a in np.meshgrid(rates, ps, indexing="ij"))
    shared = {
        "gaussian_limit": gaussian_limit(grid_r),
        "shannon": shannon_limit(grid_r),
        "pca": pca_risk(grid_r),
        "rotation": rotation_risk(grid_r),
    }
    shared = {k: np.asarray(v) for k, v in shared.items()}
    rows = []
    for prior in ("bg", "sr"):
        # fixed-size chunks (padded with p = r = 1): the jitted functions compile once per prior
        chunks = [
            _predictions(prior, grid_p[i : i + _CHUNK], grid_r[i : i + _CHUNK]) for i in range(0, grid_r.size, _CHUNK)
        ]
        values = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
        values.update(shared)
        constants = {
            "p_c_tied": critical_sparsity(prior, "tied"),
            "p_c_plus_untied": critical_sparsity(prior, "plus_untied"),
            "p_kurtosis": kurtosis_threshold(prior),
        }
        for i, (r, p) in enumerate(zip(grid_r, grid_p, strict=True)):
            row = {"r": float(r), "p": float(p), "prior": prior, **constants}
            row.update({k: float(v[i]) for k, v in values.items()})
            if r > 1:
                row["identity_tied"] = row["identity_plus_untied"] = row["partial_identity"] = None
            rows.append({k: row[k] for k in COLUMNS})
    return rows


_CHUNK = 16


def _predictions(prior: str, p: np.ndarray, r: np.ndarray) -> dict[str, np.ndarray]:
    """The prior-dependent columns for up to ``_CHUNK`` (p, r) pairs, computed at a fixed size."""
    count = p.size
    p, r = (np.concatenate([v, np.ones(_CHUNK - count)]) for v in (p, r))
    low = np.minimum(r, 1.0)
    # state_evolution(prior, p, r, 3) and state_evolution_fixed_point(prior, p, r) in one compiled call
    prior_, p_, r_ = _check(prior, p, r)
    tol = 8 * float(jnp.finfo(p_.dtype).eps)  # state_evolution_fixed_point's floor for its tol
    layers, fixed = (np.asarray(v) for v in _layers_and_fixed_point(prior_, p_, r_, as_float(tol), 3, 2000))
    values = {
        "se_fixed_point": fixed,
        "denoiser": layers[:, 0],  # layer 1 is exactly denoiser_risk (state_evolution docstring)
        "identity_tied": identity_risk(prior, p, low, "tied"),
        "identity_plus_untied": identity_risk(prior, p, low, "plus_untied"),
        "partial_identity": 1 - low * best_partial_identity(prior, p)[1],
    }
    values.update({f"se_{t + 1}": layers[:, t] for t in range(3)})
    return {k: np.asarray(v, dtype=np.float64)[:count] for k, v in values.items()}


def format_table(rows: list[dict]) -> str:
    """Fixed-width text rendering of ``prediction_table`` rows (4 decimals, '-' for None).

    Examples:
        >>> print(format_table(prediction_table(ps=[1.0], rates=[1.0])).splitlines()[0].split()[:3])
        ['r', 'p', 'prior']
    """

    def cell(v):
        return "-" if v is None else v if isinstance(v, str) else f"{v:.4f}"

    body = [[cell(row[k]) for k in COLUMNS] for row in rows]
    widths = [max(len(k), *(len(line[j]) for line in body)) for j, k in enumerate(COLUMNS)]
    lines = [" ".join(k.rjust(w) for k, w in zip(COLUMNS, widths, strict=True))]
    lines += [" ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in body]
    return "\n".join(lines)
