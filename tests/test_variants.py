"""Every registered variant: train a step, export, run in onnxruntime, compare with eager.

A variant added to VARIANTS without a tiny config in tests/conftest.py fails here.
"""

import numpy as np
import pytest
import torch

from ganforge.export import export
from ganforge.inference import Generator
from ganforge.training import VARIANTS, checkpoint, train
from tests.conftest import TINY, tiny_sets


def test_every_variant_has_a_tiny_test_config():
    assert set(VARIANTS) == set(TINY)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_train_export_serve(name, tmp_path, fake_data):
    result = train(name, epochs=1, sets=tiny_sets(name, fake_data), runs_dir=tmp_path, progress=False, device="cpu")
    exported = export(result.run_dir, formats="onnx")
    G, variant, _ = checkpoint.build_generator(checkpoint.load(result.checkpoint))
    gen = Generator(exported.artifacts["onnx"], device="cpu")
    assert gen.info.variant == name and gen.info.kind == variant.kind
    z = gen.sample_noise(5, seed=0)
    with torch.no_grad():
        want = G(torch.from_numpy(z)).numpy()
    got = gen(z)
    assert got.shape == (5, *G.sample_shape)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
