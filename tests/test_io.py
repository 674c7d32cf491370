"""Atomic writes: whole or nothing, one file mode."""

import os
import stat

import numpy as np
import pytest

from clear_core.io import FILE_MODE, atomic_path, atomic_write_text, check_writable


def test_atomic_write_replaces_whole_and_sets_the_mode(tmp_path):
    path = atomic_write_text(tmp_path / "a.json", "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(os.stat(path).st_mode) == FILE_MODE
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary left behind


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.ones(3))
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        np.save(tmp, np.zeros(3))
        raise RuntimeError("disk full")
    np.testing.assert_array_equal(np.load(path), np.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"]


def test_np_save_keeps_the_temporary_name(tmp_path):
    with atomic_path(tmp_path / "x.npy") as tmp:
        np.save(tmp, np.arange(3))
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"]


def test_check_writable(tmp_path):
    (tmp_path / "file").write_text("x")
    check_writable(tmp_path / "new" / "deeper", "--out", folder=True)
    with pytest.raises(ValueError, match="is a file; expected a folder"):
        check_writable(tmp_path / "file", "--out", folder=True)
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_writable(tmp_path / "file" / "sub", "--out", folder=True)
    with pytest.raises(ValueError, match="is a folder; expected a file name"):
        check_writable(tmp_path, "--out", folder=False)
    assert not (tmp_path / "new").exists()  # checking creates nothing
