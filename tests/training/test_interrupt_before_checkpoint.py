"""A second Ctrl-C stops at once: before the run's first checkpoint there is nothing to resume, and
the message says so instead of sending the user to a run that cannot resume (issue 29)."""

import os
import signal

import pytest

from ganforge.training import train
from ganforge.training.stop import Interrupted
from ganforge.training.trainer import Hook

SETS = ["n_rows=64", "sample_count=4"]


class CtrlCTwice(Hook):
    """Ctrl-C twice at the end of epoch ``at``, before the loop writes that epoch's checkpoint."""

    def __init__(self, at: int):
        self.at = at

    def on_epoch_end(self, t, end):
        if end.epoch == self.at:
            os.kill(os.getpid(), signal.SIGINT)  # the first asks for a stop after this step
            os.kill(os.getpid(), signal.SIGINT)  # the second stops at once


def test_a_second_ctrl_c_before_the_first_checkpoint_has_nothing_to_resume(tmp_path):
    with pytest.raises(Interrupted, match=r"interrupted in epoch 1 after .*, before its first checkpoint: "
                                          r"nothing to resume in .*; train again") as caught:
        train("sine", epochs=3, sets=SETS, runs_dir=tmp_path, progress=False, device="cpu", hooks=[CtrlCTwice(1)])
    assert "--resume" not in str(caught.value)
    assert not list(tmp_path.glob("sine-*/checkpoints/last.pt"))


def test_a_second_ctrl_c_after_a_checkpoint_says_how_to_resume(tmp_path):
    with pytest.raises(Interrupted, match=r"interrupted after .* in all; last checkpoint kept: .* holds "
                                          r".*; resume with: gan-train --resume "):
        train("sine", epochs=3, sets=SETS, runs_dir=tmp_path, progress=False, device="cpu", hooks=[CtrlCTwice(2)])
    assert len(list(tmp_path.glob("sine-*/checkpoints/last.pt"))) == 1
