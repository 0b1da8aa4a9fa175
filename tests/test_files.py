"""Atomic writes keep the permissions an ordinary write would give (not mkstemp's 0600)."""

from __future__ import annotations

import os
import stat

import pytest

from venus_analysis.files import _UMASK, atomic_folder, atomic_write_text


def test_files_and_folders_get_the_usual_permissions(tmp_path):
    path = atomic_write_text(tmp_path / "a" / "metrics.json", "{}")
    assert path.read_text() == "{}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_UMASK
    with atomic_folder(tmp_path / "run") as tmp:
        (tmp / "x.txt").write_text("x")
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o777 & ~_UMASK
    assert (tmp_path / "run" / "x.txt").read_text() == "x"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_a_failed_folder_write_leaves_the_old_folder(tmp_path):
    atomic_write_text(tmp_path / "run" / "keep.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_folder(tmp_path / "run") as tmp:
            (tmp / "new.txt").write_text("new")
            raise RuntimeError("crash")
    assert (tmp_path / "run" / "keep.txt").read_text() == "old" and os.listdir(tmp_path) == ["run"]
