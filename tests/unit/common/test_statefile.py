"""State files: private whatever the umask, replaced atomically (issue 14, D8 and D12)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from jobpulse.common import statefile


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_dir_and_files_ignore_the_umask(tmp_path: Path, loose_umask: None) -> None:
    state = statefile.private_dir(tmp_path / "a" / "b")
    assert mode(state) == 0o700
    statefile.write_atomic(state / "secret", "s3cret")
    assert mode(state / "secret") == 0o600 and (state / "secret").read_text() == "s3cret"
    statefile.create_private(state / "db")
    assert mode(state / "db") == 0o600
    (state / "old").touch(mode=0o644)
    statefile.create_private(state / "old")  # an existing file of ours is narrowed
    assert mode(state / "old") == 0o600
    assert statefile.loose_mode(state) is None
    assert statefile.loose_mode(tmp_path / "a") is not None  # a parent made by mkdir -p: left alone


def test_a_failed_write_leaves_the_old_content_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "jwt-secret"
    statefile.write_atomic(target, "old-secret")

    def crash(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="No space"):
        statefile.write_atomic(target, "new-secret")
    assert target.read_text() == "old-secret"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jwt-secret"]
