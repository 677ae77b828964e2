"""Optimizers by name and learning-rate schedules, against the schedule formulas written out here."""

import jax
import numpy as np
import optax
import pytest

import aejax
from aejax.optim import OPTIMIZERS, SCHEDULES, get_optimizer, schedule_factor

STEPS = 100


def reference_factor(schedule, t, steps, warmup):
    """cosine: (1 + cos(π t/T))/2; linear: 1 - t/T; constant: 1; times min(1, (t + 1)/warmup)."""
    base = {"constant": 1.0, "cosine": 0.5 * (1 + np.cos(np.pi * t / steps)), "linear": 1 - t / steps}[schedule]
    return base * (min(1.0, (t + 1) / warmup) if warmup else 1.0)


@pytest.mark.parametrize("warmup", [0, 10])
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedule_factor_matches_formula(schedule, warmup):
    """schedule_factor at every step equals the closed form, also under jit with a traced step."""
    jitted = jax.jit(lambda t: schedule_factor(schedule, t, STEPS, warmup))
    for t in range(STEPS):
        want = reference_factor(schedule, t, STEPS, warmup)
        assert float(schedule_factor(schedule, t, STEPS, warmup)) == pytest.approx(want, abs=1e-6)
        assert float(jitted(t)) == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_named_optimizers_are_unit_lr_transformations(name):
    """Each name gives an optax transformation whose first update on a quadratic is the family's
    unit-learning-rate step: a descent direction, -g for sgd, ±1 for adam."""
    opt = get_optimizer(name)
    assert isinstance(opt, optax.GradientTransformation)
    params = {"w": np.array([1.0, -2.0], np.float32)}
    grads = {"w": np.array([0.5, -4.0], np.float32)}
    updates, _ = opt.update(grads, opt.init(params), params)
    u = np.asarray(updates["w"])
    assert np.all(np.sign(u) == -np.sign(grads["w"]))  # a descent direction
    if name == "sgd":
        np.testing.assert_allclose(u, -grads["w"], rtol=1e-6)
    if name == "adam":
        np.testing.assert_allclose(np.abs(u), 1.0, rtol=1e-3)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_named_optimizer_trains(name):
    """Population GD with each optimizer lowers the exact risk from its trivial value 1."""
    lr = 0.5 if name in ("sgd", "momentum", "nesterov", "adagrad") else 0.02
    cfg = aejax.TrainConfig(d=8, n=4, steps=50, mode="population", optimizer=name)
    _, trace = aejax.make_train(cfg)(jax.random.key(0), {"lr": lr})
    risk = np.asarray(trace["risk"])
    assert np.all(np.isfinite(risk)) and risk[-1] < 0.85


def test_optax_transformation_is_passed_through():
    """An optax object is used as is, in get_optimizer and in a TrainConfig."""
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(1.0))
    assert get_optimizer(opt) is opt
    cfg = aejax.TrainConfig(d=8, n=4, steps=30, mode="population", optimizer=opt)
    _, trace = aejax.make_train(cfg)(jax.random.key(0), {"lr": 0.3})
    assert float(trace["risk"][-1]) < 0.9


def test_unknown_optimizer_raises_listing_allowed():
    """Unknown names raise ValueError naming the argument and listing the allowed names."""
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'") as err:
        get_optimizer("adamax")
    assert all(name in str(err.value) for name in OPTIMIZERS)
