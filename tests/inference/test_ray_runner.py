"""A sharded job on a real Ray cluster (ganforge.inference.ray_runner): a head and one worker node
started here (tests/inference/ray_cluster.py), each its own ``ray start`` process. The same files
as run_local's, byte for byte; a driver killed midway and rerun makes only the missing shards; a
worker process killed during the job is restarted by Ray and the job completes, the same files.

Skipped (with the reason) only when ray is not installed: the ``ray`` extra, which ``dev`` holds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganforge.errors import GanforgeError
from ganforge.inference import Generator
from ganforge.inference.request import GenerationRequest
from ganforge.inference.sharded import job_from_request, job_options
from ganforge.inference.shards import run_local

ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'ganforge[ray]' to run the Ray tests")

from ganforge.inference import ray_runner  # noqa: E402
from tests.inference.ray_cluster import Cluster, auth_env, env  # noqa: E402

MODEL = Path(__file__).resolve().parents[1] / "data" / "tiny-image.onnx"
KILL_POLL_S = 0.002  # how often the driver test looks for the first shard
MAX_POLLS = 200_000  # ... at most (the driver's gan-infer ends long before)


def make_job(out: Path, *, n=6000, start=100, form="npy", size=256, seed=5):
    request = GenerationRequest(model=MODEL, n=n, start=start, seed=seed, out=f"{out}/", shard_format=form,
                                shard_size=size)
    return job_from_request(request, Generator(MODEL, **job_options(request.generator_options())), MODEL)


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def local_tree(tmp: Path, **job) -> dict[str, bytes]:
    j = make_job(tmp, **job)
    run_local(j)
    return tree(tmp)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head and a worker node (1 CPU each) on this machine; this process connected as a driver."""
    tmp = tmp_path_factory.mktemp("ray")
    nodes = Cluster(tmp)
    patch = pytest.MonkeyPatch()
    try:
        for name, value in auth_env().items():
            patch.setenv(name, value)  # this process is a driver too
        nodes.start()
        ray.init(address=nodes.address, log_to_driver=False, logging_level="WARNING")
        nodes.wait_nodes(ray, 2)
        yield nodes
    finally:
        if ray.is_initialized():
            ray.shutdown()  # before the cluster goes: a driver left connected waits a minute for it
        nodes.stop()
        patch.undo()


def test_a_ray_run_writes_the_local_runs_files(cluster, tmp_path):
    job = make_job(tmp_path / "ray", form="npy")
    seen = []
    result = ray_runner.run_ray(job, progress=lambda *a: seen.append(a))
    assert (result.made, result.total, result.samples, result.workers) == (24, 24, 6000, 2)
    assert seen[-1] == (24, 24, 6000) and [a[0] for a in seen] == list(range(1, 25))
    assert tree(tmp_path / "ray") == local_tree(tmp_path / "local", form="npy")
    again = ray_runner.run_ray(job)  # complete: nothing to make, the cluster not even asked
    assert (again.made, again.already) == (0, 24)


def test_png_shards_on_ray_are_the_local_runs(cluster, tmp_path):
    job = make_job(tmp_path / "ray", n=700, start=0, form="png", size=128)
    assert ray_runner.run_ray(job, actors=1).made == 6
    assert tree(tmp_path / "ray") == local_tree(tmp_path / "local", n=700, start=0, form="png", size=128)


