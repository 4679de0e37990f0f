"""Torch files proven before torch reads them (ganforge.zipcheck, issue 29): a byte flipped inside
a record, a record that declares gigabytes, a legacy file, a pickle that would build millions of
values, nested too deep or with a history too long. Each is one line naming the file (and the
record), for every reader: checkpoints, --weights, programs, gan-eval's evaluator cache."""

from __future__ import annotations

import io
import pickle
import shutil
import time
import zipfile
import zlib
from pathlib import Path

import pytest
import torch

from ganforge import zipcheck
from ganforge.errors import CheckpointError, ConfigError, GanforgeError
from ganforge.limits import DEFAULT_UNPACKED, MAX_HISTORY_ROWS, UNPACKED_ENV, unpacked_bound
from ganforge.training import checkpoint
from ganforge.usercode import load_program, load_weights
from tests.hostile import files

READER = zipcheck.Reader("torch file", "restore it", legacy="re-save it", error=GanforgeError)


@pytest.fixture
def ckpt(sine_run, tmp_path) -> Path:
    return Path(shutil.copy(sine_run.checkpoint, tmp_path / "last.pt"))


def _weight_record(path: Path) -> str:
    """The record (``data/N``) that holds the storage of the generator's first weight."""
    state = torch.load(path, weights_only=True)
    first = next(iter(state["generator"].values()))
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if "/data/" in info.filename and info.file_size == first.untyped_storage().nbytes() \
                    and archive.read(info) == bytes(first.untyped_storage()):
                return info.filename.split("/", 1)[1]
    raise AssertionError("no record holds the weight")


# ---------------------------------------------------------------- CRCs


def test_a_byte_flipped_in_a_checkpoint_weight_is_named(ckpt):
    record = _weight_record(ckpt)
    files.flip_byte(ckpt, record)
    assert torch.load(ckpt, weights_only=True)  # torch itself loads the wrong weight
    with pytest.raises(CheckpointError) as caught:
        checkpoint.load(ckpt)
    assert str(caught.value) == (f"checkpoint {ckpt} is damaged: record {record} fails its CRC; restore it or "
                                 "train again")


def test_every_record_is_checked_not_only_weights(ckpt):
    files.flip_byte(ckpt, "data.pkl", at=40)
    with pytest.raises(CheckpointError, match=r"is damaged: record data.pkl fails its CRC"):
        checkpoint.load(ckpt)


def test_a_byte_flipped_in_a_users_weights(tmp_path):
    path = tmp_path / "G.pth"
    torch.save({"fc.weight": torch.randn(4, 3)}, path)
    files.flip_byte(path, "data/0")
    with pytest.raises(ConfigError, match=rf"weights file {path} is damaged: record data/0 fails its CRC; copy it "
                                          "again from where it was saved"):
        load_weights(path)


def test_a_byte_flipped_in_a_torchscript_program(tmp_path):
    path = tmp_path / "G.ts"
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 4)), str(path))
    assert load_program(path)[0] is not None
    files.flip_byte(path, "data/0")
    with pytest.raises(ConfigError, match=rf"program file {path} is damaged: record data/0 fails its CRC"):
        load_program(path)


def test_a_byte_flipped_in_the_evaluator_cache(tmp_path, monkeypatch):
    from ganforge.evaluation import images as E
    from ganforge.training.datasets import ImageData

    monkeypatch.setattr(E, "CACHE", tmp_path / "cache")
    data = ImageData(torch.randint(0, 255, (24, 1, 8, 8), dtype=torch.uint8), torch.zeros(24, dtype=torch.int64),
                     ["x"], "test")
    E.train_evaluator(data, steps=2)
    (cached,) = E.CACHE.glob("*.pt")
    files.flip_byte(cached, "data/0")
    with pytest.raises(GanforgeError, match=rf"evaluator cache {cached} is damaged: record data/0 fails its CRC; "
                                            "delete it: gan-eval trains a new one"):
        E.train_evaluator(data, steps=2)


def test_an_evaluator_cache_of_other_weights_is_one_line(tmp_path, monkeypatch):
    from ganforge.evaluation import images as E
    from ganforge.training.datasets import ImageData

    monkeypatch.setattr(E, "CACHE", tmp_path / "cache")
    data = ImageData(torch.randint(0, 255, (24, 1, 8, 8), dtype=torch.uint8), torch.zeros(24, dtype=torch.int64),
                     ["x"], "test")
    E.train_evaluator(data, steps=2)
    (cached,) = E.CACHE.glob("*.pt")
    state = torch.load(cached, weights_only=True)
    state["net"]["head.weight"] = state["net"]["head.weight"].double()
    torch.save(state, cached)
    with pytest.raises(GanforgeError, match=r"does not fit these data .*head.weight is float64 \[4, 128\]; the "
                                            r"model's is float32 \[4, 128\]\); delete it"):
        E.train_evaluator(data, steps=2)


