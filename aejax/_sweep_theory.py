"""The theory column of a sweep: for each run, the ``aejax.theory`` value that applies to its source,
activation and decoder, or NaN where none does (never another source's number).

- ``gaussian_limit``: an isotropic Gaussian source with the linear decoder:
  ``theory.gaussian_limit(r, activation)`` (docs/theory.md §3).
- ``sparse_best_orthogonal``: a sparse source (``"bg"``, ``"sr"`` or their ``Source`` objects) with
  sign and the linear decoder: for r ≤ 1 the best orthogonal encoder between the rotation and the
  identity, ``1 − r·gain`` with ``theory.best_partial_identity(prior, p)`` (§4, §6); for r > 1 the tight
  frame, ``theory.rotation_risk(r)`` (sparsity is invisible to it, §4).
- ``gaussian_reference``: data (an ``Empirical`` source): ``gaussian_limit`` as a reference, the
  limit on whitened Gaussian data; no theory predicts the data themselves.
- ``none``: NaN (another activation or decoder on a sparse source, a non-isotropic Gaussian, any
  other source).

Examples:
    >>> from aejax.config import TrainConfig
    >>> values, kind = theory_column(TrainConfig(d=8, n=8, steps=4, source="sr"), [{"p": 1.0}], [0.5])
    >>> kind, [round(float(v), 4) for v in values]  # SR at p = 1 is ±1: the identity keeps half of it
    ('sparse_best_orthogonal', [0.5])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from aejax import theory
from aejax.config import TrainConfig
from aejax.hparams import default_hparams
from aejax.sources import BernoulliGaussian, Empirical, Gaussian, SparseRademacher

__all__ = ["DESCRIPTIONS", "theory_column", "theory_kind"]

DESCRIPTIONS = {
    "gaussian_limit": "aejax.theory.gaussian_limit at the run's rate (isotropic Gaussian source, linear decoder)",
    "sparse_best_orthogonal": "best orthogonal encoder on the sparse source, d -> inf: 1 - r*gain of "
    "aejax.theory.best_partial_identity(prior, p) for r <= 1, aejax.theory.rotation_risk(r) for r > 1",
    "gaussian_reference": "aejax.theory.gaussian_limit at the run's rate, a reference for data (the limit on "
    "whitened Gaussian data), not a prediction for them",
    "none": "NaN: no aejax.theory formula applies to this source, activation and decoder",
}
_PRIORS = {"bg": "bg", "bernoulli_gaussian": "bg", "sr": "sr", "sparse_rademacher": "sr"}


def theory_kind(config: TrainConfig) -> str:
    """Which theory applies to the runs of ``config`` (a key of ``DESCRIPTIONS``).

    Examples:
        >>> theory_kind(TrainConfig(d=8, n=8, steps=4)), theory_kind(TrainConfig(d=8, n=8, steps=4, source="bg"))
        ('gaussian_limit', 'sparse_best_orthogonal')
        >>> theory_kind(TrainConfig(d=8, n=8, steps=4, source="bg", activation="relu"))
        'none'
    """
    source, linear = config.source, config.decoder == "linear"
    if isinstance(source, Empirical):
        return "gaussian_reference"
    isotropic = source == "gaussian" or (
        isinstance(source, Gaussian) and source.spectrum is None and source.cov is None
    )
    if isotropic:
        return "gaussian_limit" if linear else "none"
    if _prior(source) is not None and linear and config.activation == "sign":
        return "sparse_best_orthogonal"
    return "none"


def theory_column(
    config: TrainConfig, runs: Sequence[dict[str, Any]], rates: Sequence[float]
) -> tuple[np.ndarray, str]:
    """Each run's theory value (float64, NaN where none applies) and which theory it is.

    Args:
        config: the sweep's config (its source, activation and decoder choose the theory).
        runs: the grid's runs (a swept ``p`` sets a named sparse source's sparsity).
        rates: each run's actual rate n/d.
    """
    kind, r = theory_kind(config), np.asarray(rates, np.float64)
    if kind in ("gaussian_limit", "gaussian_reference"):
        return np.asarray(theory.gaussian_limit(r, config.activation), np.float64), kind
    prior = _prior(config.source)
    if kind == "none" or prior is None:
        return np.full(len(r), np.nan), kind
    default_p = getattr(config.source, "p", default_hparams(config)["p"])
    p = np.asarray([float(run.get("p", default_p)) for run in runs], np.float64)
    _, gain = theory.best_partial_identity(prior, p)
    inside = 1 - np.minimum(r, 1.0) * np.asarray(gain, np.float64)
    return np.where(r <= 1, inside, np.asarray(theory.rotation_risk(r), np.float64)), kind


def _prior(source: Any) -> str | None:
    """The theory prior of a sparse source (``"bg"`` or ``"sr"``), or ``None``."""
    if isinstance(source, str):
        return _PRIORS.get(source)
    if isinstance(source, BernoulliGaussian):
        return "bg"
    return "sr" if isinstance(source, SparseRademacher) else None
