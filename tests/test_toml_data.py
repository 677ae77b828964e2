"""The TOML ``[data]`` table is type-checked like the other tables, and the learning-rate exponent is bounded
so that the rate applied at every d is a finite, non-zero float32 (issue 24, defects 9 and 11): each bad
value exits with status 2 and one line naming the key or flag, the value and what is allowed."""

import numpy as np
import pytest

from aejax import _validate
from aejax.cli import main
from aejax.config import TrainConfig
from aejax.data import dataset_sources
from aejax.hparams import MAX_LR_POWER, check_learning_rate

FLOAT32_MAX = float(np.finfo(np.float32).max)


@pytest.fixture
def data_file(tmp_path):
    np.save(tmp_path / "rows.npy", np.random.default_rng(0).normal(size=(20, 4)))
    return tmp_path / "rows.npy"


def run_toml(tmp_path, capsys, table):
    toml = tmp_path / "run.toml"
    toml.write_text("[data]\n" + "".join(f"{key} = {value}\n" for key, value in table.items()))
    out = str(tmp_path / "out")
    status = main(
        ["sweep", "--config", str(toml), "--steps", "1", "--seeds", "0", "--rates", "1", "--out", out, "--quiet"]
    )
    return status, capsys.readouterr().err


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("split_seed", "-1", "--config [data] split_seed must be a non-negative integer, got -1"),
        ("split_seed", "1.5", "--config [data] split_seed must be a non-negative integer, got 1.5 of type float"),
        ("split_seed", "3000000000", "--config [data] split_seed must be below 2**31, got 3000000000"),
        ("split_seed", "true", "--config [data] split_seed must be a non-negative integer, got True"),
        ("file", "5", "--config [data] file must be a non-empty string, got 5"),
        ("file", '""', "--config [data] file must be a non-empty string, got ''"),
        ("test_fraction", '"0.2"', "--config [data] test_fraction must be a number in (0, 1), got '0.2'"),
        ("test_fraction", "1", "--config [data] test_fraction must be a number in (0, 1), got 1"),
        ("test_fraction", "nan", "--config [data] test_fraction must be a number in (0, 1), got nan"),
        ("drop_constant", '"no"', "--config [data] drop_constant must be True or False, got 'no' of type str"),
        ("drop_constant", "1", "--config [data] drop_constant must be True or False, got 1 of type int"),
        ("whiten", '"pcaa"', "unknown --config [data] whiten 'pcaa'; allowed: none, pca, zca"),
        ("components", "0", "--config [data] components must be a positive integer (>= 1), got 0"),
        ("components", "2.5", "--config [data] components must be a positive integer, got 2.5 of type float"),
        ("name", "3", "--config [data] name must be a non-empty string, got 3"),
    ],
)
def test_toml_data_values_are_type_checked(tmp_path, capsys, data_file, key, value, message):
    table = {"file": f'"{data_file.name}"', key: value}
    status, err = run_toml(tmp_path, capsys, table)
    assert status == 2 and err.count("\n") == 1 and err.startswith("aejax: error: ") and message in err, err


def test_toml_data_valid_table_is_used(tmp_path, capsys, data_file, monkeypatch):
    """The checked table still reaches the sweep: a fraction 0.5 of 20 rows holds out 10 (split seed 3)."""
    import aejax.sweeping

    seen = {}

    def run_sweep(config, grid, options, shard=None, attrs=None):  # stands in for training: records its config
        seen["config"] = config
        raise _validate.InputError("stopped before training")

    monkeypatch.setattr(aejax.sweeping, "run_sweep", run_sweep)
    table = {"file": f'"{data_file.name}"', "test_fraction": "0.5", "split_seed": "3", "drop_constant": "false"}
    status, err = run_toml(tmp_path, capsys, table)
    assert status == 2 and "stopped before training" in err, err
    rows = np.load(data_file)
    order = np.random.default_rng(3).permutation(20)  # data.split's shuffle, written out
    config = seen["config"]
    assert config.source.data.shape == config.test_source.data.shape == (10, 4)
    test_rows = rows[order[:10]]
    centred = (test_rows - rows[order[10:]].mean(0)) / np.sqrt(np.mean(np.var(rows[order[10:]], axis=0)))
    assert np.allclose(np.asarray(config.test_source.data), centred, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"seed": -1}, _validate.InputError, "seed must be a non-negative integer, got -1"),
        ({"seed": 1.5}, _validate.InputTypeError, "seed must be a non-negative integer, got 1.5"),
        ({"test_fraction": "0.2"}, _validate.InputError, "test_fraction must be in (0, 1), a number, got '0.2'"),
        ({"drop_constant": "no"}, _validate.InputTypeError, "drop_constant must be True or False, got 'no'"),
    ],
)
def test_dataset_sources_checks_the_same_values(data_file, kwargs, error, message):
    with pytest.raises(error) as err:
        dataset_sources(data_file, **kwargs)
    assert message in str(err.value)


# -------------------------------------------------------------------------------------------- lr-power

SWEEP = ["sweep", "--steps", "1", "--seeds", "0", "--rates", "1", "--quiet"]


@pytest.mark.parametrize("power", ["1000", "100", "4.5"])
def test_lr_power_above_its_bound_exits_2_with_one_line(tmp_path, capsys, power):
    assert main([*SWEEP, "--d", "16,32", "--lr-power", power, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--lr-power must lie in [0, 4] " in err and f"got {float(power)}" in err, err


def test_learning_rate_must_be_a_finite_float32_at_every_d_of_the_grid(tmp_path, capsys):
    """lr·(d_ref/d)^p at d = 16 is 1e36·8^4 ≈ 4.1e39 > float32's largest (an inf in the step): refused naming
    d = 16; at d = 128 alone it is 1e36, finite, and passes this check."""
    lr = 1e36
    assert lr * (128 / 16) ** 4 > FLOAT32_MAX > lr
    assert main([*SWEEP, "--d", "16,128", "--lr-power", "4", "--lr", "1e36", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--lr-power 4 at d=16 (d_ref=128) makes the learning rate" in err, err
    check_learning_rate("--lr-power", lr, 128, 128, 4.0)
    with pytest.raises(_validate.InputError, match="outside float32's finite, non-zero range"):
        check_learning_rate("--lr-power", 0.01, 2**30, 1, 4.0)  # 0.01·2^-120 ≈ 7.5e-39: below float32's normals


def test_train_config_bounds_lr_power_and_its_factor():
    assert MAX_LR_POWER == 4.0
    with pytest.raises(_validate.InputError, match="lr_power must lie in"):
        TrainConfig(d=16, n=16, steps=1, lr_power=1000.0)
    # at the bound, the factor (d_ref/d)^4 stays a normal float32 for any d, d_ref < 2^31: 2^±124
    extreme = TrainConfig(d=1, n=1, steps=1, d_ref=2**31 - 1, lr_power=4.0).learning_rate(1.0)
    assert np.float32(extreme) == pytest.approx((2.0**31 - 1) ** 4, rel=1e-6) and np.isfinite(np.float32(extreme))
    assert np.float32(1 / extreme) >= np.finfo(np.float32).tiny
    assert TrainConfig(d=64, n=64, steps=1, lr_power=4.0).learning_rate(0.01) == pytest.approx(0.01 * 2.0**4)
