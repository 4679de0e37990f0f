"""The shape docs/architecture.md draws: training never imports evaluation or export (what it needs from
them is handed to it), generators honour one declared protocol, configs validate without
changing themselves."""

import ast
import dataclasses
from pathlib import Path

import pytest
import torch

import ganforge
from ganforge.training import VARIANTS, GeneratorModel
from ganforge.training.variants.wgan import WGANConfig
from tests.conftest import TINY

PACKAGE = Path(ganforge.__file__).parent


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_training_never_imports_evaluation_or_export():
    files = [p for p in (PACKAGE / "training").rglob("*.py") if p.name != "__main__.py"]  # (an entry script)
    assert len(files) > 15
    bad = {str(p.relative_to(PACKAGE)): sorted(m for m in _imports(p) if m.startswith(("ganforge.evaluation",
                                                                                        "ganforge.export")))
           for p in files}
    assert not {k: v for k, v in bad.items() if v}


def test_the_import_scan_sees_imports_inside_functions(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from ganforge.evaluation.scoring import make_scorer\n")
    assert "ganforge.evaluation.scoring" in _imports(f)


def _config(name, fake_data):
    """The variant's tiny test config, with what its data would fill in (wgan: the image size)."""
    from ganforge.training.config import resolve

    cfg = resolve(VARIANTS[name], sets=[f"{k}={v}" for k, v in TINY[name](fake_data).items() if k != "data"])
    return dataclasses.replace(cfg, image_size=[12, 12], channels=1) if name == "wgan" else cfg


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_generator_honours_the_protocol(name, fake_data):
    v = VARIANTS[name]
    cfg = _config(name, fake_data)
    G = v.generator(cfg)
    assert isinstance(G, GeneratorModel)
    assert G.num_classes is None and G.class_embedding is None
    x = G(torch.randn(2, G.latent_dim))
    assert tuple(x.shape) == (2, *G.sample_shape)


@pytest.mark.parametrize("name", sorted(n for n, v in VARIANTS.items() if v.config_cls.SUPPORTS_CONDITIONAL))
def test_the_conditional_preamble_is_the_class_offset(name, fake_data):
    v = VARIANTS[name]
    cfg = dataclasses.replace(_config(name, fake_data), conditional=True, num_classes=3, class_names=["a", "b", "c"])
    G = v.generator(cfg).eval()
    z, y = torch.randn(4, G.latent_dim), torch.tensor([0, 1, 2, 1])
    assert G.num_classes == 3 and G.class_embedding.weight.shape == (3, G.latent_dim)
    assert torch.allclose(G(z, y), G.decode(z + G.class_embedding.weight[y]))
    with pytest.raises(ValueError, match="needs labels"):
        G(z)


def test_wgan_config_validates_without_changing_itself():
    cfg = WGANConfig(image_size=[8])
    assert cfg.image_size == [8, 8]  # one number is a square, from construction on
    before = dataclasses.asdict(cfg)
    cfg.validate()
    assert dataclasses.asdict(cfg) == before
    assert dataclasses.replace(WGANConfig(), image_size=[6]).image_size == [6, 6]
