"""Every prediction of the theory subpackage at given rates and sparsities, as table rows.

Example:
    >>> rows = prediction_table(ps=[0.3], rates=[0.5])
    >>> [row["prior"] for row in rows]
    ['bg', 'sr']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aejax.theory.denoiser import denoiser_risk
from aejax.theory.gaussian import gaussian_limit, pca_risk, shannon_limit
from aejax.theory.sparse import (best_partial_identity, critical_sparsity, identity_risk, kurtosis_threshold,
                                 rotation_risk)
from aejax.theory.state_evolution import state_evolution, state_evolution_fixed_point

COLUMNS = ("r", "p", "prior", "gaussian_limit", "shannon", "pca", "rotation", "identity_tied",
           "identity_plus_untied", "partial_identity", "denoiser", "se_1", "se_2", "se_3", "se_fixed_point",
           "p_c_tied", "p_c_plus_untied", "p_kurtosis")


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
        ps: sparsities in (0, 1].
        rates: rates r > 0.

    Returns:
        List of dicts with Python floats (JSON-serialisable).

    Example:
        See the module docstring.
    """
    grid_r, grid_p = (np.asarray(a, dtype=np.float64).ravel() for a in np.meshgrid(rates, ps, indexing="ij"))
    shared = {"gaussian_limit": gaussian_limit(grid_r), "shannon": shannon_limit(grid_r),
              "pca": pca_risk(grid_r), "rotation": rotation_risk(grid_r)}
    rows = []
    for prior in ("bg", "sr"):
        low = np.minimum(grid_r, 1.0)
        values = dict(shared, denoiser=denoiser_risk(prior, grid_p, grid_r),
                      se_fixed_point=state_evolution_fixed_point(prior, grid_p, grid_r),
                      identity_tied=identity_risk(prior, grid_p, low, "tied"),
                      identity_plus_untied=identity_risk(prior, grid_p, low, "plus_untied"))
        layers = np.asarray(state_evolution(prior, grid_p, grid_r, 3))
        values = {k: np.asarray(v) for k, v in values.items()}
        for i, (r, p) in enumerate(zip(grid_r, grid_p)):
            row = {"r": float(r), "p": float(p), "prior": prior}
            row.update({k: float(v[i]) for k, v in values.items()})
            row.update({f"se_{t + 1}": float(layers[i, t]) for t in range(3)})
            row["partial_identity"] = 1 - r * float(best_partial_identity(prior, float(p))[1])
            if r > 1:
                row["identity_tied"] = row["identity_plus_untied"] = row["partial_identity"] = None
            row["p_c_tied"] = critical_sparsity(prior, "tied")
            row["p_c_plus_untied"] = critical_sparsity(prior, "plus_untied")
            row["p_kurtosis"] = kurtosis_threshold(prior)
            rows.append({k: row[k] for k in COLUMNS})
    return rows


def format_table(rows: list[dict]) -> str:
    """Fixed-width text rendering of ``prediction_table`` rows (4 decimals, '-' for None).

    Example:
        >>> print(format_table(prediction_table(ps=[1.0], rates=[1.0])).splitlines()[0].split()[:3])
        ['r', 'p', 'prior']
    """
    def cell(v):
        return "-" if v is None else v if isinstance(v, str) else f"{v:.4f}"

    body = [[cell(row[k]) for k in COLUMNS] for row in rows]
    widths = [max(len(k), *(len(line[j]) for line in body)) for j, k in enumerate(COLUMNS)]
    lines = [" ".join(k.rjust(w) for k, w in zip(COLUMNS, widths))]
    lines += [" ".join(c.rjust(w) for c, w in zip(line, widths)) for line in body]
    return "\n".join(lines)
