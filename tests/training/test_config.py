import json

import pytest

from ganforge.errors import ConfigError
from ganforge.training.config import coerce, parse_set, resolve
from ganforge.training.variants import VARIANTS, get_variant


def _resolve(**kw):
    return resolve(get_variant("sine"), **kw)


def test_defaults_follow_the_source_where_they_learn():
    cfg = _resolve()
    assert (cfg.latent_dim, cfg.sample_len, cfg.batch_size, cfg.epochs, cfg.n_rows) == (4, 32, 32, 300, 1000)
    assert cfg.learning_rate == 3e-3 and cfg.beta1 == 0.5


def test_source_preset_is_selectable():
    cfg = _resolve(preset="source")
    assert cfg.learning_rate == 2e-5 and cfg.beta1 == 0.9 and cfg.epochs == 300


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="presets: source"):
        _resolve(preset="fast")


def test_set_is_typed():
    cfg = _resolve(sets=["epochs=7", "learning_rate=0.01", "latent_dim=6"])
    assert cfg.epochs == 7 and isinstance(cfg.epochs, int)
    assert cfg.learning_rate == 0.01 and cfg.latent_dim == 6


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as err:
        _resolve(sets=["latnet_dim=3"])
    msg = str(err.value)
    assert "latnet_dim" in msg and "latent_dim" in msg and "batch_size" in msg


@pytest.mark.parametrize("item, fragment", [
    ("epochs=1.5", "epochs expects int, got .1.5."),
    ("learning_rate=fast", "learning_rate expects float"),
    ("epochs=0", "epochs must be >= 1"),
    ("beta1=1.5", "beta1 must be in [0, 1)"),
    ("noequals", "key=value"),
])
def test_bad_values_are_named(item, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace(")", r"\)")):
        _resolve(sets=[item])


def test_config_file_and_precedence(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"variant": "sine", "epochs": 12, "batch_size": 16}))
    cfg = _resolve(config_file=f, sets=["epochs=5"])
    assert cfg.batch_size == 16 and cfg.epochs == 5  # --set beats the file


def test_config_file_errors_name_file_and_key(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"batch_sise": 16}))
    with pytest.raises(ConfigError, match=r"'batch_sise' in .*c.json"):
        _resolve(config_file=f)
    f.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        _resolve(config_file=f)
    f.write_text(json.dumps({"variant": "dcgan"}))
    with pytest.raises(ConfigError, match="for variant 'dcgan'"):
        _resolve(config_file=f)
    with pytest.raises(ConfigError, match="does not exist"):
        _resolve(config_file=tmp_path / "missing.json")


def test_coerce_optional_and_bool():
    assert coerce("data", "null", str | None) is None
    assert coerce("flag", "yes", bool) is True
    assert coerce("flag", False, bool) is False
    with pytest.raises(ConfigError):
        coerce("flag", "maybe", bool)
    assert coerce("sizes", "1,2,3", list[int]) == [1, 2, 3]
    assert coerce("sizes", "[4, 5]", tuple[int, ...]) == (4, 5)


def test_parse_set_keeps_equals_in_value():
    assert parse_set(["data=/a=b"]) == {"data": "/a=b"}


def test_unknown_variant_lists_variants():
    with pytest.raises(ConfigError, match="choose one of: " + ", ".join(VARIANTS)):
        get_variant("bigan")


@pytest.mark.parametrize("seed", ["99999999999999999999999", "-1"])
def test_a_seed_out_of_range_is_one_line(seed, tmp_path):
    from click.testing import CliRunner

    from ganforge.train_cli import main

    result = CliRunner().invoke(main, ["sine", "--seed", seed, "--runs-dir", str(tmp_path), "--epochs", "1"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "seed must be between 0 and 9223372036854775807" in result.output, result.output
    assert not list(tmp_path.iterdir())
