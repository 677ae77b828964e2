"""Finite-d optimum of the sign autoencoder on Gaussian data: GD on the exact risk, best of restarts.

For r ≤ 1 the optimum is 1 − 2r/π at every d; for r > 1, ``gaussian_limit(r)`` is only the d → ∞
value, approached from above, and this function is the finite-d reference (docs/theory.md §10). It
runs the engine (exact risk, optimal decoder), so it lives beside them rather than in the pure
``aejax.theory``. ``converged_optimum`` runs L-BFGS instead, to a tolerance on the Riemannian gradient
norm over unit rows rather than for a step count (docs/theory.md §12.1), with ``unit_row_risk`` and
``riemannian_grad_norm``.

Examples:
    >>> import jax
    >>> out = finite_d_optimum(0.5, d=8, restarts=2, steps=300, key=jax.random.key(0))
    >>> bool(abs(out.risk - (1 - 1 / 3.141592653589793)) < 5e-3)
    True
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import linalg, optimize

from aejax import _validate
from aejax.model import Architecture, Params, init
from aejax.risk import exact_risk, optimal_decoder
from aejax.sources import Gaussian


class FiniteDOptimum(NamedTuple):
    """Result of ``finite_d_optimum``: best risk, its encoder, and every restart's final risk."""

    risk: jax.Array
    encoder: jax.Array
    restart_risks: jax.Array


def finite_d_optimum(
    r: Any, *, d: int, restarts: int = 4, steps: int = 2000, lr: float = 0.01, key: jax.Array | None = None
) -> FiniteDOptimum:
    """Minimise the exact N(0, I) risk of the sign autoencoder over B, with A = A*(B) optimal.

    Each restart starts from an i.i.d. Gaussian B (``aejax.model.init``) and runs Adam on
    ``exact_risk(Params(optimal_decoder(B), B))`` (docs/theory.md §2), all restarts vmapped.

    Not jittable: the number of rows n = round(r d) fixes array shapes, so ``r`` must be concrete
    (the optimisation itself is compiled inside). ``d`` is keyword-only so that the two numbers
    cannot be swapped.

    Args:
        r: rate; n = round(r d) hidden units (≥ 1).
        d: input dimension (keyword-only).
        restarts: number of random initialisations.
        steps: Adam steps per restart.
        lr: Adam learning rate.
        key: PRNG key (default ``jax.random.key(0)``).

    Returns:
        ``FiniteDOptimum(risk, encoder, restart_risks)``; ``risk`` is the smallest final risk.

    Examples:
        See the module docstring.
    """
    d = _validate.positive_int("d", d)
    _validate.positive_number("r", r)
    restarts = _validate.positive_int("restarts", restarts)
    steps = _validate.positive_int("steps", steps)
    _validate.positive_number("lr", lr)
    n = max(1, round(float(r) * d))
    source = Gaussian(d)
    key = jax.random.key(0) if key is None else key

    def risk(B):
        arch = Architecture("sign", row_normalize=False)
        return exact_risk(Params(optimal_decoder(B, source, arch=arch), B), source, arch=arch)

    optimizer = optax.adam(lr)

    def run(k):
        B = init(k, d, n, kind="gaussian").B

        def step(carry, _):
            B, state = carry
            grad = jax.grad(risk)(B)
            updates, state = optimizer.update(grad, state, B)
            return (optax.apply_updates(B, updates), state), None

        B, _ = jax.lax.scan(step, (B, optimizer.init(B)), None, length=steps)[0]
        return risk(B), B

    risks, encoders = jax.jit(jax.vmap(run))(jax.random.split(key, restarts))
    best = jnp.argmin(risks)
    return FiniteDOptimum(risks[best], encoders[best], risks)


