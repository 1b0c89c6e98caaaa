"""The value store: the same bits from any process, made once, checked on open, rebuilt when damaged, and
moved to a temp dir with a message when its directory cannot hold it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pytest_dummyweights import DummyWeightsError
from pytest_dummyweights._values import mapped, store

OPEN_AND_DIGEST = textwrap.dedent(
    """
    import hashlib, sys
    from pytest_dummyweights._values import store
    opened = store.open_store("bfloat16", 5, 0.03, sys.argv[1])
    print(hashlib.sha256(opened.data).hexdigest(), opened.message)
    """
)


def open_fresh(directory: Path, dtype: str = "bfloat16", seed: int = 5, std: float = 0.03) -> store.Store:
    """Open without this process's cache, as a later run would."""
    store._open_once.cache_clear()
    return store.open_store(dtype, seed, std, directory)


def run_open(directory: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", OPEN_AND_DIGEST, str(directory)], stdout=subprocess.PIPE, text=True, env={**os.environ, **env}
    )


def test_two_processes_make_bit_identical_stores(tmp_path):
    there = run_open(tmp_path / "there").communicate()[0].split()[0]
    here = open_fresh(tmp_path / "here")
    assert hashlib.sha256(here.data).hexdigest() == there
    assert here.path.stat().st_size == store.FILE_BYTES and here.message is None
    values = here.data.view(np.uint16).astype(np.uint32) << np.uint32(16)
    assert values.view(np.float32)[::997].std() == pytest.approx(0.03, rel=0.01)  # normal samples with the std


def test_two_processes_creating_the_store_at_once_share_one_file(tmp_path):
    runs = [run_open(tmp_path) for _ in range(2)]
    digests = {run.communicate()[0] for run in runs}
    assert len(digests) == 1 and next(iter(digests)).split()[1] == "None"
    assert sorted(path.name for path in (tmp_path / store.OWN_DIRECTORY).iterdir()) == [store.MARKER_NAME, open_fresh(tmp_path).path.name]


