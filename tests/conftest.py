"""Test set-up, applied to every test file, new ones included.

- JAX on the CPU (``JAX_PLATFORMS=cpu`` unless set) with four fake devices, configured before anything
  else uses jax; a float64 fixture.
- JAX's persistent compilation cache (with aejax's program store in it) for the session and every
  process it starts: one directory shared by the xdist workers and the subprocesses they launch
  (through the environment), so a program that several tests, workers or fresh interpreters build
  is compiled once. It is kept between runs, so a second run compiles only what changed:
  ``~/.cache/aejax/test-compilation-cache`` (``$XDG_CACHE_HOME`` honoured; delete it at will), or
  ``JAX_COMPILATION_CACHE_DIR`` if set, or ``AEJAX_TEST_CACHE`` (a directory, or ``fresh`` for a new
  temporary one removed at the end, as CI uses). The key is the lowered program with its compile
  options and versions (the program store's also digests aejax's source), so a cache hit runs the
  executable a compile would have built. ``no_compilation_cache`` turns it off for a test that
  must see XLA compile; ``fresh_compilation_cache`` gives a test an empty one of its own.
- XLA's LLVM backend compiles at -O0 rather than its default -O2 (``AEJAX_TEST_XLA_BACKEND_OPT``: 0–3,
  or ``default`` for XLA's own level, which CI's integration and slow tiers use). The tests spend
  their time compiling small programs and run them briefly: from a cold cache on 2 cores the default
  tier took 2 min 30 s (4.5 CPU min) at -O0 against 3 min 0 s (5.7 CPU min) at -O1 on jaxlib 0.10,
  and 3 min 9 s against 3 min 33 s on jaxlib 0.12 (benchmarks/bench_backend_opt.py measures single
  programs: -O0 code runs several times slower). A program's float32 rounding may differ in the last
  bits from the -O2 build (the golden file is compared at 1e-5), while every property a test checks
  (bits equal across devices, chunks, resumes; accuracy against theory) holds at any level.
- On jaxlib 0.10, XLA:CPU's legacy (non-MLIR) fusion emitters (``--xla_cpu_use_fusion_emitters=false``;
  ``AEJAX_TEST_XLA_FUSION_EMITTERS=default`` keeps XLA's own): a tiny program compiles in 20 ms instead of
  35 ms, and the cold default tier took 6.5 CPU minutes instead of 8.6 (benchmarks/bench_backend_opt.py
  measures both).
  The same last-bit caveat applies. jaxlib 0.12 has only the new emitters (the flag is unknown there, and
  XLA aborts on an unknown flag), so other versions are left alone.
- One OpenBLAS thread per process, and the longest files collected first (``LONGEST_FILES``), so that
  xdist's ``--dist loadfile`` does not leave one worker running a long file alone at the end.
- Hypothesis profiles: ``default`` is derandomized (the same examples on every run, every machine)
  with no example database and no timing-based deadline or health check, so a loaded machine
  cannot fail a test; ``random`` draws new examples each run (nightly-style exploration). Pick it
  with ``--hypothesis-profile random`` or ``AEJAX_HYPOTHESIS_PROFILE=random``.
- Tiers (markers registered in pyproject.toml): the default run is the fast tier,
  ``-m 'not slow and not integration'``; ``-m integration`` runs subprocess and command-line
  end-to-end tests, reproductions, fuzzing and kill/resume; ``-m slow`` the long accuracy checks.
  A test whose own code starts a process (it uses ``subprocess.`` or ``sys.executable``) is marked
  ``integration`` here if it carries neither marker.
"""

import os

# One OpenBLAS thread per process, set before NumPy loads OpenBLAS: the two xdist workers already
# fill the cores, and idle OpenBLAS threads spin (test_theory_sparse: 12.1 -> 8.7 CPU s).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import atexit
import inspect
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, settings

TIERS = ("slow", "integration")
BACKEND_OPT_ENV = "AEJAX_TEST_XLA_BACKEND_OPT"
# ``jax.jit(..., compiler_options=COMPUTE_BOUND)``: XLA's default -O2 for the few test programs that run
# longer than they compile (-O0 code runs several times slower: relu GD at d = 64 took 5.8 s at -O0, 2.8 s so)
COMPUTE_BOUND = {"xla_backend_optimization_level": 2}


def _backend_optimization_level() -> None:
    """XLA's LLVM backend at ``AEJAX_TEST_XLA_BACKEND_OPT`` (default 0, LLVM's -O0; ``default`` keeps
    XLA's own level, 2) for this process and those it starts, unless ``XLA_FLAGS`` already sets it.
    Set before JAX creates its CPU client, which reads ``XLA_FLAGS`` once."""
    level = os.environ.get(BACKEND_OPT_ENV, "0")
    if level == "default" or "xla_backend_optimization_level" in os.environ.get("XLA_FLAGS", ""):
        return
    if level not in ("0", "1", "2", "3"):
        raise ValueError(f"{BACKEND_OPT_ENV} must be 0, 1, 2, 3 or 'default', got {level!r}")
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level={level}".strip()


_backend_optimization_level()

FUSION_EMITTERS_ENV = "AEJAX_TEST_XLA_FUSION_EMITTERS"
LEGACY_EMITTERS_FLAG = "--xla_cpu_use_fusion_emitters=false"