class ConvergedOptimum(NamedTuple):
    """Result of ``converged_optimum`` (the best restart first, then every restart's record).

    Attributes:
        risk: the smallest final risk over restarts.
        encoder: its encoder, unit rows (n × d).
        grad_norm: the Riemannian gradient norm at ``encoder`` (``riemannian_grad_norm``).
        iterations: L-BFGS iterations of the best restart.
        restart_risks, restart_grad_norms, restart_iterations: one entry per restart.
        converged: per restart, whether it stopped on ``grad_norm ≤ tol`` (not on ``max_iter``).
        spread: largest minus smallest restart risk.
    """

    risk: jax.Array
    encoder: jax.Array
    grad_norm: jax.Array
    iterations: jax.Array
    restart_risks: jax.Array
    restart_grad_norms: jax.Array
    restart_iterations: jax.Array
    converged: jax.Array
    spread: jax.Array


def unit_row_risk(B: Any) -> jax.Array:
    """Exact N(0, I) risk of the sign autoencoder with encoder rows ``B/‖b_i‖`` and the optimal decoder.

    ``1 − (2/(π d)) tr(B̄ᵀ K⁻¹ B̄)`` with ``K = (2/π) arcsin(B̄B̄ᵀ)`` (docs/theory.md §2, §12), solved by
    a Cholesky factorisation without the ridge of ``optimal_decoder``: the same number as
    ``exact_risk(Params(optimal_decoder(B), B))`` up to that ridge, at about half the cost. Invariant
    to each row's scale, so its gradient at unit rows is the Riemannian gradient on the product of
    spheres. Jittable and differentiable.

    Args:
        B: encoder, n × d, no zero row.

    Returns:
        The risk (a scalar).

    Examples:
        >>> import jax.numpy as jnp
        >>> round(float(unit_row_risk(jnp.eye(4))), 4)  # r = 1: 1 − 2/π
        0.3634
    """
    B = jnp.asarray(B, jnp.result_type(float))
    d = B.shape[1]
    unit = B / jnp.linalg.norm(B, axis=1, keepdims=True)
    gram = jnp.clip(unit @ unit.T, -1 + 1e-12, 1 - 1e-12)
    eye = jnp.eye(B.shape[0], dtype=B.dtype)
    kernel = (2 / jnp.pi) * jnp.where(eye > 0, jnp.pi / 2, jnp.arcsin(gram * (1 - eye)))
    chol = jnp.linalg.cholesky(kernel)
    whitened = jax.scipy.linalg.solve_triangular(chol, unit, lower=True)
    return 1 - (2 / jnp.pi) * jnp.sum(whitened**2) / d


def riemannian_grad_norm(B: Any) -> jax.Array:
    """Frobenius norm of the Riemannian gradient of ``unit_row_risk`` at the unit rows of ``B``.

    The gradient on the product of unit spheres: each row of the Euclidean gradient projected onto
    the tangent space ``{v : v·b̄_i = 0}`` (``unit_row_risk`` is scale invariant per row, so its
    Euclidean gradient at unit rows is already tangent; the projection is applied anyway).

    Examples:
        >>> import jax.numpy as jnp
        >>> float(riemannian_grad_norm(jnp.eye(4))) < 1e-6  # an orthonormal basis is stationary
        True
    """
    B = jnp.asarray(B, jnp.result_type(float))
    unit = B / jnp.linalg.norm(B, axis=1, keepdims=True)
    grad = jax.grad(unit_row_risk)(unit)
    tangent = grad - jnp.sum(grad * unit, axis=1, keepdims=True) * unit
    return jnp.linalg.norm(tangent)


def _riemannian_norm(B: np.ndarray, grad: np.ndarray) -> float:
    """Riemannian gradient norm at B/‖b_i‖ from the Euclidean gradient of the scale-invariant risk at B
    (which is that Riemannian gradient divided row-wise by ‖b_i‖, and already tangent)."""
    return float(np.linalg.norm(grad * np.linalg.norm(B, axis=1, keepdims=True)))


