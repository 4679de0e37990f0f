"""Shared fixtures: tiny seeded runs trained once per session, on data the code makes itself."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
# the micro-batch cache of gan-infer/gan-bench: never the user's ~/.cache (subprocesses inherit it)
os.environ.setdefault("GANFORGE_CACHE_DIR", tempfile.mkdtemp(prefix="ganforge-test-cache-"))
# onnxruntime alone unless a test asks for more: OpenVINO's threads beside torch's in the pytest process
# made the in-process SIGINT test segfault; tests of the auto choice with OpenVINO run it in a child
os.environ["GANFORGE_PROVIDER"] = "onnxruntime"

from tests.fakedata import write_cifar, write_idx, write_images

# Tiny configs per registered variant, given the folder of fake data: a few seconds of CPU each.
TINY = {
    "sine": lambda data: {"n_rows": 96, "batch_size": 32, "sample_count": 4, "g_hidden": "8,16", "d_hidden": "16,8"},
    "mnist-mlp": lambda data: {"data": data / "idx", "latent_size": 8, "hidden_size": 16, "batch_size": 16,
                               "sample_count": 4},
    "dcgan": lambda data: {"data": data / "cifar", "latent_dim": 8, "g_features": 4, "d_features": 4,
                           "batch_size": 8, "sample_count": 4, "classes": "automobile,truck"},
    "wgan": lambda data: {"data": data / "idx", "latent_dim": 8, "hidden_dim": 4, "n_layers": 3, "batch_size": 8,
                          "n_critic": 2, "sample_count": 4},
    "wgan-gp": lambda data: {"data": data / "images", "image_size": 16, "latent_dim": 8, "g_features": 4,
                             "d_features": 4, "batch_size": 4, "n_critic": 2, "sample_count": 4},
}


def tiny_sets(variant: str, data=None) -> list[str]:
    return [f"{k}={v}" for k, v in TINY[variant](data).items()]


@pytest.fixture(scope="session")
def fake_data(tmp_path_factory):
    """Tiny data in the real formats: IDX files (gzipped), a CIFAR-10 folder, a folder of PNGs."""
    root = tmp_path_factory.mktemp("data")
    write_idx(root / "idx", n=40)
    write_cifar(root / "cifar", per_batch=12)
    write_images(root / "images", n=12, size=(20, 18), classes=("faces",))
    return root


@pytest.fixture(scope="session")
def sine_run(tmp_path_factory):
    """A 3-epoch sine run, shared read-only by tests that only inspect or export it."""
    from ganforge.training import train

    runs = tmp_path_factory.mktemp("runs")
    result = train("sine", epochs=3, sets=tiny_sets("sine"), runs_dir=runs, progress=False, device="cpu")
    return result


@pytest.fixture(scope="session")
def sine_export(sine_run, tmp_path_factory):
    from ganforge.export import export

    out = tmp_path_factory.mktemp("export")
    return export(sine_run.run_dir, formats="all", out_dir=out)