def test_a_killed_driver_reruns_to_the_same_files_making_only_the_missing(cluster, tmp_path):
    out = tmp_path / "ray"
    command = [sys.executable, "-m", "ganforge.inference.cli", "--model", str(MODEL), "--range", "0:20000",
               "--seed", "5", "--out", f"{out}/", "--format", "npy", "--shard-size", "100", "--ray", cluster.address]
    driver = subprocess.Popen(command, env=env(cluster.tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(MAX_POLLS):
        if driver.poll() is not None or any(out.glob("shard-*.npy")):
            break
        time.sleep(KILL_POLL_S)
    driver.send_signal(signal.SIGKILL)
    driver.communicate(timeout=60)
    # the actors may still commit the shards they had in hand (whole, as ever) until Ray ends them
    before, seen = {}, None
    for _ in range(200):  # bounded: settles within a second or two
        now = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("shard-*.npy")}
        if now == seen:
            before = now
            break
        seen = now
        time.sleep(0.25)
    before = before or seen
    assert 0 < len(before) < 200, f"the driver was killed after {len(before)} of 200 shards"
    rerun = subprocess.run(command, env=env(cluster.tmp), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"made {200 - len(before)} of 200 shards, {len(before)} already there" in rerun.stdout + rerun.stderr
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("shard-*.npy")
            if p.name in before} == before  # the shards already there were left alone
    assert tree(out) == local_tree(tmp_path / "local", n=20000, start=0, size=100)


def shard_makers(pids: set[int]) -> list[int]:
    """The ShardMaker actors' processes among ``pids`` (Ray titles a worker process ray::<Class>)."""
    found = []
    for pid in sorted(pids):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::ShardMaker"):
                found.append(pid)
        except OSError:
            continue
    return found


def test_a_worker_process_killed_mid_job_is_restarted_and_the_files_are_the_same(cluster, tmp_path):
    job = make_job(tmp_path / "ray", n=12000, start=0, size=200)
    killed = []

    def kill_the_worker_nodes_actor(done, todo, samples):
        if done == 1:  # one shard in: the other 59 still to come
            pids = shard_makers(cluster.worker_node_pids())
            assert pids, "no ShardMaker process on the worker node"
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            killed.extend(pids)

    result = ray_runner.run_ray(job, progress=kill_the_worker_nodes_actor)
    assert killed and result.made == 60 and result.workers == 2
    assert not any(Path(f"/proc/{pid}").exists() for pid in killed)
    assert tree(tmp_path / "ray") == local_tree(tmp_path / "local", n=12000, start=0, size=200)


def test_an_actor_that_sees_the_folder_commits_its_shards_and_one_that_does_not_sends_them(cluster, tmp_path):
    job = make_job(tmp_path / "ray", n=600, start=0, size=256)
    ray_runner.prepare(job)
    (tmp_path / "probe").write_text("a" * 32)
    model = [ray.put(ray_runner.model_payload(job))]
    maker = ray.remote(ray_runner.ShardMaker)
    shard, other, _ = job.shards()
    sees = maker.remote(job, 1, (str(tmp_path / "probe"), "a" * 32))
    assert ray.get(sees.ready.remote(model))[3] is True
    assert ray.get(sees.make.remote(shard, model)) == shard  # only its name back: the file is written
    assert (job.out / shard.name).is_file()
    for probe in (None, (str(tmp_path / "probe"), "b" * 32), (str(tmp_path / "elsewhere"), "a" * 32)):
        blind = maker.remote(job, 1, probe)
        assert ray.get(blind.ready.remote(model))[3] is False
        data = ray.get(blind.make.remote(other, model))
        assert isinstance(data, ray_runner.ShardData) and data.shard == other
        assert not (job.out / other.name).exists()  # the driver commits it
        ray.kill(blind)
    ray.kill(sees)
    ray_runner.commit_shard(job, other, data)
    ray_runner.run_ray(job)
    assert tree(tmp_path / "ray") == local_tree(tmp_path / "local", n=600, start=0, size=256)


def test_the_probe_is_read_only_as_a_small_regular_file(tmp_path):
    token = "c" * 32
    (tmp_path / "probe").write_text(token)
    assert ray_runner.sees_folder((str(tmp_path / "probe"), token))
    (tmp_path / "link").symlink_to(tmp_path / "probe")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "long").write_text(token + "more")
    for name in ("link", "fifo", "long", "absent"):
        assert not ray_runner.sees_folder((str(tmp_path / name), token)), name
    assert not ray_runner.sees_folder(None)


def test_what_ray_cannot_do_is_said_in_one_line(cluster, tmp_path):
    job = make_job(tmp_path / "o", n=600, size=256)
    with pytest.raises(GanforgeError, match=r"^the Ray cluster has 2 CPUs and 0 GPUs; an actor asks for 1 CPUs and 1 "
                                            r"GPUs: lower --ray-cpus/--ray-gpus, or add nodes$"):
        ray_runner.run_ray(job, num_gpus_per_actor=1)
    with pytest.raises(GanforgeError, match="^an actor asks for 0 to 1024 CPUs and 0 to 64 GPUs, not both 0"):
        ray_runner.run_ray(job, num_cpus_per_actor=0)
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["manifest.json"]  # nothing made


def test_an_unreachable_cluster_is_one_line(tmp_path):
    from tests.inference.ray_cluster import free_port

    port = free_port()
    out = subprocess.run([sys.executable, "-m", "ganforge.inference.cli", "--model", str(MODEL), "--n", "10",
                          "--out", f"{tmp_path / 'o'}/", "--ray", f"127.0.0.1:{port}"],
                         env=env(tmp_path), capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out
    assert out.stderr.startswith(f"Error: cannot reach the Ray cluster at 127.0.0.1:{port} (") and \
        out.stderr.endswith("): start it with `ray start --head`, or check --ray's address\n"), out.stderr
    assert out.stderr.count("\n") == 1


def test_ray_options_go_with_a_folder_and_without_workers(tmp_path):
    from click.testing import CliRunner

    from ganforge.inference.cli import main

    def run(*args):
        return CliRunner().invoke(main, ["--model", str(MODEL), "--n", "10", *args])

    got = run("--out", str(tmp_path / "x.npy"), "--ray")
    assert got.exit_code == 1 and "--ray is for a folder output (--out DIR/, a sharded job)" in got.output
    got = run("--out", f"{tmp_path / 'd'}/", "--ray", "--workers", "2")
    assert got.exit_code == 1 and "--workers is local processes and --ray runs the shards on Ray's actors" in got.output
    got = run("--out", f"{tmp_path / 'd'}/", "--ray-actors", "2")
    assert got.exit_code == 2 and "--ray-actors goes with --ray [ADDRESS]" in got.output
    got = run("--out", f"{tmp_path / 'd'}/", "--ray", "nowhere")
    assert got.exit_code == 1 and "--ray 'nowhere' is not an address" in got.output
    assert not (tmp_path / "d").exists() and not (tmp_path / "x.npy").exists()