def test_a_stored_record_whose_sizes_disagree(ckpt, tmp_path):
    with zipfile.ZipFile(ckpt) as archive:
        data = archive.read(next(i for i in archive.infolist() if i.filename.endswith("data/0")))
    bad = files.rezip(ckpt, tmp_path / "bad.pt", {"data/0": (0, data, len(data) + 4, zlib.crc32(data))})
    with pytest.raises(CheckpointError, match=r"record data/0 is stored as \d+ bytes but declares \d+"):
        checkpoint.load(bad)


def test_checking_200_mb_costs_a_read(tmp_path, capsys):
    """Not a timing test (no threshold): proves a big file passes, and prints what it cost."""
    path = tmp_path / "big.pt"
    torch.save({f"w{i}": torch.ones(1 << 20) for i in range(50)}, path)  # 50 x 4 MiB
    start = time.perf_counter()
    zipcheck.verify_file(path, READER)
    with capsys.disabled():
        print(f"\n  zipcheck: {path.stat().st_size / 1e6:.0f} MB proven in {time.perf_counter() - start:.3f} s")


# ---------------------------------------------------------------- sizes, declared before anything is unpacked


def test_a_deflated_record_that_declares_gigabytes(ckpt, tmp_path):
    packed, size = files.deflated_zeros()  # 4 MB of deflate that inflates to 3.98 GiB
    bomb = files.rezip(ckpt, tmp_path / "bomb.pt", {"data/0": (zipfile.ZIP_DEFLATED, packed, size, 0)})
    assert bomb.stat().st_size < 5 << 20 and size > unpacked_bound() == DEFAULT_UNPACKED
    with pytest.raises(CheckpointError, match=rf"bomb.pt declares records of more than {DEFAULT_UNPACKED:,} bytes "
                                              rf"once unpacked \(data/0 alone {size:,}\), the limit .*"
                                              rf"{UNPACKED_ENV}=8G"):
        checkpoint.load(bomb)


def test_the_bound_counts_all_records_and_can_be_set(ckpt, tmp_path, monkeypatch):
    packed = zlib.compress(bytes(3 << 20))[2:-4]  # raw deflate of 3 MiB
    crc = zlib.crc32(bytes(3 << 20))
    big = files.rezip(ckpt, tmp_path / "big.pt", {"data/0": (zipfile.ZIP_DEFLATED, packed, 3 << 20, crc)})
    zipcheck.verify_file(big, READER)  # a whole file within the default bound (torch would read it)
    monkeypatch.setenv(UNPACKED_ENV, "2M")
    with pytest.raises(GanforgeError, match=r"more than 2,097,152 bytes once unpacked \(data/0 alone 3,145,728\)"):
        zipcheck.verify_file(big, READER)
    monkeypatch.setenv(UNPACKED_ENV, "4M")  # each record under it, all of them together over it
    two = files.rezip(big, tmp_path / "two.pt", {"data/1": (zipfile.ZIP_DEFLATED, packed, 3 << 20, crc)})
    with pytest.raises(GanforgeError, match=r"more than 4,194,304 bytes once unpacked, the limit"):
        zipcheck.verify_file(two, READER)
    monkeypatch.setenv(UNPACKED_ENV, "lots")
    with pytest.raises(GanforgeError, match=rf"{UNPACKED_ENV}='lots' is not a size"):
        zipcheck.verify_file(two, READER)


def test_a_directory_of_too_many_records(tmp_path, monkeypatch):
    monkeypatch.setattr(zipcheck, "MAX_TORCH_RECORDS", 10)
    path = tmp_path / "many.pt"
    torch.save([torch.ones(1) * i for i in range(20)], path)
    with pytest.raises(GanforgeError, match=r"declares 2\d records in a .* directory, more than the 10 of any torch"):
        zipcheck.verify_file(path, READER)


# ---------------------------------------------------------------- files that are no torch zip archive


