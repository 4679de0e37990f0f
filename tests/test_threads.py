"""ganforge.threads: the cores a process has, and the threads chosen for a command (issue 26)."""

from __future__ import annotations

import pytest

from ganforge import threads
from ganforge.errors import GanforgeError


@pytest.fixture(autouse=True)
def _no_request(monkeypatch):
    """No --threads, and what the fake torches here set stays here: the process's real torch keeps
    its own record (a later gan-train in this process tells its own setting from the user's by it)."""
    for name in ("_torch_set", "_current"):
        monkeypatch.setattr(threads, name, getattr(threads, name))
    threads.use(None)
    yield
    threads.use(None)


def _cgroup(tmp_path, own="0::/job\n", files=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    proc = tmp_path / "cgroup"
    proc.write_text(own)
    for rel, text in (files or {}).items():
        f = tmp_path / "fs" / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return tmp_path / "fs", proc


def test_cgroup_v2_quota_is_read_and_the_smallest_on_the_way_up_counts(tmp_path):
    root, proc = _cgroup(tmp_path, files={"job/cpu.max": "150000 100000\n", "cpu.max": "max 100000\n"})
    assert threads.cgroup_quota(root, proc) == 1.5
    root, proc = _cgroup(tmp_path / "b", files={"job/cpu.max": "max 100000\n", "cpu.max": "100000 100000\n"})
    assert threads.cgroup_quota(root, proc) == 1.0


def test_cgroup_v1_quota_and_none(tmp_path):
    root, proc = _cgroup(tmp_path, own="4:cpu,cpuacct:/docker/x\n0::/\n",
                         files={"cpu,cpuacct/docker/x/cpu.cfs_quota_us": "250000",
                                "cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000"})
    assert threads.cgroup_quota(root, proc) == 2.5
    root, proc = _cgroup(tmp_path / "b", own="1:cpu:/\n0::/\n",
                         files={"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000",
                                "cpu.max": "max 100000"})
    assert threads.cgroup_quota(root, proc) is None
    assert threads.cgroup_quota(tmp_path / "missing", tmp_path / "missing-cgroup") is None


def test_available_cores_is_affinity_capped_by_the_quota_rounded_up():
    assert threads.available_cores({0, 1, 2, 3}, quota=None) == 4
    assert threads.available_cores({0, 1, 2, 3}, quota=1.5) == 2
    assert threads.available_cores({0, 1}, quota=8.0) == 2
    assert threads.available_cores({0, 1, 2, 3}, quota=0.2) == 1
    assert threads.available_cores(set(), quota=None) == 1


def test_idle_cores_from_proc_stat_of_the_affinity_cpus_only(tmp_path):
    stat = tmp_path / "stat"
    snapshots = iter([
        "cpu 0 0 0 0\ncpu0 100 0 0 100 0 0 0 0\ncpu1 100 0 0 100 0 0 0 0\ncpu2 0 0 0 0 0 0 0 0\n",
        # cpu0 sat idle, cpu1 ran other work, cpu2 is not ours (all idle)
        "cpu 0 0 0 0\ncpu0 100 0 0 200 0 0 0 0\ncpu1 200 0 0 100 0 0 0 0\ncpu2 0 0 0 500 0 0 0 0\n",
    ])
    stat.write_text(next(snapshots))
    idle = threads.idle_cores({0, 1}, window=0.1, stat=stat, sleep=lambda s: stat.write_text(next(snapshots)))
    assert idle == pytest.approx(1.0)


def test_option_then_env_then_omp_then_torch_then_size_then_idle_cores():
    quiet = dict(cores=2, idle=2.0)
    assert threads.choose(env={"GANFORGE_THREADS": "3", "OMP_NUM_THREADS": "1"}, requested=2, **quiet).reason \
        == "--threads 2"
    c = threads.choose(env={"GANFORGE_THREADS": "3", "OMP_NUM_THREADS": "1"}, **quiet)
    assert (c.intra, c.source) == (3, "env") and "more than the 2 cores" in c.reason
    c = threads.choose(1e9, env={"OMP_NUM_THREADS": "1"}, **quiet)
    assert (c.intra, c.reason) == (1, "OMP_NUM_THREADS=1, yours")
    c = threads.choose(1e9, env={}, torch_threads=7, **quiet)
    assert (c.intra, c.source) == (7, "torch")
    c = threads.choose(8577 * 32, what="8,577 parameters x 32", env={}, **quiet)
    assert (c.intra, c.inter) == (1, 1) and c.reason == "a tiny model: 8,577 parameters x 32"
    assert str(c) == "threads: 1 intra-op, 1 inter-op (a tiny model: 8,577 parameters x 32)"
    c = threads.choose(55e6, env={}, **quiet)
    assert c.intra == 2 and not c.busy and "idle" in c.reason


def test_a_busy_machine_gets_fewer_threads_never_more_than_the_cores():
    c = threads.choose(55e6, env={}, cores=2, idle=0.1)
    assert c.intra == 1 and c.busy and "busy with other work" in c.reason
    c = threads.choose(55e6, env={}, cores=4, idle=2.2)
    assert c.intra == 2 and c.busy
    c = threads.choose(55e6, env={}, cores=2, idle=9.0)
    assert c.intra == 2


def test_torchrun_processes_share_the_cores():
    c = threads.choose(55e6, env={"LOCAL_WORLD_SIZE": "2"}, cores=4, idle=4.0)
    assert c.intra == 2 and "to 2 processes" in c.reason


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5", ""])
def test_bad_thread_counts_are_one_line(bad):
    if bad == "":
        assert threads.choose(env={"GANFORGE_THREADS": ""}, cores=2, idle=2.0).source == "auto"
        return
    with pytest.raises(GanforgeError) as err:
        threads.choose(env={"GANFORGE_THREADS": bad}, cores=2, idle=2.0)
    assert "\n" not in str(err.value) and "GANFORGE_THREADS must be a whole number >= 1" in str(err.value)
    with pytest.raises(GanforgeError):
        threads.use(bad)


def test_a_bad_omp_value_is_left_to_openmp():
    assert threads.choose(1e9, env={"OMP_NUM_THREADS": "x"}, cores=2, idle=2.0).source == "auto"


def test_loader_workers_stay_within_the_core_budget():
    assert threads.Choice(1, 1, "", cores=2, idle=2.0).loader_workers() == 1
    assert threads.Choice(1, 1, "", cores=2, idle=0.2).loader_workers() == 0
    assert threads.Choice(2, 1, "", cores=2, idle=2.0).loader_workers() == 0
    assert threads.Choice(1, 1, "", cores=32, idle=None).loader_workers() == threads.MAX_LOADER_WORKERS


class _Options:
    def __init__(self):
        self.entries = {}
        self.intra_op_num_threads = self.inter_op_num_threads = 0

    def add_session_config_entry(self, key, value):
        self.entries[key] = value


def test_onnxruntime_options_get_the_threads_and_no_spinning_when_busy():
    busy, quiet = _Options(), _Options()
    threads.apply_ort(busy, threads.Choice(2, 1, "", cores=4, idle=2.0))
    assert (busy.intra_op_num_threads, busy.inter_op_num_threads) == (2, 1)
    assert busy.entries["session.intra_op.allow_spinning"] == "0"
    threads.apply_ort(quiet, threads.Choice(4, 1, "", cores=4, idle=4.0))
    assert quiet.intra_op_num_threads == 4 and not quiet.entries
    assert threads.openvino_config(threads.Choice(3, 1, "")) == {"INFERENCE_NUM_THREADS": 3}


def test_real_onnxruntime_session_options_take_them():
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    threads.apply_ort(options, threads.Choice(1, 1, "", cores=2, idle=0.0))
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


class _Torch:
    def __init__(self, intra=2, inter=2, started=False):
        self.intra, self.inter, self.started = intra, inter, started

    def get_num_threads(self):
        return self.intra

    def set_num_threads(self, n):
        self.intra = n

    def get_num_interop_threads(self):
        return self.inter

    def set_num_interop_threads(self, n):
        if self.started:
            raise RuntimeError("Error: cannot set number of interop threads after parallel work has started")
        self.inter = n


def test_apply_torch_sets_both_and_keeps_inter_op_once_started(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("GANFORGE_THREADS", raising=False)
    monkeypatch.setattr(threads, "affinity", lambda: {0, 1})
    lines = []
    t = _Torch()
    c = threads.apply_torch(t, 1000, "a sine", log=lines.append)
    assert (t.intra, t.inter) == (1, 1) and lines == [str(c)] and threads.current() is c
    t = _Torch(intra=1, started=True)  # 1 is what ganforge set last: not the user's
    c = threads.apply_torch(t, 1000, "a sine")
    assert t.intra == 1 and c.inter == 2 and "inter-op kept at 2" in c.reason


def test_a_resume_keeps_its_runs_threads_and_deterministic_ignores_the_load(tmp_path):
    c = threads.choose(55e6, env={}, cores=2, idle=0.1, keep=2)
    assert (c.intra, c.source) == (2, "run") and "a resume computes as the run did" in c.reason
    assert threads.choose(55e6, env={"GANFORGE_THREADS": "1"}, cores=2, idle=0.1, keep=2).intra == 1  # yours first
    c = threads.choose(55e6, env={}, cores=2, idle=0.1, steady=True)
    assert c.intra == 2 and "--deterministic: whatever the load" in c.reason
    assert threads.choose(1000, env={}, cores=2, idle=2.0, steady=True).intra == 1  # tiny stays tiny
    (tmp_path / "config.json").write_text('{"threads": 3}')
    assert threads.recorded(tmp_path / "config.json") == 3
    for text in ('{"threads": true}', '{"threads": 0}', "[]", "not json"):
        (tmp_path / "config.json").write_text(text)
        assert threads.recorded(tmp_path / "config.json") is None
    assert threads.recorded(tmp_path / "missing.json") is None


def test_own_running_threads_are_those_in_state_r(tmp_path):
    for i, state in enumerate("RSRD"):
        (tmp_path / str(i)).mkdir()
        (tmp_path / str(i) / "stat").write_text(f"{100 + i} (python (x)) {state} 1 2 3")
    assert threads._own_running(tmp_path) == 2
    assert threads._own_running(tmp_path / "missing") == 1


def test_a_zero_window_counts_the_threads_runnable_now_not_the_last_minutes_load(monkeypatch, tmp_path):
    # the load average still counts the command that just ended (it made a quiet machine look 0.7
    # cores busy to gan-infer in the benchmark): a zero window reads procs_running instead, the
    # least of a few reads (a process passing by is not counted), less this process itself
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (1.7, 0.0, 0.0))
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads, "_own_running", lambda: 1)  # this process: the caller alone
    stat = tmp_path / "stat"
    reads = iter(["procs_running 4", "procs_running 2", "procs_running 3", "procs_running 2", "procs_running 5"])
    slept = []
    stat.write_text(next(reads))
    idle = threads.idle_cores({0, 1}, window=0, stat=stat, sleep=lambda s: (slept.append(s), stat.write_text(next(reads))))
    assert idle == 1.0 and len(slept) == 4 and sum(slept) < 0.01  # one other runnable: 1 of 2 idle
    stat.write_text("procs_running 1\n")
    assert threads.idle_cores({0, 1}, window=0, stat=stat, sleep=lambda s: None) == 2.0
    monkeypatch.setattr(threads, "_own_running", lambda: 3)  # a library's pool still running from its start
    stat.write_text("procs_running 3\n")
    assert threads.idle_cores({0, 1}, window=0, stat=stat, sleep=lambda s: None) == 2.0


def test_a_host_wide_count_is_shared_over_the_hosts_cpus_and_the_load_average_is_the_fallback(monkeypatch, tmp_path):
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 8)
    monkeypatch.setattr(threads, "_own_running", lambda: 1)
    stat = tmp_path / "stat"
    stat.write_text("procs_running 9\n")  # 8 others on a host of 8: 2 of them on our 2 CPUs
    assert threads.idle_cores({0, 1}, window=0, stat=stat, sleep=lambda s: None) == 0.0
    stat.write_text("procs_running 5\n")
    assert threads.idle_cores({0, 1}, window=0, stat=stat, sleep=lambda s: None) == 1.0
    stat.write_text("cpu0 1 2 3 4\n")  # no procs_running line: the load average
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (4.0, 0.0, 0.0))
    assert threads.idle_cores({0, 1}, window=0, stat=stat, sleep=lambda s: None) == 1.0
