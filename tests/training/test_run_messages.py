"""How a run's folder speaks (issue 29): a read-only folder is read-only, not short of space, and
every line of the run's log is one printable line."""

import errno
import os

import pytest

from ganforge import fsutil
from ganforge.errors import WriteError
from ganforge.training import run as R


@pytest.fixture
def read_only_disk(monkeypatch):
    """statvfs as on a read-only mount (root writes anywhere else), with 1.2 MB free."""
    real = os.statvfs

    class Stat:
        def __init__(self, path):
            s = real(path)
            self.f_flag, self.f_bavail, self.f_frsize, self.f_blocks = os.ST_RDONLY, 1200, 1000, s.f_blocks

    monkeypatch.setattr(os, "statvfs", Stat)
    monkeypatch.setattr(fsutil, "free_bytes", lambda folder: 1_200_000)
    monkeypatch.setattr(R, "free_bytes", lambda folder: 1_200_000)


def test_a_read_only_runs_folder_is_said_read_only(read_only_disk, tmp_path):
    assert fsutil.read_only(tmp_path / "not" / "yet")
    with pytest.raises(WriteError, match=r"cannot write a run in .*: it is read-only; pass --runs-dir"):
        R.check_space(tmp_path, 1_400_000)
    failed = R.write_error(tmp_path / "checkpoints" / "last.pt", RuntimeError("file write failed"), needed=1_400_000)
    assert "is read-only" in str(failed) and "disk full" not in str(failed)
    with pytest.raises(Exception, match=r"cannot write x.npy \(4 samples\) to .*: it is read-only"):
        fsutil.check_free_space(tmp_path, 10, "x.npy (4 samples)")


def test_a_write_that_says_read_only_file_system_is_read_only(tmp_path):
    exc = OSError(errno.EROFS, "Read-only file system", str(tmp_path / "x"))
    assert "is read-only" in str(R.write_error(tmp_path / "x", exc))


def test_sizes_below_ten_megabytes_keep_their_tenths(tmp_path, monkeypatch):
    monkeypatch.setattr(R, "free_bytes", lambda folder: 1_200_000)
    with pytest.raises(WriteError, match=r"about 1.4 MB needed, 1.2 MB free"):
        R.check_space(tmp_path, 1_400_000)


def test_the_run_log_writes_one_printable_line_a_record(tmp_path):
    run = R.RunDir(tmp_path)
    log = R.open_log(run)
    try:
        log.info("data: 3 classes from images (cats, evil\x1b[2J, two\nlines)")
    finally:
        R.close_log(log)
    lines = run.log.read_text().splitlines()
    assert len(lines) == 1 and r"evil\x1b[2J, two\nlines" in lines[0] and "\x1b" not in lines[0]
