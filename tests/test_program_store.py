"""The program store (issue 25, warm start): exported block programs kept beside the persistent
compilation cache, loaded by a new process instead of tracing and lowering, and ignored without a
word where an entry is missing, for another key, torn or corrupted."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import aejax
from aejax import program_store, programs
from aejax.config import TrainConfig
from aejax.programs import Program

pytest.importorskip("flatbuffers", reason="jax.export serialization needs flatbuffers (a dependency of aejax)")

CONFIG = TrainConfig(d=8, n=4, steps=6, batch=8)


def _exported_affine():
    return jax.export.export(jax.jit(lambda x: 2 * x + 1))(jax.ShapeDtypeStruct((3,), np.float32))


def _entry(key: str, directory) -> bytes:
    return program_store._path(key, str(directory)).read_bytes()


def test_round_trip_and_every_bad_entry_is_ignored(tmp_path):
    x = np.linspace(0, 1, 3, dtype=np.float32)
    assert program_store.save("key-a", _exported_affine(), str(tmp_path))
    loaded = program_store.load("key-a", str(tmp_path))
    assert np.array_equal(np.asarray(loaded.call(x)), 2 * x + 1)
    good = _entry("key-a", tmp_path)
    magic_len = len(program_store.MAGIC)
    header, payload = good[magic_len:].split(b"\n", 1)
    assert json.loads(header)["sha256"] == hashlib.sha256(payload).hexdigest()  # independent check
    bad = {
        "another key's entry": good,  # written under key-a, found at key-b's place
        "flipped byte": good[:-5] + bytes([good[-5] ^ 1]) + good[-4:],
        "torn": good[: len(good) // 2],
        "not an entry": b"hello",
        "empty": b"",
    }
    for name, blob in bad.items():
        program_store._path("key-b", str(tmp_path)).write_bytes(blob)
        assert program_store.load("key-b", str(tmp_path)) is None, name
    assert program_store.load("never-written", str(tmp_path)) is None
    assert program_store.load(None, str(tmp_path)) is None


def test_no_serialization_means_nothing_written(tmp_path, monkeypatch):
    exported = _exported_affine()
    monkeypatch.setattr(type(exported), "serialize", lambda self: (_ for _ in ()).throw(ImportError("flatbuffers")))
    assert not program_store.save("key", exported, str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def _key(config=CONFIG, mc=64, names=("lr",), width=2, platform="cpu", directory: str | None = "somewhere"):
    return program_store.program_key(config, mc, names, width, platform, directory=directory)


def test_key_covers_what_the_program_depends_on():
    base = _key()
    assert base is not None and _key() == base
    assert json.loads(base)["code"] == program_store.code_digest()
    others = [
        _key(mc=32),
        _key(names=("lr", "wd")),
        _key(width=3),
        _key(platform="cuda"),
        _key(dataclasses.replace(CONFIG, n=8)),
        _key(dataclasses.replace(CONFIG, activation="tanh")),
    ]
    assert len({base, *others}) == 1 + len(others)


def test_no_key_without_store_or_for_a_users_own_code():
    assert _key(directory=None) is None
    users = [
        dataclasses.replace(CONFIG, optimizer=aejax.named(optax.sgd(1.0), "my-sgd")),  # a name: a promise only
        dataclasses.replace(CONFIG, activation=aejax.named(lambda u: jnp.tanh(u), "my-tanh")),
        dataclasses.replace(CONFIG, activation=textwrap.dedent),  # a function outside aejax/jax/optax
    ]
    for config in users:
        assert _key(config) is None
    assert _key(dataclasses.replace(CONFIG, activation=jax.nn.gelu)) is not None


def _run(program: Program, device) -> list[np.ndarray]:
    keys = jax.random.key_data(jax.random.split(jax.random.key(3), program.runs_per_device))
    hparams = {"lr": np.full(program.runs_per_device, 0.05, np.float32)}
    compiled, _ = program.compile(device)
    return [np.asarray(a) for a in jax.tree_util.tree_leaves(jax.device_get(compiled(keys, hparams, CONFIG.data)))]


def test_a_stored_program_is_compiled_without_tracing_and_gives_the_same_bits(tmp_path, monkeypatch):
    device = jax.devices()[0]
    aejax.enable_compilation_cache(tmp_path, min_compile_seconds=0)
    traced = []
    make_block = programs.make_block
    monkeypatch.setattr(programs, "make_block", lambda *a: traced.append(a) or make_block(*a))
    first = _run(Program(CONFIG, 64, ("lr",), 2), device)
    assert len(traced) == 1 and len(list(tmp_path.glob(program_store.PREFIX + "*"))) == 1
    again = _run(Program(CONFIG, 64, ("lr",), 2), device)
    assert len(traced) == 1  # loaded from the store: not traced
    entry = next(tmp_path.glob(program_store.PREFIX + "*"))
    entry.write_bytes(entry.read_bytes()[:-3] + b"xyz")  # corrupted: traced again, same bits
    third = _run(Program(CONFIG, 64, ("lr",), 2), device)
    assert len(traced) == 2
    for a, b, c in zip(first, again, third, strict=True):
        assert a.tobytes() == b.tobytes() == c.tobytes()


def _tanh_with_callback(u):
    jax.debug.callback(lambda *_: None, u)  # a host callback: jax.export refuses to serialize it
    return jnp.tanh(u)


@pytest.mark.slow  # a callback program compiled twice, 5 s: the slow tier
def test_a_program_jax_export_refuses_is_compiled_directly(tmp_path):
    config = dataclasses.replace(CONFIG, activation=aejax.named(_tanh_with_callback, "tanh-cb"))
    block = programs.make_block(config, 64, "cpu")
    shapes = (*programs.block_shapes(2, ("lr",)), config.data)
    with pytest.raises(Exception):  # noqa: B017 (whatever jax.export raises for a callback)
        jax.export.export(jax.jit(block))(*shapes)
    program = Program(config, 64, ("lr",), 2)
    assert program.exported("cpu", shapes) is None
    plain = jax.jit(block).lower(*shapes).compile()
    keys = jax.random.key_data(jax.random.split(jax.random.key(3), 2))
    hparams = {"lr": np.full(2, 0.05, np.float32)}
    compiled, _ = program.compile(jax.devices()[0])
    for a, b in zip(
        jax.tree_util.tree_leaves(compiled(keys, hparams, config.data)),
        jax.tree_util.tree_leaves(plain(keys, hparams, config.data)),
        strict=True,
    ):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


WARM_SCRIPT = """
import sys, numpy as np, aejax
from aejax import programs
if sys.argv[1] != "-":
    aejax.enable_compilation_cache(sys.argv[1], min_compile_seconds=0)
traced = []
make_block = programs.make_block
programs.make_block = lambda *a: traced.append(a) or make_block(*a)
ds = aejax.sweep(aejax.TrainConfig(d=8, n=8, steps=6, batch=8), {"rate": [0.5, 1.0], "seed": [0, 1]}, progress=False)
print(len(traced), ds["risk"].values.tobytes().hex(), ds["risk_trace"].values.tobytes().hex())
"""


def test_new_process_loads_the_programs_and_gives_the_bits_of_a_cold_run(tmp_path):
    def run(cache: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", WARM_SCRIPT, cache], capture_output=True, text=True, check=True, timeout=600
        )
        return done.stdout.split()

    uncached = run("-")  # no persistent cache, no store: every program traced
    cold = run(str(tmp_path))
    warm = run(str(tmp_path))
    assert uncached[0] == cold[0] == "2" and warm[0] == "0"  # two buckets, traced once, then loaded
    assert uncached[1:] == cold[1:] == warm[1:]
