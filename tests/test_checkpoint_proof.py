"""Checkpoints restore only what they prove (issue 24, item 1): a content hash of the arrays and the
tag, block and step stored inside each checkpoint are verified before it is used; a damaged, renamed
or foreign checkpoint is reported by name and its blocks recomputed, so the results stay bit-identical
to an uninterrupted run. Also: stale checkpoints are removed or explained."""

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import aejax
from aejax.checkpoint import ChunkCheckpoints

CONFIG = aejax.TrainConfig(d=16, n=16, steps=240, batch=16, eval_every=20)  # 12 trace blocks
GRID = {"seed": [0, 1], "rate": [0.5, 1.0]}
# a save every 2 blocks; max_padding=1 puts both rates in one bucket (one set of segment programs to
# compile, not two), and chunk=2 still cuts it into two chunks of two runs
SWEEP = {"mc_samples": 256, "progress": False, "devices": 1, "checkpoint_every": 40, "max_padding": 1.0, "chunk": 2}
COMPARED = ("risk", "risk_se", "exact_risk", "identity_likeness", "loss_trace", "risk_trace")
STATE = {"w": np.arange(6.0, dtype=np.float32).reshape(2, 3), "t": np.array([1, 2], np.int32)}
LIKE = {"w": np.zeros((2, 3), np.float32), "t": np.zeros(2, np.int32)}


class Stop(Exception):
    """Raised by a save to stop a sweep as a kill would, after a checkpoint was written."""


def interrupted_sweep(out, monkeypatch, saves=2):
    """A sweep stopped right after its ``saves``-th checkpoint; returns that checkpoint's path."""
    original = ChunkCheckpoints.save
    count = []

    def save_then_stop(self, next_block, state):
        original(self, next_block, state)
        count.append(next_block)
        if len(count) == saves:
            raise Stop

    monkeypatch.setattr(ChunkCheckpoints, "save", save_then_stop)
    with pytest.raises(Stop):
        aejax.sweep(CONFIG, GRID, out=out, **SWEEP)
    monkeypatch.setattr(ChunkCheckpoints, "save", original)
    (saved,) = [p for p in (out / "checkpoints").rglob("block-*") if p.parent.parent.name == "checkpoints"]
    return saved


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return aejax.sweep(CONFIG, GRID, out=tmp_path_factory.mktemp("ref"), **SWEEP)


def rerun(out):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = aejax.sweep(CONFIG, GRID, out=out, **SWEEP)
    return ds, [str(w.message) for w in caught]


def assert_identical(ds, expected):
    for name in COMPARED:
        np.testing.assert_array_equal(ds[name].values, expected[name].values, err_msg=name)


def largest_file(path: Path) -> Path:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return max(files, key=lambda p: p.stat().st_size)


def flip_bits(path: Path, offsets) -> None:
    data = bytearray(path.read_bytes())
    for offset in offsets:
        data[offset % len(data)] ^= 0x10
    path.write_bytes(bytes(data))


def test_resume_from_an_intact_checkpoint_is_bit_identical(tmp_path, monkeypatch, uninterrupted):
    interrupted_sweep(tmp_path, monkeypatch)
    ds, messages = rerun(tmp_path)
    assert not [m for m in messages if "checkpoint" in m], messages
    assert_identical(ds, uninterrupted)


@pytest.mark.parametrize("where", [0.5, pytest.param(0.75, marks=pytest.mark.slow)])
def test_flipped_bits_in_a_checkpoint_are_detected_and_recomputed(tmp_path, monkeypatch, uninterrupted, where):
    """Bits flipped in the data of a saved checkpoint (its largest file): reported by name, not used."""
    saved = interrupted_sweep(tmp_path, monkeypatch)
    target = largest_file(saved)
    size = target.stat().st_size
    flip_bits(target, [int(size * where) + k for k in range(0, 64, 8)])
    ds, messages = rerun(tmp_path)
    assert any(saved.name in m and "recomputed" in m for m in messages), messages
    assert_identical(ds, uninterrupted)


