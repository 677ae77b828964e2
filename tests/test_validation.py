"""Every public entry point refuses bad input eagerly: a table of (call, exception, message fragment).

Each message must name the argument and the bad value or what is allowed. The calls that reach
``aejax.sweep`` fail before anything is compiled, so the table runs in a few seconds.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import aejax
from aejax.cli import main
from aejax.config import TrainConfig
from aejax.data import fit_preprocessing
from aejax.grid import Grid
from aejax.hparams import full_hparams
from aejax.model import Params, apply, decode, init
from aejax.results import RunStore
from aejax.sources import BernoulliGaussian, Empirical, Gaussian, SparseRademacher, make_source

KEY = jax.random.key(0)
P = init(KEY, 8, 4)  # B: (4, 8), A: (8, 4)
G = Gaussian(8)
CFG = TrainConfig(d=8, n=4, steps=10)
X = jnp.ones((3, 8))
NO_RUN = dict(progress=False, mc_samples=64)


def config(**fields):
    return TrainConfig(**{"d": 8, "n": 4, "steps": 10, **fields})


def sweep(**kw):
    kw = {"config": CFG, "grid": {"seed": [0]}, **NO_RUN, **kw}
    return aejax.sweep(kw.pop("config"), kw.pop("grid"), **kw)


def rank_deficient():
    x = np.random.default_rng(0).normal(size=(50, 3))
    return np.concatenate([x, x[:, :1] + x[:, 1:2]], axis=1)


CASES = [
    # TrainConfig (static structure)
    ("config d=0", lambda: config(d=0), ValueError, "d must be a positive integer (>= 1), got 0"),
    ("config d=8.0", lambda: config(d=8.0), TypeError, "d must be a positive integer, got 8.0 of type float"),
    ("config n=-1", lambda: config(n=-1), ValueError, "n must be a positive integer (>= 1), got -1"),
    ("config steps=0", lambda: config(steps=0), ValueError, "steps must be a positive integer"),
    ("config batch=True", lambda: config(batch=True), TypeError, "batch must be a positive integer, got True"),
    ("config warmup=-1", lambda: config(warmup=-1), ValueError, "warmup must be a non-negative integer, got -1"),
    (
        "config activation",
        lambda: config(activation="swish"),
        ValueError,
        "unknown activation 'swish'; allowed: helu, linear, relu, sign, tanh",
    ),
    (
        "config surrogate",
        lambda: config(surrogate="soft"),
        ValueError,
        "unknown surrogate 'soft'; allowed: approx_sign",
    ),
    ("config optimizer", lambda: config(optimizer="adamx"), ValueError, "unknown optimizer 'adamx'; allowed: adagrad"),
    (
        "config source",
        lambda: config(source="cauchy"),
        ValueError,
        "unknown source 'cauchy'; allowed: bernoulli_gaussian",
    ),
    ("config mode", lambda: config(mode="batch"), ValueError, "unknown mode 'batch'; allowed: dataset, online"),
    ("config schedule", lambda: config(schedule="exp"), ValueError, "unknown schedule 'exp'; allowed: constant"),
    ("config tied='yes'", lambda: config(tied="yes"), TypeError, "tied must be True or False, got 'yes'"),
    ("config row_normalize=1", lambda: config(row_normalize=1), TypeError, "row_normalize must be True or False"),
    ("config eval_every", lambda: config(eval_every=3), ValueError, "eval_every must divide steps=10, got 3"),
    (
        "config population+bg",
        lambda: config(mode="population", source="bg"),
        ValueError,
        "mode 'population' needs a Gaussian source, got source='bg'",
    ),
    ("config source d", lambda: config(source=Gaussian(9)), ValueError, "source has d=9 but the config has d=8"),
    # hparams (swept numbers) and the training function
    ("hparams lr=0", lambda: full_hparams(CFG, {"lr": 0.0}), ValueError, "lr must be finite and positive, got 0.0"),
    (
        "hparams lr=nan",
        lambda: full_hparams(CFG, {"lr": float("nan")}),
        ValueError,
        "lr must be finite and positive, got nan",
    ),
    (
        "hparams slope=inf",
        lambda: full_hparams(CFG, {"slope": [1.0, np.inf]}),
        ValueError,
        "slope must be finite and positive, got inf",
    ),
    (
        "hparams margin<0",
        lambda: full_hparams(CFG, {"margin": -0.1}),
        ValueError,
        "margin must be finite and non-negative, got -0.1",
    ),
    ("hparams p=1.5", lambda: full_hparams(CFG, {"p": 1.5}), ValueError, "p must lie in (0, 1], got 1.5"),
    (
        "hparams rate>n/d",
        lambda: full_hparams(CFG, {"rate": 2.0}),
        ValueError,
        "rate must give between 1 and n=4 hidden units at d=8",
    ),
    (
        "hparams unknown",
        lambda: full_hparams(CFG, {"learning_rate": 0.1}),
        ValueError,
        "unknown hparams ['learning_rate']; allowed: lr, slope, margin, rate, p",
    ),
    ("hparams lr='fast'", lambda: full_hparams(CFG, {"lr": "fast"}), TypeError, "lr must be a number or an array"),
    ("hparams as list", lambda: full_hparams(CFG, [0.1]), TypeError, "hparams must be a dict {name: number} or None"),
    ("train key=0", lambda: aejax.make_train(CFG)(0, {}), TypeError, "key must be a JAX PRNG key"),
    # model
    ("init n=0", lambda: init(KEY, 8, 0), ValueError, "n must be a positive integer"),
    ("init key=123", lambda: init(123, 8, 4), TypeError, "key must be a JAX PRNG key (jax.random.key(seed)), got 123"),
    (
        "init decoder_scale<0",
        lambda: init(KEY, 8, 4, decoder_scale=-1.0),
        ValueError,
        "decoder_scale must be finite and non-negative, got -1.0",
    ),
    (
        "init decoder_scale=nan",
        lambda: init(KEY, 8, 4, decoder_scale=float("nan")),
        ValueError,
        "decoder_scale must be finite and non-negative, got nan",
    ),
    (
        "apply x of wrong d",
        lambda: apply(P, jnp.ones((3, 5))),
        ValueError,
        "x must have a last axis of size 8 (the input dimension of params.B, shape (4, 8)), got shape (3, 5)",
    ),
    ("apply scalar x", lambda: apply(P, 1.0), ValueError, "x must have a last axis of size 8"),
    (
        "apply mask of wrong n",
        lambda: apply(P, X, mask=jnp.ones(3)),
        ValueError,
        "mask must have a last axis of size 4 (one entry per hidden unit), got shape (3,)",
    ),
    (
        "apply A of wrong shape",
        lambda: apply(Params(jnp.zeros((8, 3)), P.B), X),
        ValueError,
        "params.A must have shape (8, 4) (or be a scalar for a tied decoder), got (8, 3)",
    ),
    ("apply tuple params", lambda: apply((P.A, P.B), X), TypeError, "params must be aejax.Params(A, B)"),
    ("apply activation", lambda: apply(P, X, "swish"), ValueError, "unknown activation 'swish'"),
    ("decode s of wrong n", lambda: decode(P, jnp.ones((2, 3))), ValueError, "s must have a last axis of size 4"),
    ("sign surrogate", lambda: aejax.sign(X, surrogate="soft"), ValueError, "unknown surrogate 'soft'"),
    # risk
    (
        "mc_risk source d",
        lambda: aejax.mc_risk(P, Gaussian(9), KEY, 100, arch=aejax.Architecture("sign", row_normalize=False)),
        ValueError,
        "params.B must have shape (n, d) with d=9 (the source's d), got (4, 8)",
    ),
    (
        "mc_risk n_samples=1",
        lambda: aejax.mc_risk(P, G, KEY, 1, arch=aejax.Architecture("sign", row_normalize=False)),
        ValueError,
        "n_samples must be an integer, at least 2, got 1",
    ),
    (
        "mc_risk chunk=0",
        lambda: aejax.mc_risk(P, G, KEY, 100, chunk=0, arch=aejax.Architecture("sign", row_normalize=False)),
        ValueError,
        "chunk must be a positive integer (>= 1), got 0",
    ),
    (
        "mc_risk key=0",
        lambda: aejax.mc_risk(P, G, 0, 100, arch=aejax.Architecture("sign", row_normalize=False)),
        TypeError,
        "key must be a JAX PRNG key",
    ),
    (
        "mc_risk mask",
        lambda: aejax.mc_risk(P, G, KEY, 100, arch=aejax.Architecture("sign", mask=jnp.ones(5))),
        ValueError,
        "mask must have a last axis of size 4",
    ),
    (
        "exact_risk BG source",
        lambda: aejax.exact_risk(P, BernoulliGaussian(8, 0.5), arch=aejax.Architecture("sign", row_normalize=False)),
        ValueError,
        "source must be a Gaussian source for closed-form moments, got BernoulliGaussian",
    ),
    (
        "exact_risk source name",
        lambda: aejax.exact_risk(P, "gaussian", arch=aejax.Architecture("sign", row_normalize=False)),
        TypeError,
        "source must be an aejax.sources.Source (e.g. Gaussian(d)), got str",
    ),
    (
        "exact_risk mask",
        lambda: aejax.exact_risk(P, G, arch=aejax.Architecture("sign", mask=jnp.ones(5))),
        ValueError,
        "mask must have a last axis of size 4",
    ),
    (
        "optimal_decoder 1-D B",
        lambda: aejax.optimal_decoder(jnp.ones(8), G, arch=aejax.Architecture("sign", row_normalize=False)),
        ValueError,
        "B must have shape (n, d) with d=8 (the source's d), got (8,)",
    ),
    (
        "optimal_decoder ridge<0",
        lambda: aejax.optimal_decoder(P.B, G, ridge=-1.0, arch=aejax.Architecture("sign", row_normalize=False)),
        ValueError,
        "ridge must be finite and non-negative, got -1.0",
    ),
    (
        "optimal_decoder BG no key",
        lambda: aejax.optimal_decoder(
            P.B, BernoulliGaussian(8, 0.5), arch=aejax.Architecture("sign", row_normalize=False)
        ),
        ValueError,
        "use mc_risk, or optimal_decoder with key=",
    ),
    # sources and real data
    ("Gaussian d=0", lambda: Gaussian(0), ValueError, "d must be a positive integer (>= 1), got 0"),
    (
        "Gaussian spectrum shape",
        lambda: Gaussian(4, spectrum=[1.0, 2.0]),
        ValueError,
        "spectrum must have shape (4,) to match d=4, got shape (2,)",
    ),
    (
        "Gaussian spectrum nan",
        lambda: Gaussian(2, spectrum=[1.0, np.nan]),
        ValueError,
        "spectrum must be finite and non-negative, got nan",
    ),
    (
        "Gaussian covariance asym",
        lambda: Gaussian(2, covariance=[[1.0, 0.5], [0.0, 1.0]]),
        ValueError,
        "covariance must be symmetric",
    ),
    (
        "Gaussian covariance not PSD",
        lambda: Gaussian(2, covariance=[[1.0, 0.0], [0.0, -1.0]]),
        ValueError,
        "covariance must be positive semi-definite; its smallest eigenvalue is -1",
    ),
    ("BernoulliGaussian p=0", lambda: BernoulliGaussian(8, 0.0), ValueError, "p must lie in (0, 1], got 0.0"),
    ("SparseRademacher p=nan", lambda: SparseRademacher(8, float("nan")), ValueError, "p must lie in (0, 1], got nan"),
    ("make_source name", lambda: make_source("cauchy", 8), ValueError, "unknown source 'cauchy'"),
    (
        "Empirical NaN",
        lambda: Empirical(np.array([[1.0, 2.0], [np.nan, 1.0], [0.0, 3.0]])),
        ValueError,
        "data must be finite; rows [1] hold NaN or inf",
    ),
    (
        "Empirical constant column",
        lambda: Empirical(np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])),
        ValueError,
        "data has constant columns [1] (zero variance)",
    ),
    (
        "Empirical rank-deficient zca",
        lambda: Empirical(rank_deficient(), whiten="zca"),
        ValueError,
        "cannot whiten: the data covariance has numerical rank 3 < 4",
    ),
    (
        "preprocessing whiten name",
        lambda: fit_preprocessing(rank_deficient(), whiten="pcaa"),
        ValueError,
        "unknown whiten 'pcaa'; allowed: pca, zca",
    ),
    # grids
    (
        "grid empty dict",
        lambda: Grid.from_spec({}, 8),
        ValueError,
        "grid must name at least one axis, got an empty dict",
    ),
    ("grid empty axis", lambda: Grid.from_spec({"seed": []}, 8), ValueError, "grid axis 'seed' has no values"),
    (
        "grid duplicate values",
        lambda: Grid.from_spec({"seed": [0, 0]}, 8),
        ValueError,
        "grid axis 'seed' has duplicate values: [0, 0]",
    ),
    (
        "grid duplicate runs",
        lambda: Grid.from_spec([{"seed": 0}, {"seed": 0}], 8),
        ValueError,
        "grid runs 0 and 1 are duplicates",
    ),
    (
        "grid unknown axis",
        lambda: Grid.from_spec({"sed": [0]}, 8),
        ValueError,
        "unknown grid axis 'sed'; allowed: d, lr, margin, p, rate, seed, slope",
    ),
    (
        "grid negative seed",
        lambda: Grid.from_spec({"seed": [-1]}, 8),
        ValueError,
        "grid axis 'seed' must hold integers in [0, 2**31), got -1",
    ),
    (
        "grid rate below one unit",
        lambda: Grid.from_spec({"rate": [0.01]}, 8),
        ValueError,
        "rate 0.01 gives no hidden unit at d=8",
    ),
    ("grid p=0", lambda: Grid.from_spec({"p": [0.0, 0.5]}, 8), ValueError, "grid axis 'p' must lie in (0, 1], got 0.0"),
    (
        "grid string",
        lambda: Grid.from_spec("seed=0", 8),
        TypeError,
        "grid must be a dict of axis values or a list of run dicts, got str",
    ),
    # sweep (all refused before compiling)
    ("sweep config dict", lambda: sweep(config={"d": 8}), TypeError, "config must be an aejax.TrainConfig, got dict"),
    ("sweep mc_samples=1", lambda: sweep(mc_samples=1), ValueError, "mc_samples must be an integer, at least 2, got 1"),
    ("sweep chunk=0", lambda: sweep(chunk=0), ValueError, "chunk must be a positive integer (>= 1), got 0"),
    ("sweep seed=-1", lambda: sweep(seed=-1), ValueError, "seed must be a non-negative integer, got -1"),
    (
        "sweep devices=99",
        lambda: sweep(devices=99),
        ValueError,
        "devices must be between 1 and 4 (the devices JAX sees), got 99",
    ),
    (
        "sweep devices=True",
        lambda: sweep(devices=True),
        TypeError,
        "devices must be a device count, a list of jax.Device or None, got True",
    ),
    (
        "sweep devices=[]",
        lambda: sweep(devices=[]),
        ValueError,
        "devices as a list must be a non-empty list of jax.Device",
    ),
    (
        "sweep max_padding<0",
        lambda: sweep(max_padding=-0.5),
        ValueError,
        "max_padding must be finite and non-negative, got -0.5",
    ),
    ("sweep max_padding='a'", lambda: sweep(max_padding="a"), TypeError, "max_padding must be a number"),
    (
        "sweep memory_budget=0",
        lambda: sweep(memory_budget=0),
        ValueError,
        "memory_budget must be a positive integer (>= 1), got 0",
    ),
    ("sweep out=3", lambda: sweep(out=3), TypeError, "out must be a path (str or os.PathLike), got 3"),
    ("sweep resume='yes'", lambda: sweep(resume="yes"), TypeError, "resume must be True or False, got 'yes'"),
    # theory
    (
        "gaussian_limit r<0",
        lambda: aejax.theory.gaussian_limit(-1.0),
        ValueError,
        "r must be finite and positive, got -1.0",
    ),
    (
        "gaussian_limit activation",
        lambda: aejax.theory.gaussian_limit(1.0, "swish"),
        ValueError,
        "unknown activation 'swish'; allowed: helu, linear, relu, sign, tanh or a callable",
    ),
]


@pytest.mark.parametrize("call, error, fragment", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_raises_a_clear_error(call, error, fragment):
    """The exact exception type, and a message holding the argument's name and the bad value."""
    with pytest.raises(error, match=re.escape(fragment)):
        call()


