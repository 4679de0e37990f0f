import json

import pytest
from click.testing import CliRunner

from ganforge.errors import GanforgeError, ModelFileError
from ganforge.evaluation import evaluate
from ganforge.evaluation.cli import main


def test_evaluates_an_exported_sine_model(sine_export, tmp_path):
    report = evaluate(sine_export.artifacts["onnx"], n=200, out_dir=tmp_path)
    assert report["variant"] == "sine" and report["n_generated"] == 200 and report["n_real"] == 400
    assert report["floor"]["sine_like_fraction"] == 1.0 and report["floor"]["mmd"] < 0.01
    # a 3-epoch generator on 96 rows is far from the floor, and the report says so
    assert report["generated"]["mmd"] > report["floor"]["mmd"]
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved["generated"] == report["generated"] and "floor (real vs real)" in (tmp_path / "eval.md").read_text()
    assert evaluate(sine_export.artifacts["onnx"], n=50)["n_generated"] == 50


def test_refusals(tmp_path):
    from pathlib import Path

    image = Path(__file__).resolve().parents[1] / "data" / "tiny-image.onnx"
    with pytest.raises(GanforgeError, match="image model \\(the real images\\) needs --data PATH"):
        evaluate(image, n=20)
    with pytest.raises(ModelFileError, match="no exported model"):
        evaluate(tmp_path / "none.onnx")
    result = CliRunner().invoke(main, [str(tmp_path / "none.onnx"), "--out", str(tmp_path / "e")])
    assert result.exit_code == 1 and "run gan-export first" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "e").exists()


def test_run_folder_resolves_to_its_export(tmp_path):
    import shutil
    from pathlib import Path

    from ganforge.evaluation import resolve_model

    (tmp_path / "run" / "export").mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[1] / "data" / "tiny-series.onnx",
                tmp_path / "run" / "export" / "generator.onnx")
    assert resolve_model(tmp_path / "run") == tmp_path / "run" / "export" / "generator.onnx"
    with pytest.raises(GanforgeError, match="no real data source for series variant 'tiny-series'"):
        evaluate(tmp_path / "run", n=20)


def test_the_report_line_names_the_file_once_whatever_the_out_folder_ends_in(sine_export, tmp_path):
    result = CliRunner().invoke(main, [str(sine_export.artifacts["onnx"]), "--n", "50", "--out", f"{tmp_path}/ev/"])
    assert result.exit_code == 0, result.output
    assert f"report: {tmp_path}/ev/eval.md\n" in result.output and "//" not in result.output


def _printed(monkeypatch, tmp_path, report, *args):
    import ganforge.evaluation as E

    monkeypatch.setattr(E, "evaluate", lambda *a, **k: report)  # the line's wording, on a report of known figures
    result = CliRunner().invoke(main, [str(tmp_path / "m.onnx"), "--out", str(tmp_path / "e"), *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()[0]


def test_the_image_line_gives_every_figure_its_floor(monkeypatch, tmp_path):
    scores = ("frechet_distance", "precision", "recall", "coverage")
    report = {"generated": dict(zip(scores, (7.0, 0.86, 0.74, 0.9))), "floor": dict(zip(scores, (0.85, 0.9, 0.91, 0.95))),
              "evaluator": {"kind": "image", "accuracy": 0.87}, "precision": "fp32"}
    assert _printed(monkeypatch, tmp_path, report) == (
        "Fréchet distance 7.000 (floor 0.850), precision 0.860 (floor 0.900), recall 0.740 (floor 0.910), "
        "coverage 0.900 (floor 0.950) (evaluator accuracy 0.870)")


def test_a_negative_mmd_floor_is_explained(monkeypatch, tmp_path):
    report = {"generated": {"sine_like_fraction": 0.98, "mmd": 0.01, "classifier_gap": 0.1},
              "floor": {"sine_like_fraction": 1.0, "mmd": -0.0023, "classifier_gap": 0.02},
              "evaluator": {"kind": "series"}, "precision": "fp32"}
    assert "MMD^2 0.0100 (floor -0.0023: the unbiased estimate, which falls below 0 by chance" in _printed(
        monkeypatch, tmp_path, report)


def test_data_for_a_series_model_is_refused_not_ignored(sine_export, tmp_path):
    result = CliRunner().invoke(main, [str(sine_export.artifacts["onnx"]), "--data", str(tmp_path),
                                       "--out", str(tmp_path / "e")])
    assert result.exit_code == 1 and "--data does not apply to a series model (sine)" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "e").exists()
