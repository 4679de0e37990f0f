"""After Ctrl-C the run still ends as a finished one does: train.log's ``run: ... in all`` line, then
one line naming the checkpoint, what it holds and the resume command; the checkpoint is whole
(a ``torch.load`` of it works, no temporary is left) and the resume trains on from it.

The interrupts come from inside the run at a chosen step: a hook raising KeyboardInterrupt (a
Ctrl-C that stops at once), or the step asking the run's StopRequest to stop as SIGINT does."""

import signal

import pytest

from ganforge.training import Hook, checkpoint, loop, train
from ganforge.training.stop import Interrupted

SETS = ["n_rows=128", "sample_count=4"]  # 4 batches of 32 an epoch


def _run(tmp_path, **keys):
    return dict(runs_dir=tmp_path / "runs", progress=False, device="cpu", **keys)


def _whole(run_dir):
    """The checkpoint loads (every part checked) and no temporary of it is left beside it."""
    state = checkpoint.load(run_dir / "checkpoints" / "last.pt")
    assert not [p.name for p in (run_dir / "checkpoints").iterdir() if p.name != "last.pt"]
    return state


class CtrlCAt(Hook):
    """KeyboardInterrupt at the end of epoch ``epoch`` (step ``epoch`` x 4), before last.pt gets that epoch."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, t, end):
        if end.epoch == self.epoch:
            raise KeyboardInterrupt


def test_a_ctrl_c_from_a_hook_ends_with_the_summary_and_the_last_whole_checkpoint(tmp_path):
    with pytest.raises(Interrupted) as caught:
        train("sine", epochs=4, hooks=[CtrlCAt(3)], sets=SETS, **_run(tmp_path))
    run_dir = (tmp_path / "runs" / "latest").resolve()
    message = str(caught.value)
    assert message.startswith("interrupted after ") and " in all; last checkpoint kept: " in message
    assert f"{run_dir}/checkpoints/last.pt holds the end of epoch 2; resume with: gan-train --resume {run_dir}" \
        in message  # epoch 3 ended in memory, but its checkpoint was never written
    state = _whole(run_dir)
    assert (state["epoch"], state["step"]) == (2, 8)
    log = (run_dir / "train.log").read_text().splitlines()
    assert any("interrupted at once in epoch 3 (step 12)" in line and line.endswith("holds the end of epoch 2")
               for line in log)
    assert log[-1].split(" ", 2)[2].startswith("run: ") and " in all (" in log[-1]  # the whole run's time
    resumed = train(resume=run_dir, **_run(tmp_path))
    assert (resumed.epochs, resumed.epochs_run) == (4, 2)


def test_a_ctrl_c_before_any_checkpoint_says_there_is_nothing_to_resume(tmp_path):
    with pytest.raises(Interrupted, match=r"interrupted in epoch 1 after .*, before its first checkpoint: nothing "
                                          r"to resume in .*; train again"):
        train("sine", epochs=2, hooks=[CtrlCAt(1)], sets=SETS, **_run(tmp_path))
    assert not list((tmp_path / "runs").glob("*/checkpoints/*"))


@pytest.mark.parametrize("at_once", [False, True])
def test_a_ctrl_c_inside_an_epoch_names_the_position_last_pt_holds(tmp_path, monkeypatch, at_once):
    """Step 7 is the third batch of epoch 2. A first Ctrl-C there checkpoints after it; one that stops
    at once keeps --checkpoint-every's last (after step 6: batch 2)."""
    step = loop._train_step

    def stepping(t, real, labels, sums):
        step(t, real, labels, sums)
        if t.state.step == 7:
            if at_once:
                raise KeyboardInterrupt
            t.stop._handle(signal.SIGINT, None)  # as SIGINT's handler does: stop after this step

    monkeypatch.setattr(loop, "_train_step", stepping)
    with pytest.raises(Interrupted) as caught:
        train("sine", epochs=3, checkpoint_every=3, sets=SETS, **_run(tmp_path))
    run_dir = (tmp_path / "runs" / "latest").resolve()
    batch = 2 if at_once else 3
    assert f"checkpoint {'kept' if at_once else 'written'}: {run_dir}/checkpoints/last.pt holds epoch 2, after " \
           f"batch {batch} of 4; resume with: gan-train --resume {run_dir}" in str(caught.value)
    state = _whole(run_dir)
    assert (state["epoch"], state["step"], state["partial"]["pos"]) == (1, 4 + batch, batch)
    assert (run_dir / "train.log").read_text().splitlines()[-1].split(" ", 2)[2].startswith("run: ")
    monkeypatch.setattr(loop, "_train_step", step)
    resumed = train(resume=run_dir, **_run(tmp_path))
    assert resumed.epochs == 3 and _whole(run_dir)["step"] == 12
