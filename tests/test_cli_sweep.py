"""The ``aejax sweep`` command, called in-process at tiny sizes."""

import numpy as np
import pytest

import aejax
from aejax.cli import main

FLAGS = ["--d", "16", "--steps", "20", "--batch", "32", "--mc-samples", "1024", "--devices", "4", "--quiet"]
TOML = """
[train]
d = 16
steps = 20
batch = 32

[grid]
seed = [0, 1]
rate = [0.875, 1.0]

[sweep]
mc_samples = 1024
devices = 4
"""


def exit_status(argv):
    """``main``'s status, counting an argparse exit as the status it exits with."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.integration  # the command line end to end (a sweep, its figure and its table)
def test_sweep_command_writes_results_figure_and_table(tmp_path, capsys):
    """Flags set the grid and config; the printed table has one row per rate with its mean risk."""
    out = tmp_path / "out"
    assert main(["sweep", *FLAGS, "--rates", "0.875,1", "--seeds", "0,1", "--out", str(out)]) == 0
    ds = aejax.load_results(out)
    assert ds["risk"].dims == ("seed", "rate", "lr")
    assert list(ds["rate"].values) == [0.875, 1.0] and list(ds["seed"].values) == [0, 1]
    assert (out / "risk_vs_rate.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = capsys.readouterr().out
    for column in ("rate", "risk", "theory", "gap", "ok runs"):
        assert column in text
    for rate in (0.875, 1.0):
        assert f"{float(ds['risk'].sel(rate=rate).mean()):.4f}" in text


@pytest.mark.integration
def test_sweep_command_reads_a_toml_config_and_flags_override_it(tmp_path):
    """The TOML file's tables give the same sweep as aejax.sweep called directly with those values;
    --seeds overrides the file's seeds."""
    config = tmp_path / "sweep.toml"
    config.write_text(TOML)
    out = tmp_path / "out"
    assert main(["sweep", "--config", str(config), "--seeds", "1", "--out", str(out), "--quiet"]) == 0
    ds = aejax.load_results(out)
    expected = aejax.sweep(
        aejax.TrainConfig(d=16, n=16, steps=20, batch=32, schedule="cosine"),
        {"seed": [1], "rate": [0.875, 1.0], "lr": [0.01]},
        mc_samples=1024,
        devices=4,
        progress=False,
    )
    for name in ("risk", "risk_se", "exact_risk", "loss_trace", "risk_trace"):
        np.testing.assert_array_equal(ds[name].values, expected[name].values, err_msg=name)


@pytest.mark.parametrize(
    "argv, names",
    [
        (["--rates", "a,b"], "--rates"),
        (["--seeds", "0.5"], "--seeds"),
        (["--bogus", "1"], "--bogus"),
        (["--d", "-4"], "d must be a positive integer"),
        (["--devices", "99"], "devices must be between 1 and 4"),
        (["--rates", "0.01"], "rate 0.01 gives no hidden unit"),
        (["--config", "missing.toml"], "--config 'missing.toml' cannot be read"),
        (["--resume"], "holds no sweep to resume"),
    ],
)
def test_bad_flag_exits_2_with_a_one_line_error(tmp_path, capsys, argv, names):
    assert exit_status(["sweep", *FLAGS, "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("aejax: error: ") and names in err, err


def test_toml_with_an_unknown_table_exits_2(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text("[trian]\nd = 16\n")
    assert exit_status(["sweep", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    assert "unknown tables ['trian']; allowed: train, grid, sweep" in capsys.readouterr().err
