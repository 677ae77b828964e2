"""Theory of two-layer autoencoders (docs/theory.md §3–9), each formula checked in tests/test_theory_*.

Pure mathematics: nothing here imports the engine. (The finite-d optimum by gradient descent on the
exact risk, which runs the engine, is ``aejax.optimum.finite_d_optimum``, and run to a gradient
tolerance ``aejax.optimum.converged_optimum``.)

- Gaussian data: ``gaussian_limit``, ``shannon_limit``, ``pca_risk``, ``activation_moments``; the
  leading finite-d excess of a frame over R_Gauss at r > 1: ``finite_d_coefficient``, ``frame_excess``;
  the Paley equiangular tight frame ``paley_etf`` and ``frame_statistics`` (coherence, Welch bound, tightness).
- Sparse sources (priors ``"bg"``, ``"sr"`` or a ``Prior``): ``kappa``, ``rotation_risk``,
  ``identity_risk``, ``critical_sparsity``, ``fourth_moment``, ``excess_kurtosis``,
  ``kurtosis_threshold``, ``kurtosis_correction``, ``rotation_excess``, ``partial_identity_risk``,
  ``best_partial_identity``.
- Denoising the shallow decoder: ``effective_channel``, ``posterior_mean``, ``denoiser_risk``,
  ``mmse``, ``posterior``.
- Multi-layer VAMP decoder of the 1-bit code: ``multilayer_decode`` and its ``state_evolution``,
  ``state_evolution_fixed_point``; the output channel ``sign_posterior``, ``sign_channel_mmse``.
- ``prediction_table`` / ``format_table`` for the ``aejax theory`` command.

Argument order (one rule for every function here): the model's parameters come first, positionally,
in the order ``prior, p, r`` — each one only where the function depends on it — then everything else
(``identity_risk(prior, p, r, convention)``, ``partial_identity_risk(prior, p, r, a)``,
``kurtosis_correction(prior, p, r, ipr)``, ``posterior_mean(prior, p, r, y)``,
``multilayer_decode(prior, p, B, s, layers)``; the SNR of a scalar channel stands where r would:
``mmse(prior, p, snr)``, ``posterior(prior, p, snr, y)``). Functions of r alone stay ``f(r, ...)``
(``gaussian_limit``, ``rotation_risk``, ``effective_channel``). The prior is always required (no
default), so a call in the old order (a number where the prior goes) raises a TypeError naming
``prior``; a p outside (0, 1] raises a ValueError naming ``p``. Two same-kind arguments that could be
swapped silently are keyword-only: ``prediction_table(*, ps, rates)`` (and ``aejax.optimum.finite_d_optimum(r, *, d)``).

Return values: functions of the prior alone (``kappa``, ``fourth_moment``, ``kurtosis_threshold``,
``critical_sparsity``, ``activation_moments``) return Python floats — constants of a static argument,
usable inside jit. All the others return jax arrays and are jittable in their numeric arguments
(prior, convention, activation and counts such as ``layers`` are static; checks of values run only on
concrete inputs), except ``prediction_table`` / ``format_table`` (Python rows and text).

Examples:
    >>> from aejax import theory
    >>> round(float(theory.gaussian_limit(0.5)), 4), round(theory.critical_sparsity("sr", "tied"), 4)
    (0.6817, 0.6366)
"""

from aejax.theory.decoder import multilayer_decode
from aejax.theory.denoiser import denoiser_risk, effective_channel, posterior_mean
from aejax.theory.frames import finite_d_coefficient, frame_excess, frame_statistics, paley_etf
from aejax.theory.gaussian import activation_moments, gaussian_limit, pca_risk, shannon_limit
from aejax.theory.priors import BG, SR, Prior, mmse, posterior, resolve_prior
from aejax.theory.sign_channel import sign_channel_mmse, sign_posterior
from aejax.theory.sparse import (
    CONVENTIONS,
    best_partial_identity,
    critical_sparsity,
    excess_kurtosis,
    fourth_moment,
    identity_risk,
    kappa,
    kurtosis_correction,
    kurtosis_threshold,
    partial_identity_risk,
    rotation_excess,
    rotation_risk,
)
from aejax.theory.state_evolution import state_evolution, state_evolution_fixed_point
from aejax.theory.table import format_table, prediction_table

__all__ = [
    "BG",
    "CONVENTIONS",
    "SR",
    "Prior",
    "activation_moments",
    "best_partial_identity",
    "critical_sparsity",
    "denoiser_risk",
    "effective_channel",
    "excess_kurtosis",
    "finite_d_coefficient",
    "format_table",
    "fourth_moment",
    "frame_excess",
    "frame_statistics",
    "gaussian_limit",
    "identity_risk",
    "kappa",
    "kurtosis_correction",
    "kurtosis_threshold",
    "mmse",
    "multilayer_decode",
    "paley_etf",
    "partial_identity_risk",
    "pca_risk",
    "posterior",
    "posterior_mean",
    "prediction_table",
    "resolve_prior",
    "rotation_excess",
    "rotation_risk",
    "shannon_limit",
    "sign_channel_mmse",
    "sign_posterior",
    "state_evolution",
    "state_evolution_fixed_point",
]
