"""The shard contract (ganforge.inference.shards): shards are fixed ranges of the seed, each one's
bytes are the same slice of the whole, committed whole and never over another, and a job run
in one process or in worker processes, once or resumed, gives the same files."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.errors import GanforgeError
from ganforge.inference import Generator, keyed
from ganforge.inference.render import to_uint8
from ganforge.inference.request import GenerationRequest
from ganforge.inference.sharded import job_from_folder, job_from_request, job_options
from ganforge.inference.shards import (SHARD_SIZE, Shard, ShardJob, commit_shard, compute_shard, default_shard_size,
                                       prepare, run_local)
from tests.leftovers import staging_leftover

DATA = Path(__file__).resolve().parents[1] / "data"
IMAGE, COND = DATA / "tiny-image.onnx", DATA / "tiny-cond.onnx"


def make_job(out, model=IMAGE, *, n=2500, start=300, seed=3, form="npy", size=1024, labels=None, workers=1):
    request = GenerationRequest(model=model, n=n, start=start, seed=seed, out=f"{out}/", shard_format=form,
                                shard_size=size, labels=labels, workers=workers)
    gen = Generator(model, **job_options(request.generator_options()))
    return job_from_request(request, gen, model), gen


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_shards_are_fixed_ranges_of_the_seed(tmp_path):
    job, _ = make_job(tmp_path / "o", n=2500, start=300, size=1024)
    assert [(s.index, s.start, s.stop, s.name) for s in job.shards()] == [
        (0, 300, 1024, "shard-000000.npy"), (1, 1024, 2048, "shard-000001.npy"), (2, 2048, 2800, "shard-000002.npy")]
    assert Shard(123, 0, 1, "png").name == "shard-000123"
    assert default_shard_size([784]) == SHARD_SIZE == 10 * keyed.BLOCK
    assert default_shard_size([3, 64, 64]) % keyed.BLOCK == 0 and default_shard_size([3, 64, 64]) * 3 * 64 * 64 * 4 <= 64 << 20
    assert default_shard_size([3, 1024, 1024]) == 4  # a power of two within 64 MiB when a block would not fit


def test_a_shard_is_the_same_slice_of_the_whole(tmp_path):
    job, gen = make_job(tmp_path / "o")
    whole = gen.generate(job.n, job.seed, start=job.start)
    got = []
    for shard in job.shards():
        data = compute_shard(job, shard, gen)
        commit_shard(job, shard, data)
        got.append(np.load(job.out / shard.name))
        assert data.npy == (job.out / shard.name).read_bytes()
    assert np.array_equal(np.concatenate(got), whole)


def test_given_labels_split_the_range_as_generate_does(tmp_path):
    job, gen = make_job(tmp_path / "o", COND, n=3000, start=0, labels=("0", "2", "1"))
    assert run_local(job, gen=gen).made == 3
    want = np.repeat(np.array([0, 2, 1]), 1000)
    assert np.array_equal(job.labels_of(0, 3000), want)
    whole = gen.generate(3000, 3, labels=want)
    assert np.array_equal(np.concatenate([np.load(job.out / s.name) for s in job.shards()]), whole)
    assert json.loads((job.out / "manifest.json").read_text())["labels"]["indices"] == [0, 2, 1]


def test_png_shards_hold_the_quantised_samples(tmp_path):
    job, gen = make_job(tmp_path / "o", form="png", n=40, start=1010, size=16)
    run_local(job, gen=gen)
    assert [s.name for s in job.shards()] == ["shard-000063", "shard-000064", "shard-000065"]
    assert sorted(p.name for p in (job.out / "shard-000063").iterdir()) == [f"sample-0{i}.png" for i in range(1010, 1024)]
    sample = gen.generate(1, 3, start=1030)[0]
    pixels = np.asarray(Image.open(job.out / "shard-000064" / "sample-01030.png"))
    assert np.array_equal(pixels, to_uint8(sample, job.value_range).transpose(1, 2, 0))


def test_commit_never_writes_over_a_complete_shard(tmp_path):
    job, gen = make_job(tmp_path / "o")
    prepare(job)
    first, second = job.shards()[:2]
    data = compute_shard(job, first, gen)
    commit_shard(job, first, data)
    commit_shard(job, first, data)  # the same bytes again: fine
    other = compute_shard(job, second, gen)
    with pytest.raises(GanforgeError, match="already with other content"):
        commit_shard(job, first, type(other)(first, npy=other.npy[: len(data.npy)]))
    assert (job.out / first.name).read_bytes() == data.npy
    assert [p.name for p in job.out.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_workers_and_resume_give_the_same_files(tmp_path):
    one, gen = make_job(tmp_path / "one", form="png", n=300, start=0, size=64)
    assert run_local(one, gen=gen).line() == "made 5 of 5 shards, 0 already there"
    two, _ = make_job(tmp_path / "two", form="png", n=300, start=0, size=64)
    result = run_local(two, workers=2)
    assert result.workers == 2 and tree(one.out) == tree(two.out)
    import shutil

    shutil.rmtree(two.out / "shard-000001")
    (two.out / "shard-000003" / "sample-00200.png").unlink()  # a damaged shard is not "missing": --verify finds it
    kept = (two.out / "shard-000000" / "sample-00000.png").stat().st_mtime_ns
    assert run_local(two, workers=2).line() == "made 1 of 5 shards, 4 already there"
    assert (two.out / "shard-000000" / "sample-00000.png").stat().st_mtime_ns == kept
    assert tree(two.out / "shard-000001") == tree(one.out / "shard-000001")


def test_a_folder_of_another_job_is_refused(tmp_path):
    job, gen = make_job(tmp_path / "o", seed=3)
    run_local(job, gen=gen)
    before = tree(job.out)
    other, _ = make_job(tmp_path / "o", seed=4, size=2048)
    with pytest.raises(GanforgeError) as info:
        run_local(other)
    assert str(info.value).startswith(f"{job.out} holds another job: its seed, shard size differ (there 3, asked 4)")
    assert "write to another --out, or delete the folder" in str(info.value)
    assert tree(job.out) == before
    assert job_from_folder(job.out).manifest() == job.manifest()


def test_a_folder_with_other_files_is_refused(tmp_path):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "notes.txt").write_text("mine")
    with pytest.raises(GanforgeError, match="holds files and no manifest.json"):
        make_job(tmp_path / "o")


def test_leftovers_of_a_killed_run_are_removed(tmp_path):
    job, gen = make_job(tmp_path / "o")
    prepare(job)
    dead = 2**22 + 12345  # above the default pid_max of 4,194,304: no such process
    staging_leftover(job.out, "shard-000001.npy", pid=dead, token="abcd1234")
    staging_leftover(job.out, "shard-000002", pid=dead, token="abcd1235", folder_output=True)
    alive = staging_leftover(job.out, "shard-000000.npy", pid=os.getpid(), token="abcd1236")
    run_local(job, gen=gen)
    assert sorted(p.name for p in job.out.iterdir()) == sorted(
        [alive.name, "manifest.json", *(s.name for s in job.shards())])


def test_job_checks(tmp_path):
    base = dict(model=str(IMAGE), model_sha256="0" * 64, seed=0, out=tmp_path, sample_shape=(3, 8, 8))
    with pytest.raises(GanforgeError, match="stop must be greater"):
        ShardJob(start=5, stop=5, form="npy", **base)
    with pytest.raises(GanforgeError, match="unknown shard format 'tif'"):
        ShardJob(start=0, stop=5, form="tif", **base)
    with pytest.raises(GanforgeError, match="more than 100,000"):
        ShardJob(start=0, stop=10**9, form="npy", shard_size=1000, **base)
    with pytest.raises(GanforgeError, match="shard size must be >= 1"):
        ShardJob(start=0, stop=5, form="npy", shard_size=0, **base)
    with pytest.raises(GanforgeError, match="in memory"):
        ShardJob(start=0, stop=5, form="npy", shard_size=10**8, **base)
