import pytest

from ganforge.fsutil import atomic_dir, atomic_path, inside, remove_leftovers


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    dest = tmp_path / "model.onnx"
    dest.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            assert tmp.name == "model.onnx" and tmp.parent.parent == tmp_path
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


# ---------------------------------------------------------------- what a clean-up may remove

LOOKALIKES = (".grid.2023-12-01.tmp.png", ".grid.99999999-x.tmp.png", ".samples.2023-12-01.old", ".samples.99999999-y.tmp",
              ".ganforge-tmp-mine", ".ganforge-tmp-forged", ".ganforge-tmp-linked")


def _lookalikes(folder):
    """A user's own files whose names match what earlier versions cleaned up by pattern, and
    staging look-alikes without a marker ganforge wrote (none, a forged one, a link to a real one)."""
    import json

    for name in LOOKALIKES[:2]:
        (folder / name).write_text("mine")
    for name in LOOKALIKES[2:5]:
        (folder / name).mkdir()
        (folder / name / "keep.txt").write_text("mine")
    forged = folder / ".ganforge-tmp-forged"
    forged.mkdir()
    (forged / ".ganforge-temporary").write_text(json.dumps({"magic": "ganforge temporary", "token": "other",
                                                             "pid": 2023, "host": __import__("socket").gethostname()}))
    real = folder.parent / "elsewhere"
    real.mkdir()
    (real / ".ganforge-temporary").write_text(json.dumps({"magic": "ganforge temporary", "token": "linked",
                                                           "pid": 2023, "host": __import__("socket").gethostname()}))
    (folder / ".ganforge-tmp-linked").symlink_to(real)
    return real


def test_a_users_lookalike_files_survive_every_writer(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    real = _lookalikes(out)
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with atomic_path(out / "grid.png") as tmp:
        tmp.write_text("grid")
    with atomic_dir(out / "samples") as tmp:
        (tmp / "0.png").write_text("0")
    assert remove_leftovers(out) == 0
    after = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert {k: v for k, v in after.items() if k.parts[1:2] not in (("grid.png",), ("samples",))} == before
    assert sorted(p.name for p in out.iterdir()) == sorted([*LOOKALIKES, "grid.png", "samples"])
    assert (real / ".ganforge-temporary").exists()


KILLED_WRITER = r"""
import os, signal, sys
from pathlib import Path
from ganforge.fsutil import atomic_dir, atomic_path, inside, remove_leftovers
out = Path(sys.argv[1])
if sys.argv[2] == "between-moves":  # killed after the old folder moved aside, before the new one moved in
    real = os.replace
    def replace(src, dst):
        real(src, dst)
        os.kill(os.getpid(), signal.SIGKILL)
    os.replace = replace
    with atomic_dir(out / "samples") as tmp:
        (tmp / "new.png").write_text("new")
with atomic_path(out / "grid.png") as tmp, atomic_dir(out / "samples") as folder:
    tmp.write_text("half a grid")
    (folder / "0.png").write_text("half")
    print("writing", flush=True)
    sys.stdin.read()  # until killed
"""


def _killed_writer(out, how):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(root / "src"), str(root)))}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(out), how], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    if how == "mid-write":
        assert proc.stdout.readline() == "writing\n"
        proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    proc.stdin.close()
    proc.stdout.close()


def test_a_killed_writers_leftovers_are_removed(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "grid.png").write_text("earlier grid")
    _lookalikes(out)
    _killed_writer(out, "mid-write")
    left = [p for p in out.iterdir() if p.name.startswith(".ganforge-tmp-") and p.name not in LOOKALIKES]
    assert len(left) == 2  # the grid's and the folder's temporaries, with their markers
    assert (out / "grid.png").read_text() == "earlier grid" and not (out / "samples").exists()
    with atomic_path(out / "grid.png") as tmp:  # the next write in the folder cleans up
        tmp.write_text("grid")
    assert sorted(p.name for p in out.iterdir()) == sorted([*LOOKALIKES, "grid.png"])


def test_a_folder_output_killed_between_its_moves_comes_back(tmp_path):
    out = tmp_path / "out"
    (out / "samples").mkdir(parents=True)
    (out / "samples" / "old.png").write_text("old")
    _killed_writer(out, "between-moves")
    assert not (out / "samples").exists()  # the earlier folder waits in the staging folder
    assert remove_leftovers(out) == 1
    assert [p.name for p in out.iterdir()] == ["samples"] and (out / "samples" / "old.png").read_text() == "old"


def test_a_write_through_a_link_that_leaves_its_folder_is_refused(tmp_path):
    from ganforge.errors import GanforgeError

    run, other = tmp_path / "run", tmp_path / "other"
    (run / "checkpoints").mkdir(parents=True)
    (other / "checkpoints").mkdir(parents=True)
    (other / "checkpoints" / "last.pt").write_text("theirs")
    (run / "checkpoints" / "last.pt").symlink_to(other / "checkpoints" / "last.pt")
    with pytest.raises(GanforgeError, match=r"refusing to write .*last\.pt: .*last\.pt is a link to .*other.*, "
                                            r"outside the run .*run; remove the link"):
        inside(run, run / "checkpoints" / "last.pt", what="the run")
    (run / "export").symlink_to(other)  # a folder on the way
    with pytest.raises(GanforgeError, match=r"export is a link to"):
        inside(run, run / "export" / "generator.onnx")
    (tmp_path / "runs").symlink_to(tmp_path)  # links that stay inside are followed
    assert inside(tmp_path / "runs" / "run", tmp_path / "runs" / "run" / "config.json") == run.resolve() / "config.json"
    (run / "bad\x1b[2J\nname").symlink_to(other)
    with pytest.raises(GanforgeError) as caught:
        inside(run, run / "bad\x1b[2J\nname" / "x")
    assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value) and "\\x1b[2J\\n" in str(caught.value)
