"""The sweep as a pipeline (issue 23 item 1, issue 25 overlap): a plan made without compiling, one
options object shared with the CLI's TOML [sweep] table, results.nc written once, the theory column
of each run's source, and bucket k running before later buckets are compiled."""

import dataclasses
import inspect
import json
import math

import jax
import numpy as np
import pytest
from jax._src import monitoring

import aejax
from aejax import _sweep_execute, _sweep_runners, _sweep_theory, results
from aejax._sweep_plan import plan
from aejax.cli import _sweep_options, build_parser, main
from aejax.sweep_options import SweepOptions

CONFIG = aejax.TrainConfig(d=8, n=8, steps=8, batch=8)
KW = {"mc_samples": 64, "progress": False, "devices": 1}


def test_plan_compiles_nothing():
    """Planning a two-bucket sweep at two d compiles no XLA program, and gives each bucket its width."""
    compiled = []

    def listen(event, duration_secs, **kwargs):
        compiled.append(event)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        jax.jit(lambda x: x + 1).lower(1.0).compile()  # the listener hears a compilation
        assert any("backend_compile" in event for event in compiled)
        compiled.clear()
        grid = {"seed": [0, 1, 2], "rate": [0.5, 1.0], "d": [8, 16]}
        p = plan(aejax.TrainConfig(d=16, n=16, steps=8, batch=8), grid, SweepOptions(devices=1, chunk=2))
    finally:
        monitoring.unregister_event_duration_listener(listen)
    assert not [event for event in compiled if "compile" in event]
    assert [(b.config.d, b.config.n) for b in p.buckets] == [(16, 16), (16, 8), (8, 8), (8, 4)]
    assert [len(b.members) for b in p.buckets] == [3, 3, 3, 3]
    assert all(b.width == 3 for b in p.buckets)  # default_runs_per_device(3): the whole bucket
    # grid order: seed, rate, d; the first bucket is rate 1 at d = 16
    assert [ids.tolist() for ids in p.buckets[0].chunks] == [[3, 7], [11]]
    assert sum(len(b.pending) for b in p.without({3, 7}).buckets) == 10


def test_sweep_keywords_and_toml_sweep_table_are_the_options_fields(tmp_path):
    """sweep()'s keyword options, sweep_shard's and the TOML [sweep] keys are SweepOptions' fields; a TOML
    table with every key gives those values, and each flag wins over its key."""
    names = SweepOptions.names()
    keyword = [p.name for p in inspect.signature(aejax.sweep).parameters.values() if p.kind is p.KEYWORD_ONLY]
    assert keyword == list(names)
    table = {
        "out": str(tmp_path / "a"),
        "resume": True,
        "devices": 1,
        "chunk": 4,
        "runs_per_device": 2,
        "seed": 7,
        "mc_samples": 128,
        "max_padding": 0.5,
        "memory_budget": 2**30,
        "progress": True,
        "checkpoint_every": 10,
        "checkpoint_seconds": 30.0,
    }
    assert sorted(table) == sorted(names)
    args = build_parser().parse_args(["sweep", "--chunk", "8", "--out", str(tmp_path / "b"), "--quiet"])
    options = SweepOptions(**_sweep_options(args, table))
    expected = {**table, "chunk": 8, "out": tmp_path / "b", "progress": False}
    assert dataclasses.asdict(options) == expected
    toml = tmp_path / "bad.toml"
    toml.write_text("[sweep]\nchunks = 2\n")
    with pytest.raises(aejax.InputError, match="allowed: " + ", ".join(names)):
        from aejax.cli import _load_toml

        _load_toml(toml)


