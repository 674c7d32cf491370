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


# ------------------------------------------------------------------ verified writes, locks, temporaries
def _cut(path, keep: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(keep)


@pytest.mark.parametrize("suffix", [".npy", ".safetensors", ".json"])
def test_a_short_write_is_an_error_and_leaves_nothing(tmp_path, suffix):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / f"out{suffix}"
    with (
        pytest.raises(ValueError, match="the write was cut short"),
        atomic_path(path, expected_size=10 if suffix == ".json" else None) as tmp,
    ):
        if suffix == ".npy":
            np.save(tmp, np.zeros((64, 64), np.float32))
        elif suffix == ".safetensors":
            save_file({"w": torch.zeros(64, 64)}, str(tmp))
        else:
            tmp.write_text("0123456789")
        _cut(tmp, 1024 if suffix != ".json" else 5)  # what a 1 KB file-size limit leaves
    assert list(tmp_path.iterdir()) == []


def test_whole_files_pass_the_check(tmp_path):
    import torch
    from safetensors.torch import save_file

    with atomic_path(tmp_path / "a.safetensors") as tmp:
        save_file({"w": torch.zeros(64, 64), "b": torch.ones(3)}, str(tmp))
    with atomic_path(tmp_path / "a.npy") as tmp:
        np.save(tmp, np.zeros((64, 64), np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "a.safetensors"]


def _dead_pid() -> int:
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_dead_runs_go_and_live_ones_stay(tmp_path):
    from clear_core.io import TEMP_MARK, remove_stale_temporaries, temp_path

    (tmp_path / "original").mkdir()
    dead = tmp_path / "original" / f".p000_s0.mp4{TEMP_MARK}{_dead_pid()}-abc.mp4"
    dead.write_bytes(b"half a video")
    live = temp_path(tmp_path / "original" / "p001_s0.mp4")  # this process's own
    other = tmp_path / ".hidden-user-file"
    other.write_text("not ours")
    assert remove_stale_temporaries(tmp_path) == [dead]
    assert live.exists() and other.exists() and not dead.exists()


def test_output_lock_refuses_a_second_run_and_is_released(tmp_path):
    from clear_core.io import output_lock

    out = tmp_path / "run"
    with (
        output_lock(out),
        pytest.raises(ValueError, match=rf"--out {out}: another run is writing there \(pid {os.getpid()}\)"),
        output_lock(out),
    ):
        pass
    with output_lock(out):  # free again once the first run ended
        pass
    assert list(tmp_path.iterdir()) == []  # the lock file goes with the lock


def test_sigterm_removes_temporaries_and_exits_143(tmp_path):
    import signal
    import subprocess
    import sys

    script = f"""
import sys, time
from pathlib import Path
import clear_core.__main__ as cli
from clear_core.io import atomic_path

def slow(args):
    with atomic_path(Path({str(tmp_path)!r}) / "out.npy") as tmp:
        tmp.write_bytes(b"partial")
        print("ready", flush=True)
        time.sleep(60)
    return 0

cli.COMMANDS["embed"] = slow
sys.exit(cli.main(["embed", "--prompts", "x", "--out", "y.npy"]))
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == ["terminated (SIGTERM); temporary files removed"]
    assert list(tmp_path.iterdir()) == []