def test_the_table_has_at_least_30_distinct_cases():
    assert len({case[0] for case in CASES}) == len(CASES) >= 30


def test_resume_with_a_different_config_names_the_field_and_both_values(tmp_path):
    """A sweep directory written with steps=10 refuses steps=20, naming config.steps and both values."""
    with RunStore(tmp_path, {"config": {"steps": 10}}):
        pass
    with pytest.raises(ValueError, match=re.escape("(differs in: config); config.steps: saved 10, now 20")):
        RunStore(tmp_path, {"config": {"steps": 20}}, resume=True)


def test_sweep_into_a_file_path_is_a_clear_os_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError, match="Not a directory"):
        sweep(out=tmp_path / "file")


CLI_CASES = [
    (["train", "--rate", "nan"], "--rate must be finite and positive, got nan"),
    (["train", "--d", "0"], "--d must be a positive integer (>= 1), got 0"),
    (["train", "--optimizer", "adamx"], "unknown optimizer 'adamx'; allowed: adagrad"),
    (["theory", "--rates", "1,-1"], "--rates must be finite and positive, got -1.0"),
    (["theory", "--ps", "0.5,2"], "--ps must lie in (0, 1], got 2.0"),
    (["sweep", "--rates", "nan", "--quiet"], "grid axis 'rate' must be finite and positive, got nan"),
    (["sweep", "--mc-samples", "1", "--quiet"], "mc_samples must be an integer, at least 2, got 1"),
    (["sweep", "--chunk", "0", "--quiet"], "chunk must be a positive integer (>= 1), got 0"),
    (["reproduce", "nope"], "unknown experiment 'nope'; allowed:"),
    (["bench", "nope"], "unknown benchmarks ['nope']; allowed: steady, end_to_end, fixed_costs, sweep, risk, scaling"),
]


@pytest.mark.parametrize("argv, fragment", CLI_CASES, ids=[" ".join(argv) for argv, _ in CLI_CASES])
def test_cli_prints_one_line_and_exits_2(tmp_path, monkeypatch, capsys, argv, fragment):
    """Every subcommand: status 2, one line ``aejax: error: ...`` on stderr, no traceback."""
    monkeypatch.chdir(tmp_path)  # the sweep's default out directory lands here
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("aejax: error: ") and fragment in err, err


def test_cli_sweep_into_a_file_exits_2(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    argv = ["sweep", "--d", "8", "--steps", "2", "--quiet", "--out", str(tmp_path / "file")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Not a directory" in err and "file" in err, err