def _risk_and_grad(B: np.ndarray) -> tuple[float, np.ndarray]:
    """``unit_row_risk`` and its gradient in NumPy float64 on the host, by hand (for the optimiser's
    inner loop, where a JAX call's dispatch costs more than the arithmetic at these sizes).

    With U = B̄, W = K⁻¹U and f = tr(UᵀW): ∂f/∂U = 2W − 2MU, M = (WWᵀ) ∘ (2/π)/√(1 − G²) off the
    diagonal; then projected on each row's tangent space and divided by ‖b_i‖ (row normalisation).
    """
    d = B.shape[1]
    norms = np.linalg.norm(B, axis=1, keepdims=True)
    unit = B / norms
    gram = np.clip(unit @ unit.T, -1 + 1e-12, 1 - 1e-12)
    np.fill_diagonal(gram, 0.0)
    kernel = (2 / np.pi) * np.arcsin(gram)
    np.fill_diagonal(kernel, 1.0)
    whitened = linalg.cho_solve(linalg.cho_factor(kernel, lower=True), unit)
    weights = (whitened @ whitened.T) * (2 / np.pi) / np.sqrt(1 - gram**2)
    np.fill_diagonal(weights, 0.0)
    grad = 2 * whitened - 2 * weights @ unit
    grad -= np.sum(grad * unit, axis=1, keepdims=True) * unit
    scale = -2 / (np.pi * d)
    return 1 + scale * float(np.sum(unit * whitened)), scale * grad / norms


def _lbfgs(B0: np.ndarray, tol: float, max_iter: int, memory: int) -> tuple[np.ndarray, int]:
    """SciPy's L-BFGS-B (no bounds) on the scale-invariant risk from ``B0``, stopped by a callback as
    soon as the Riemannian gradient norm is ≤ ``tol`` (its own tolerances set to zero), or after
    ``max_iter`` iterations, or when its line search can make no more progress in floating point.
    Returns (unit-row encoder, iterations)."""
    shape, last = B0.shape, {}

    def fun(x):
        value, grad = _risk_and_grad(x.reshape(shape))
        last["x"], last["grad"] = x.copy(), grad.ravel()
        return value, last["grad"]

    def callback(intermediate_result):
        x = intermediate_result.x
        if not np.array_equal(x, last["x"]):
            fun(x)
        if _riemannian_norm(x.reshape(shape), last["grad"].reshape(shape)) <= tol:
            raise StopIteration

    x0 = np.asarray(B0, np.float64).ravel()
    if _riemannian_norm(B0, np.asarray(fun(x0)[1]).reshape(shape)) <= tol:
        result_x, nit = x0, 0
    else:
        options = {"maxiter": max_iter, "maxcor": memory, "ftol": 0.0, "gtol": 0.0, "maxfun": 10 * max_iter}
        result = optimize.minimize(fun, x0, jac=True, method="L-BFGS-B", callback=callback, options=options)
        result_x, nit = result.x, int(result.nit)
    B = result_x.reshape(shape)
    return B / np.linalg.norm(B, axis=1, keepdims=True), nit


