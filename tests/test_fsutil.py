import pytest

from ganforge.fsutil import atomic_dir, atomic_path


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    dest = tmp_path / "model.onnx"
    dest.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            assert tmp.suffix == ".onnx" and tmp.parent == tmp_path
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert dest.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
    with atomic_path(dest) as tmp:
        tmp.write_text("new")
    assert dest.read_text() == "new"


def test_atomic_dir_replaces_whole_or_not_at_all(tmp_path):
    dest = tmp_path / "repo" / "generator"
    dest.mkdir(parents=True)
    (dest / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(dest) as tmp:
            (tmp / "new.txt").write_text("new")
            raise RuntimeError("interrupted")
    assert [p.name for p in dest.iterdir()] == ["old.txt"]
    with atomic_dir(dest) as tmp:
        (tmp / "1").mkdir()
        (tmp / "1" / "model.onnx").write_text("m")
    assert sorted(p.name for p in dest.iterdir()) == ["1"]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["generator"]  # no leftovers