def _legacy_fusion_emitters(jaxlib_version: str | None = None) -> None:
    """XLA:CPU's legacy fusion emitters for this process and those it starts, on jaxlib 0.10 only (the
    one series known to have the flag), unless ``AEJAX_TEST_XLA_FUSION_EMITTERS=default`` or
    ``XLA_FLAGS`` already names the flag. Set before JAX creates its CPU client."""
    choice = os.environ.get(FUSION_EMITTERS_ENV, "legacy")
    if choice not in ("legacy", "default"):
        raise ValueError(f"{FUSION_EMITTERS_ENV} must be 'legacy' or 'default', got {choice!r}")
    if jaxlib_version is None:
        import importlib.metadata

        jaxlib_version = importlib.metadata.version("jaxlib")
    flags = os.environ.get("XLA_FLAGS", "")
    if choice == "default" or "xla_cpu_use_fusion_emitters" in flags or not jaxlib_version.startswith("0.10."):
        return
    os.environ["XLA_FLAGS"] = f"{flags} {LEGACY_EMITTERS_FLAG}".strip()


_legacy_fusion_emitters()
# the tests assume JAX's CPU with the four fake devices below, on a machine with an accelerator too
os.environ.setdefault("JAX_PLATFORMS", "cpu")

try:
    import jax

    jax.config.update("jax_num_cpu_devices", 4)
except AttributeError:  # jax versions without the jax_num_cpu_devices option
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    import jax


CACHE_ENV = "AEJAX_TEST_CACHE"


def _cache_directory() -> str:
    """The session's compilation cache: ``JAX_COMPILATION_CACHE_DIR`` if set, else ``AEJAX_TEST_CACHE``
    (a directory, or ``fresh`` for a new temporary one removed at exit), else a directory kept
    between runs under ``$XDG_CACHE_HOME`` (``~/.cache``)."""
    path = os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.environ.get(CACHE_ENV)
    if path == "fresh":
        path = tempfile.mkdtemp(prefix="aejax-tests-jax-cache-")
        atexit.register(shutil.rmtree, path, ignore_errors=True)  # only the process that made it
    elif not path:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "aejax", "test-compilation-cache")
    os.makedirs(path, exist_ok=True)
    return path


def _use_session_compilation_cache() -> None:
    """Point JAX (here and, through the environment, in xdist workers and subprocesses) at one cache."""
    path = os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache_directory()
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update(
        "jax_persistent_cache_min_compile_time_secs", float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"])
    )


_use_session_compilation_cache()


@pytest.fixture(autouse=True)
def _session_compilation_cache_restored():
    """A test that points the cache elsewhere or turns it off (``aejax.enable_compilation_cache`` and
    its examples) leaves the session's cache as it found it for the tests after it in this process."""
    yield
    path = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    if jax.config.jax_compilation_cache_dir != path:  # pyright: ignore[reportAttributeAccessIssue]
        from jax.experimental.compilation_cache import compilation_cache

        _use_session_compilation_cache()
        jax.config.update("jax_enable_compilation_cache", True)
        jax.config.update("jax_compilation_cache_max_size", -1)
        compilation_cache.reset_cache()


settings.register_profile(
    "default",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("random", derandomize=False, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# --hypothesis-profile, handled by Hypothesis' own plugin after this file is imported, wins over this.
settings.load_profile(os.environ.get("AEJAX_HYPOTHESIS_PROFILE", "default"))


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items):
    """Mark ``integration`` every test without a tier whose own source starts a process (a launcher
    in a helper function is not seen: mark such tests by hand)."""
    for item in items:
        if any(item.get_closest_marker(tier) for tier in TIERS):
            continue
        function = getattr(item, "function", None)
        try:
            source = inspect.getsource(function) if function is not None else ""
        except (OSError, TypeError):
            continue
        if "subprocess." in source or "sys.executable" in source:
            item.add_marker(pytest.mark.integration)
    _longest_files_first(items)


# The default tier's longest files (cold, in CPU seconds: test_risk 42, test_docs 34, test_train 23,
# test_decoders 19). xdist's ``--dist loadfile`` hands files to the workers in collection order; an
# alphabetical order starts test_train and test_vamp_edge last, and one worker then runs them alone.
LONGEST_FILES = ("test_risk.py", "test_docs.py", "test_train.py", "test_decoders.py", "test_theory_api.py")


def _longest_files_first(items: list) -> None:
    """Reorder ``items`` in place: the files of ``LONGEST_FILES`` first, in that order; every file's
    tests keep their order, and the other files theirs."""
    rank = {name: i for i, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # a stable sort


@pytest.fixture(scope="module")
def x64():
    """Run a test module with jax's float64 mode on, restoring the previous mode afterwards."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


@pytest.fixture
def fresh_compilation_cache(tmp_path, monkeypatch):
    """Run a test with an empty persistent compilation cache (and program store) of its own, for a
    test that must see programs traced, compiled or written whatever earlier runs left in the
    session's cache; processes it starts use it too. The session's cache is restored afterwards."""
    from jax.experimental.compilation_cache import compilation_cache

    path = tmp_path / "compilation-cache"
    path.mkdir()
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(path))
    jax.config.update("jax_compilation_cache_dir", str(path))
    compilation_cache.reset_cache()
    yield path
    compilation_cache.reset_cache()


@pytest.fixture
def no_compilation_cache(monkeypatch):
    """Run a test with JAX's persistent compilation cache off, so that every program it builds is
    compiled by XLA in this process; processes it starts get no cache either."""
    from jax.experimental.compilation_cache import compilation_cache

    monkeypatch.setenv("JAX_ENABLE_COMPILATION_CACHE", "false")
    previous = jax.config.jax_enable_compilation_cache  # pyright: ignore[reportAttributeAccessIssue]
    jax.config.update("jax_enable_compilation_cache", False)
    compilation_cache.reset_cache()  # JAX decides once per process whether the cache is used
    yield
    jax.config.update("jax_enable_compilation_cache", previous)
    compilation_cache.reset_cache()