@pytest.mark.parametrize("damage", ["truncated", "other header", "one flipped bit"])
def test_a_damaged_store_is_rebuilt_never_trusted(tmp_path, damage):
    good = open_fresh(tmp_path)
    expected = hashlib.sha256(good.data).hexdigest()
    path = good.path
    del good
    store._open_once.cache_clear()
    replacement = tmp_path / "replacement"  # replace, do not rewrite in place: this process may still map the old file
    if damage == "truncated":
        replacement.write_bytes(path.read_bytes()[: store.FILE_BYTES // 2])
    elif damage == "other header":  # a complete file whose header names another seed
        content = bytearray(path.read_bytes())
        digest = store.HEADER.unpack(content[: store.HEADER.size])[-1]
        content[: store.HEADER.size] = store.HEADER.pack(*store._header("bfloat16", 6, 0.03, digest))
        replacement.write_bytes(bytes(content))
    else:  # in the middle of the data, far from any page a sample would check
        content = bytearray(path.read_bytes())
        content[store.HEADER_BYTES + store.DATA_BYTES // 2 + 1] ^= 0x40
        replacement.write_bytes(bytes(content))
    os.replace(replacement, path)
    rebuilt = open_fresh(tmp_path)
    assert hashlib.sha256(rebuilt.data).hexdigest() == expected
    assert rebuilt.message.startswith(f"value store {path} ") and rebuilt.message.endswith("; rebuilt it")


def test_a_file_at_a_stores_name_without_the_stores_header_is_left_alone(tmp_path, monkeypatch):
    path = open_fresh(tmp_path).path
    store._open_once.cache_clear()
    garbage = np.random.default_rng(0).bytes(store.FILE_BYTES)
    replacement = tmp_path / "replacement"
    replacement.write_bytes(garbage)
    os.replace(replacement, path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    opened = open_fresh(tmp_path)
    assert path.read_bytes() == garbage
    assert opened.path.parent.parent == tmp_path / "tmp" / f"pytest-dummyweights-{os.getuid()}"
    assert f"({path} is not a value store file; the store leaves it alone); using " in opened.message


def test_an_unusable_directory_falls_back_to_the_temp_dir_with_a_message(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    opened = open_fresh(blocker / "store")
    assert opened.path.parent.parent == tmp_path / "tmp" / f"pytest-dummyweights-{os.getuid()}"
    assert opened.message.startswith(f"value store directory {blocker / 'store'} is unusable") and "using" in opened.message


def test_a_full_store_directory_falls_back_then_fails_with_one_line(tmp_path, monkeypatch):
    full = tmp_path / "full"
    full.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(full)], capture_output=True).returncode:
        pytest.skip("needs permission to mount a small tmpfs standing in for a full /dev/shm")
    try:
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
        opened = open_fresh(full)
        assert "No space left on device" in opened.message and opened.path.parent.parent.parent == tmp_path / "tmp"
        assert not [path for path in full.rglob("*.tmp")]  # no half-written file left
        monkeypatch.setattr(tempfile, "tempdir", str(full))
        full_twice = r"^cannot create the value store in \S+ \(No space left on device\) nor in \S+ \(No space left on device\); pass"
        with pytest.raises(DummyWeightsError, match=full_twice):
            open_fresh(full / "sub")
    finally:
        store._open_once.cache_clear()
        subprocess.run(["umount", str(full)], check=True)


def test_window_offsets_are_the_parameters_own_and_tile_it_without_repeats():
    nbytes = 3 * store.SLOT_AREA_BYTES + 5 * store.PAGE + 7
    windows = store.windows("model.layers.0.mlp.weight", 0, nbytes)
    assert windows == store.windows("model.layers.0.mlp.weight", 0, nbytes)
    assert windows != store.windows("model.layers.1.mlp.weight", 0, nbytes)
    assert [w.start for w in windows] == list(range(0, nbytes, store.WINDOW_BYTES)) and sum(w.length for w in windows) == nbytes
    assert all(w.offset % store.PAGE == 0 and w.offset + w.length <= store.DATA_BYTES for w in windows)
    per_pass = [windows[i : i + store.SLOTS] for i in range(0, len(windows), store.SLOTS)]
    for one_pass in per_pass:  # within a pass: disjoint store ranges
        assert len({w.offset // store.WINDOW_BYTES for w in one_pass}) == len(one_pass)
    phases = {one_pass[0].offset % store.WINDOW_BYTES for one_pass in per_pass}
    assert len(phases) == len(per_pass)  # each pass at its own page phase


def plant_user_files(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Files a user keeps in a directory, named like the store's own (``*.bin``, ``*.lock``, ``*.tmp``) and
    older than any store, so pruning would take them first; returns what they are (content, mtime)."""
    names = [f"firmware{n}.bin" for n in range(10)] + ["notes.lock", "draft.tmp"]
    names += [f"bfloat16-seed5-std{(0.03).hex()}-v{version}.bin{tail}" for version in (1, 2) for tail in ("", ".lock", ".4242.tmp")]
    directory.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        (directory / name).write_bytes(f"user file {index}\n".encode())
        os.utime(directory / name, ns=(index, index))
    return {name: found for name, found in user_files(directory).items() if name in names}


def user_files(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in directory.iterdir() if path.is_file()}


def test_a_user_directory_keeps_every_file_the_store_did_not_write(tmp_path):
    planted = plant_user_files(tmp_path)
    opened = open_fresh(tmp_path)
    assert user_files(tmp_path) == planted  # none removed, renamed or overwritten
    assert opened.path.parent == tmp_path / store.OWN_DIRECTORY and opened.message is None
    assert sorted(path.name for path in opened.path.parent.iterdir()) == [store.MARKER_NAME, opened.path.name]  # no lock file


def test_the_store_directory_option_pointing_at_the_working_directory_leaves_every_file_there(inner):
    planted = plant_user_files(inner.path)
    inner.write("pytest.ini", "[pytest]\ndummyweights_store_dir = .\n")
    inner.write(
        "test_build.py",
        """
        import pytest
        from engine_models import ZOO, zoo_config

        @pytest.mark.dummy_load(zoo_config("w", w=("float32", [1024, 1024])), model=ZOO, seed=5, std=0.03)
        def test_build(dummy_model):
            assert dummy_model.w.shape == [1024, 1024]
        """,
    )
    planted.update(user_files(inner.path))
    inner.run().assert_outcomes(passed=1)
    assert user_files(inner.path) == planted
    assert (inner.path / store.OWN_DIRECTORY / store.MARKER_NAME).is_file()


def test_pruning_keeps_the_most_recently_opened_stores_and_removes_nothing_else(tmp_path):
    older, newer = open_fresh(tmp_path, seed=1), open_fresh(tmp_path, seed=2)
    home = older.path.parent
    planted = plant_user_files(home)  # a user's files inside the store's own directory are still theirs
    stale = home / f"{older.path.name}.99999.tmp"  # a creation that died: the store's by name and header
    stale.write_bytes(older.path.read_bytes()[: store.PAGE])
    os.utime(older.path, (1, 1))
    open_fresh(tmp_path, seed=1)  # opening marks it recently used again
    os.utime(newer.path, (2, 2))
    digest = hashlib.sha256(newer.data).hexdigest()
    with store.locked(home):
        store.prune(home, keep=1)
    assert sorted(user_files(home)) == sorted([store.MARKER_NAME, older.path.name, *planted])
    assert {name: user_files(home)[name] for name in planted} == planted
    assert hashlib.sha256(newer.data).hexdigest() == digest  # a removed store stays readable where it is mapped


def test_a_directory_of_the_stores_name_it_did_not_make_is_left_alone(tmp_path, monkeypatch):
    planted = plant_user_files(tmp_path / store.OWN_DIRECTORY)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    opened = open_fresh(tmp_path)
    assert user_files(tmp_path / store.OWN_DIRECTORY) == planted
    assert opened.path.parent.parent == tmp_path / "tmp" / f"pytest-dummyweights-{os.getuid()}"
    assert opened.message.startswith(f"value store directory {tmp_path} is unusable (") and "not made by the value store" in opened.message


def test_seeds_are_64_bit_and_one_beyond_is_one_error_that_leaves_no_file(tmp_path):
    """Every way a seed enters a build: the spec (marker, build_dummy_model) and the fill and store functions."""
    import numpy
    from engine_models import zoo_config
    from engine_models.layers import ParamZoo

    from pytest_dummyweights import build_dummy_model
    from pytest_dummyweights._values import fill

    config = zoo_config("seed", w=("float32", [1024, 1024]))
    directory = tmp_path / "store"
    with pytest.raises(DummyWeightsError, match=r"^seed must be below 2\*\*64 .*; got 18446744073709551616$"):
        build_dummy_model(config, model=ParamZoo, seed=2**64, store_dir=directory)
    layer = build_dummy_model(config, model=ParamZoo, seed=numpy.uint64(2**64 - 1), store_dir=directory)  # the largest seed
    assert store.open_store("float32", 2**64 - 1, 0.02, directory).seed == 2**64 - 1
    del layer
    before = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*"))
    with pytest.raises(DummyWeightsError, match=r"^seed must be below 2\*\*64 .*; got 18446744073709551616$"):
        fill.initialize_dummy_weights(build_dummy_model(config, model=ParamZoo), seed=2**64, store_dir=directory)
    with pytest.raises(DummyWeightsError, match=r"^seed must be a non-negative integer; got -1$"):
        store.open_store("float32", -1, 0.02, tmp_path / "elsewhere")
    assert sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*")) == before  # no lock, no temporary file


FLIPPED_BUILD = """
import hashlib
import pytest
from engine_models import ZOO, zoo_config

@pytest.mark.dummy_load(zoo_config("w", w=("float32", [1024, 1024])), model=ZOO, seed=5, std=0.03)
def test_build(dummy_model):
    assert hashlib.sha256(dummy_model.w.numpy().tobytes()).hexdigest() == {expected!r}
"""


def test_a_flipped_bit_in_a_window_a_model_maps_is_never_served(inner, tmp_path):
    """The next build (a new process, as a later run) rebuilds the store, with a note in the summary."""
    from engine_models import zoo_config
    from engine_models.layers import ParamZoo

    from pytest_dummyweights import build_dummy_model

    directory = tmp_path / "values"
    model = build_dummy_model(zoo_config("w", w=("float32", [1024, 1024])), model=ParamZoo, seed=5, std=0.03, store_dir=directory)
    expected = hashlib.sha256(model.w.numpy().tobytes()).hexdigest()
    assert mapped.is_mapped(model.w)
    (window,) = store.windows("w", 5, 1024 * 1024 * 4)
    at = store.HEADER_BYTES + window.offset + window.length // 2 + 3  # the high byte of a float32 in the middle of the window
    path = store.open_store("float32", 5, 0.03, directory).path
    with open(path, "r+b") as file:  # in place, as damage would
        file.seek(at)
        original = file.read(1)[0]
        file.seek(at)
        file.write(bytes([original ^ 0x40]))  # the exponent's top bit: 0.03 becomes about 1e37
    inner.write("test_flipped.py", FLIPPED_BUILD.format(expected=expected))
    result = inner.run(f"--dummy-store-dir={directory}", subprocess=True)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*note: value store {path} has bytes that differ from its digest; rebuilt it*"])
    with open(path, "rb") as file:
        file.seek(at)
        assert file.read(1)[0] == original