def converged_optimum(
    r: Any,
    *,
    d: int,
    restarts: int = 4,
    tol: float | None = None,
    max_iter: int = 20000,
    memory: int = 20,
    key: jax.Array | None = None,
    start: Any = None,
) -> ConvergedOptimum:
    """Minimise the exact N(0, I) risk of the sign autoencoder over unit-norm encoder rows, to convergence.

    The decoder is eliminated (A = A*(B), ``unit_row_risk``) and each restart runs L-BFGS (SciPy's
    L-BFGS-B without bounds, ``memory`` correction pairs, its own tolerances off) on the
    scale-invariant risk of B/‖b_i‖ (value and gradient in float64 NumPy on the host), until
    the Riemannian gradient norm on the product of spheres (``riemannian_grad_norm``: Frobenius norm of
    the row-wise tangent projection of the gradient) is at most ``tol``; it also stops after
    ``max_iter`` iterations or when the line search can make no further progress in floating point,
    and then ``converged`` is False for that restart. Compared with ``finite_d_optimum`` (Adam for a
    fixed number of steps) the stopping rule is a stationarity criterion, not a step count.

    Why L-BFGS: near a minimum the Hessian is badly conditioned (frames close to tight and
    equiangular differ little in risk), where first-order methods crawl and curvature pairs help; and
    SciPy's line search accepts the quasi-Newton step at about one evaluation per iteration (optax's
    zoom line search took about twelve here, and a JAX call per evaluation cost more in dispatch than
    the NumPy arithmetic at d ≤ 256).

    The optimisation runs in float64 whatever jax's mode; the returned arrays and the reported
    ``grad_norm`` (from ``jax.grad``, independently of the hand-written gradient the optimiser uses)
    are in jax's float type, so use float64 (``jax.config.update("jax_enable_x64", True)``) to
    check tolerances below about 1e-5. The default ``tol`` is 1e-8 in float64 and 1e-4 in float32.
    The iterations needed grow with d
    (about 100, 300, 900 at d = 8, 16, 32 for tol = 1e-8, r = 2).

    Not jittable: n = round(r d) fixes shapes, and the restarts run one after another on the host.

    Args:
        r: rate; n = round(r d) rows (≥ 1).
        d: input dimension (keyword-only).
        restarts: number of starts from i.i.d. Gaussian rows (``aejax.model.init``); ignored when
            ``start`` is given.
        tol: stopping tolerance on the Riemannian gradient norm.
        max_iter: iteration cap per restart.
        memory: L-BFGS history length.
        key: PRNG key for the random starts (default ``jax.random.key(0)``).
        start: optional starting encoder(s), shape (n, d) or (restarts, n, d), used instead of
            random starts (e.g. an equiangular tight frame, ``aejax.theory.paley_etf``).

    Returns:
        ``ConvergedOptimum``.

    Examples:
        >>> import jax
        >>> out = converged_optimum(2.0, d=4, restarts=2, tol=1e-4, key=jax.random.key(1))
        >>> bool(out.converged.all()), bool(out.grad_norm <= 1e-4), out.encoder.shape
        (True, True, (8, 4))
    """
    d = _validate.positive_int("d", d)
    _validate.positive_number("r", r, scalar=True)
    restarts = _validate.positive_int("restarts", restarts)
    max_iter = _validate.positive_int("max_iter", max_iter, maximum=2**31 - 1)
    memory = _validate.positive_int("memory", memory)
    dtype = jnp.result_type(float)
    if tol is None:
        tol = 1e-8 if dtype == jnp.float64 else 1e-4
    _validate.positive_number("tol", tol, scalar=True)
    n = max(1, round(float(r) * d))
    starts = _starts(start, n, d, restarts, jax.random.key(0) if key is None else key)
    runs = [_lbfgs(np.asarray(B, np.float64), float(tol), max_iter, memory) for B in starts]
    encoders = jnp.asarray(np.stack([B for B, _ in runs]), dtype)
    iterations = jnp.asarray([it for _, it in runs])
    risks, norms = _risks_and_norms(encoders)
    best = jnp.argmin(risks)
    return ConvergedOptimum(
        risk=risks[best],
        encoder=encoders[best],
        grad_norm=norms[best],
        iterations=iterations[best],
        restart_risks=risks,
        restart_grad_norms=norms,
        restart_iterations=iterations,
        converged=norms <= tol,
        spread=jnp.max(risks) - jnp.min(risks),
    )


@jax.jit
def _risks_and_norms(encoders: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``unit_row_risk`` and ``riemannian_grad_norm`` (by ``jax.grad``) of each encoder, compiled once per shape."""
    return jax.vmap(unit_row_risk)(encoders), jax.vmap(riemannian_grad_norm)(encoders)


def _starts(start: Any, n: int, d: int, restarts: int, key: jax.Array) -> jax.Array:
    """The initial encoders: ``start`` (checked against n × d) or ``restarts`` i.i.d. Gaussian ones."""
    if start is None:
        return jnp.stack([init(k, d, n, kind="gaussian").B for k in jax.random.split(key, restarts)])
    start = jnp.asarray(start, jnp.result_type(float))
    start = start[None] if start.ndim == 2 else start
    if start.ndim != 3 or start.shape[1:] != (n, d):
        raise _validate.InputError(
            f"start must have shape ({n}, {d}) or (restarts, {n}, {d}) for n = round(r·d), got {start.shape}"
        )
    _validate.finite_array("start", start)
    if bool(jnp.any(jnp.linalg.norm(start, axis=-1) == 0)):
        raise _validate.InputError("start must have no zero row")
    return start