@pytest.mark.parametrize("copy", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_checkpoint_renamed_or_copied_to_another_block_is_detected(tmp_path, monkeypatch, uninterrupted, copy):
    """The checkpoint before block 4 renamed (or copied, with the original then lost) to block 2: its
    block is read from inside it, found not to be 2, reported, and the chunk recomputed."""
    saved = interrupted_sweep(tmp_path, monkeypatch)
    assert "block-000000004" in saved.name
    moved = saved.with_name(saved.name.replace("block-000000004", "block-000000002"))
    (shutil.copytree if saved.is_dir() else shutil.copy)(saved, moved) if copy else saved.rename(moved)
    if copy:
        shutil.rmtree(saved) if saved.is_dir() else saved.unlink()
    ds, messages = rerun(tmp_path)
    assert any(moved.name in m and "block" in m for m in messages), messages
    assert_identical(ds, uninterrupted)


def test_store_verifies_hash_tag_block_and_step(tmp_path):
    """Each part of the proof is checked: content (a consistent file with other numbers), the tag (a
    checkpoint copied from another chunk), the block (renamed) and the step (other trace steps)."""
    store = ChunkCheckpoints(tmp_path, "a", steps=[10, 20, 30])
    store.save(2, STATE)
    restored = store.restore(LIKE)
    assert restored is not None
    block, state = restored
    assert block == 2 and np.array_equal(state["w"], STATE["w"]) and np.array_equal(state["t"], STATE["t"])

    file = store.path / "block-000000002.npz"
    with np.load(file) as z:
        content = {k: z[k] for k in z.files}
    content["leaf_00001"] = content["leaf_00001"] + 1  # same proof, other numbers: the zip itself is valid
    with open(file, "wb") as f:
        np.savez(f, **content)
    with pytest.warns(UserWarning, match=r"block-000000002.npz: its content does not match its SHA-256"):
        assert store.restore(LIKE) is None
    assert not file.exists()

    store.save(2, STATE)
    other = ChunkCheckpoints(tmp_path, "b", steps=[10, 20, 30])
    other.path.mkdir()
    shutil.copy(file, other.path / file.name)
    with pytest.warns(UserWarning, match=r"holds tag 'a', expected 'b'"):
        assert other.restore(LIKE) is None

    file.rename(store.path / "block-000000001.npz")
    with pytest.warns(UserWarning, match=r"block-000000001.npz: it holds block 2, expected 1"):
        assert store.restore(LIKE) is None

    store.save(2, STATE)
    longer = ChunkCheckpoints(tmp_path, "a", steps=[10, 25, 30])
    with pytest.warns(UserWarning, match=r"holds step 20, expected 25"):
        assert longer.restore(LIKE) is None


def test_checkpoint_of_a_stored_chunk_is_removed_by_the_next_run(tmp_path, monkeypatch, uninterrupted):
    """A kill between the chunk's write and the removal of its checkpoint left the checkpoint; the
    next run of the sweep removes it (and uses the stored chunk)."""
    clear = ChunkCheckpoints.clear

    def stop_before_clear(self):
        raise Stop

    monkeypatch.setattr(ChunkCheckpoints, "clear", stop_before_clear)
    with pytest.raises(Stop):
        aejax.sweep(CONFIG, GRID, out=tmp_path, **SWEEP)
    monkeypatch.setattr(ChunkCheckpoints, "clear", clear)
    assert list((tmp_path / "checkpoints").iterdir())
    ds, _ = rerun(tmp_path)
    assert ds.attrs["reused_runs"] == 2  # the first chunk (two runs)
    assert not list((tmp_path / "checkpoints").iterdir())
    assert_identical(ds, uninterrupted)


def test_changed_checkpoint_interval_is_explained_and_the_old_checkpoint_kept_until_done(
    tmp_path, monkeypatch, uninterrupted
):
    """A rerun with another checkpoint_every cannot continue the old checkpoint bit-identically: a
    warning names it, the settings that differ and how to continue it; once the runs are finished the
    stale checkpoint is gone."""
    saved = interrupted_sweep(tmp_path, monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aejax.sweep(CONFIG, GRID, out=tmp_path, **{**SWEEP, "checkpoint_every": 80})
    messages = [str(w.message) for w in caught]
    (message,) = [m for m in messages if saved.parent.name in m]
    assert "checkpoint_every=40" in message and "checkpoint_every=80" in message and "rerun" in message
    assert not list((tmp_path / "checkpoints").iterdir())


def test_checkpoint_of_another_tag_without_runs_to_do_is_removed(tmp_path, monkeypatch):
    """A checkpoint folder that is not this sweep's (another tag, unreadable) does not stay forever."""
    interrupted_sweep(tmp_path, monkeypatch)
    stray = tmp_path / "checkpoints" / "chunk-0000000-0123456789abcdef"
    stray.mkdir()
    (stray / "block-000000002.npz").write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="chunk-0000000-0123456789abcdef: it holds no readable proof"):
        aejax.sweep(CONFIG, GRID, out=tmp_path, **SWEEP)
    assert not list((tmp_path / "checkpoints").iterdir())
