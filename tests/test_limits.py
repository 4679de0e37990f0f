"""The memory budget and the checks that refuse work before it starts (issue 16)."""

from collections import namedtuple

import numpy as np
import pytest

from ganforge import fsutil, limits
from ganforge.errors import GanforgeError
from ganforge.inference import generate


@pytest.mark.parametrize("text, size", [("", 1 << 30), ("4G", 4 << 30), ("512m", 512 << 20), ("2GiB", 2 << 30),
                                        ("1.5G", 3 << 29), ("100000000", 100000000)])
def test_memory_budget_reads_the_environment(text, size, monkeypatch):
    monkeypatch.setenv(limits.MEMORY_ENV, text)
    assert limits.memory_budget() == size


@pytest.mark.parametrize("text", ["lots", "-1G", "4 G B", "1K"])
def test_a_bad_budget_is_one_line(text, monkeypatch):
    monkeypatch.setenv(limits.MEMORY_ENV, text)
    with pytest.raises(GanforgeError, match=limits.MEMORY_ENV):
        limits.memory_budget()


def test_check_memory_names_the_need_the_limit_and_both_fixes(monkeypatch):
    monkeypatch.setenv(limits.MEMORY_ENV, "100M")
    limits.check_memory("x", 100 << 20, "do less")
    with pytest.raises(GanforgeError, match=r"x needs about 100.0 MiB in memory, more than the 100.0 MiB limit: "
                                            r"do less, or raise the limit \(GANFORGE_MAX_MEMORY=4G\)"):
        limits.check_memory("x", (100 << 20) + 1, "do less")


Usage = namedtuple("Usage", "total used free")


def test_an_npy_that_cannot_fit_on_the_disk_is_refused_before_the_work(tmp_path, monkeypatch):
    from tests.data.make_tiny_models import HERE

    monkeypatch.setattr("shutil.disk_usage", lambda path: Usage(10 << 30, 10 << 30, 1 << 20))
    (tmp_path / "s.npy").write_bytes(b"an earlier array")
    with pytest.raises(GanforgeError, match=r"s.npy \(2000 samples\) needs 1.5 MiB but .* has 1.0 MiB free"):
        generate(HERE / "tiny-image.onnx", 2000, tmp_path / "s.npy")
    assert (tmp_path / "s.npy").read_bytes() == b"an earlier array"
    assert [p.name for p in tmp_path.iterdir()] == ["s.npy"]
    generate(HERE / "tiny-image.onnx", 1000, tmp_path / "s.npy")  # 750 KiB fits
    assert np.load(tmp_path / "s.npy").shape == (1000, 3, 8, 8)


def test_check_writable_leaves_nothing_behind(tmp_path):
    fsutil.check_writable(tmp_path / "new" / "deeper")
    assert not list(tmp_path.iterdir())
    (tmp_path / "file").write_text("x")
    with pytest.raises(GanforgeError, match="is a file, not a folder; pass another --out"):
        fsutil.check_writable(tmp_path / "file" / "sub")