def test_a_legacy_torch_file_is_refused_with_the_way_round(tmp_path):
    path = tmp_path / "old.pth"
    torch.save({"fc.weight": torch.ones(2, 2)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(ConfigError, match=r"weights file .*old.pth is in torch's legacy format \(before PyTorch "
                                          r"1.6\), whose records carry no checksum .*torch.save\(torch.load\("):
        load_weights(path)
    with pytest.raises(CheckpointError, match=r"is in torch's legacy format .*ganforge never wrote it"):
        checkpoint.load(path)
    converted = tmp_path / "G.pth"  # the way round the message gives
    torch.save(torch.load(path, weights_only=True), converted)
    assert list(load_weights(converted)[0]) == ["fc.weight"]


def test_a_cut_archive_is_not_a_readable_one(ckpt, tmp_path):
    cut = tmp_path / "cut.pt"
    cut.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size - 100])
    with pytest.raises(CheckpointError, match=r"cut.pt is not a readable checkpoint \(it is cut short: no zip "
                                              r"directory at its end\); is the file complete\?"):
        checkpoint.load(cut)


# ---------------------------------------------------------------- the pickle, measured before it is built


def _pickled(obj) -> io.BytesIO:
    return io.BytesIO(pickle.dumps(obj, protocol=2))


def test_the_scan_passes_what_torch_save_writes(ckpt):
    with zipfile.ZipFile(ckpt) as archive, archive.open("archive/data.pkl") as stream:
        assert zipcheck.scan_pickle(stream, items=MAX_HISTORY_ROWS) is None


@pytest.mark.parametrize("obj, bounds, problem", [
    ([{"epoch": i} for i in range(101)], {"items": 100}, "a list or dict of more than 100 items"),
    ({i: i for i in range(101)}, {"items": 100}, "a list or dict of more than 100 items"),
    (list(range(101)), {"items": 100}, "a list or dict of more than 100 items"),
    (list(range(100)), {"items": 100}, None),
    ([0] * 500, {"max_ops": 100}, "more than 100 pickle operations (values for torch to build)"),
    ("deep", {"max_depth": 32}, "values nested more than 32 deep"),
    ("deep-tuples", {"max_depth": 32}, "values nested more than 32 deep"),
    ("shared", {"max_depth": 32}, "values nested more than 32 deep"),
])
def test_the_scan_measures_without_building(obj, bounds, problem):
    if obj == "deep":
        obj = []
        for _ in range(40):
            obj = [obj]
    elif obj == "deep-tuples":
        obj = ()
        for _ in range(40):
            obj = (obj, 1)
    elif obj == "shared":  # the same list, appended into a new one 40 times: memo references count too
        inner, outer = [], None
        for _ in range(40):
            outer = [inner]
            inner = outer
        obj = [outer, outer]
    assert zipcheck.scan_pickle(_pickled(obj), **bounds) == problem


def _save_with_history(src: Path, dest: Path, rows: int) -> Path:
    state = torch.load(src, weights_only=True)
    row = dict(state["history"][0])
    state["history"] = [dict(row, epoch=i + 1) for i in range(rows)]
    torch.save(state, dest)
    return dest


def test_a_checkpoint_history_too_long_is_refused_before_it_is_built(ckpt, tmp_path, monkeypatch):
    long = _save_with_history(ckpt, tmp_path / "long.pt", 3000)
    monkeypatch.setattr(checkpoint, "READER", zipcheck.Reader(**{**vars(checkpoint.READER), "items": 2000}))
    built = []
    monkeypatch.setattr(checkpoint.torch, "load", lambda *a, **k: built.append(1))
    with pytest.raises(CheckpointError, match=r"long.pt holds a list or dict of more than 2,000 items in data.pkl; "
                                              r"is it the right file\?"):
        checkpoint.load(long)
    assert not built  # refused before torch unpickled a row


def test_a_deeply_nested_checkpoint_is_refused(ckpt, tmp_path):
    state = torch.load(ckpt, weights_only=True)
    deep = []
    for _ in range(100):
        deep = [deep]
    state["config"]["notes"] = deep
    torch.save(state, tmp_path / "deep.pt")
    with pytest.raises(CheckpointError, match=r"holds values nested more than 32 deep in data.pkl"):
        checkpoint.load(tmp_path / "deep.pt")


def test_a_pipe_in_the_place_of_a_torch_file_is_refused_without_waiting(tmp_path):
    import os

    fifo = tmp_path / "cached.pt"
    os.mkfifo(fifo)
    with pytest.raises(GanforgeError, match=r"torch file .*cached.pt is not a regular file \(a device or a pipe\?\)"):
        zipcheck.verify_file(fifo, READER)