def test_options_refuse_bad_values_by_name():
    with pytest.raises(aejax.InputError, match="chunk"):
        SweepOptions(chunk=0)
    with pytest.raises(aejax.InputError, match="mc_samples"):
        SweepOptions(mc_samples=1)
    with pytest.raises(aejax.InputError, match="need out="):
        SweepOptions(checkpoint_every=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        SweepOptions().chunk = 3  # type: ignore[misc]


@pytest.mark.integration
def test_cli_with_data_writes_results_once(tmp_path, monkeypatch):
    """``aejax sweep --data``: results.nc is written once, with the data's description in it (it was
    written by the sweep, then again by the CLI)."""
    rows = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
    np.save(tmp_path / "rows.npy", rows)
    writes = []
    real = results.atomic_write

    def counting(path, write):
        writes.append(path.name)
        return real(path, write)

    monkeypatch.setattr(results, "atomic_write", counting)
    out = tmp_path / "run"
    argv = ["sweep", "--data", str(tmp_path / "rows.npy"), "--rates", "1", "--seeds", "0", "--steps", "8"]
    assert main([*argv, "--batch", "8", "--mc-samples", "64", "--out", str(out), "--quiet"]) == 0
    assert writes.count("results.nc") == 1
    assert "preprocessing" in aejax.load_results(out).attrs


def _best_orthogonal_sr(p: float, r: float) -> float:
    """docs/theory.md §6 written out: 1 − r max_a (E|u|)² with u = √a x + √(1 − a) z, x sparse
    Rademacher(p), on a dense grid of a (float64, no aejax)."""
    a = np.linspace(0.0, 1.0, 200001)
    s = np.sqrt(1 - a)
    m = np.sqrt(a / p)
    erf = np.vectorize(math.erf)
    with np.errstate(divide="ignore", invalid="ignore"):
        shifted = np.where(
            s > 0, s * np.sqrt(2 / np.pi) * np.exp(-(m**2) / (2 * s**2)) + m * erf(m / (s * np.sqrt(2))), m
        )
    abs_mean = (1 - p) * s * np.sqrt(2 / np.pi) + p * shifted
    return 1 - r * float(np.max(abs_mean**2))


def test_theory_column_is_the_sources_theory():
    """Sparse Rademacher runs get the best orthogonal encoder's risk (not the Gaussian limit); a Gaussian
    source gets 1 − 2r/π; an activation no formula covers on a sparse source gets NaN, and the
    attributes say which theory it is."""
    one_bucket = {**KW, "max_padding": 3.0}  # every rate padded into one program: the theory is per run
    config = dataclasses.replace(CONFIG, risk_eval="none")  # no trace risk: smaller programs to compile
    sr = aejax.sweep(dataclasses.replace(config, source="sr"), {"p": [0.5, 0.9], "rate": [0.5, 1.0]}, **one_bucket)
    for p in (0.5, 0.9):
        for r in (0.5, 1.0):
            assert float(sr["theory"].sel(p=p, rate=r)) == pytest.approx(_best_orthogonal_sr(p, r), abs=2e-6)
    assert float(sr["theory"].sel(p=0.9, rate=0.5)) < 1 - 2 * 0.5 / np.pi - 0.1  # far from the Gaussian limit
    assert sr.attrs["theory_kind"] == "sparse_best_orthogonal" and "best_partial_identity" in sr["theory"].long_name
    gauss = aejax.sweep(config, {"rate": [0.5, 2.0]}, **one_bucket)
    assert json.loads(sr.attrs["buckets"]) == {"4": 8, "8": 8} and json.loads(gauss.attrs["buckets"]) == {
        "4": 16,
        "16": 16,
    }
    assert gauss["theory"].values.tolist() == pytest.approx([1 - 1 / np.pi, (np.pi / 2 - 1) / (2 + np.pi / 2 - 1)])
    # no formula: the column's own function (the two sweeps above check that the sweep writes what it gives)
    relu, kind = _sweep_theory.theory_column(dataclasses.replace(config, source="bg", activation="relu"), [{}], [1.0])
    assert np.isnan(relu).all() and kind == "none"


@pytest.mark.slow  # two buckets compiled, 5 s: the slow tier
def test_bucket_runs_as_soon_as_its_program_is_ready():
    """Issue 25: the first bucket trains before the second bucket's program is asked for (it was: every
    bucket's program first, then every chunk), and the bits are those of one bucket alone."""
    events = []
    fit, run = _sweep_execute.plan_program, _sweep_runners.run_chunk

    def logged_fit(config, *args):
        events.append(("fit", config.n))
        return fit(config, *args)

    def logged_run(program, *args):
        events.append(("run", program.config.n))
        return run(program, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_sweep_execute, "plan_program", logged_fit)
        patch.setattr(_sweep_runners, "run_chunk", logged_run)
        both = aejax.sweep(CONFIG, {"seed": [0, 1], "rate": [0.5, 1.0]}, **KW)
    assert events == [("fit", 8), ("run", 8), ("fit", 4), ("run", 4)]
    alone = aejax.sweep(CONFIG, {"seed": [0, 1], "rate": [0.5]}, **KW)
    assert both["risk"].sel(rate=[0.5]).values.tobytes() == alone["risk"].values.tobytes()
