"""Triton's config.pbtxt read as protobuf text format: any legal layout of the right
config passes, a config that differs from the model fails, and the parser itself."""

import shutil

import pytest

from ganforge.export import formats, pbtxt, triton
from ganforge.export.spec import spec_from_checkpoint

# a conditional image generator: z [8], labels [] (batch only), x [1, 28, 28]
INPUTS = [("z", "TYPE_FP32", [8]), ("labels", "TYPE_INT64", [])]
OUTPUTS = [("x", "TYPE_FP32", [1, 28, 28])]

HAND_WRITTEN = """\
# written by hand: repeated fields one by one, ';' and ',' separators, < > messages
name:"generator";platform:'onnxruntime_onnx'
max_batch_size:1024
input { name: "z" data_type: TYPE_FP32 dims: 8 }
input < name: "labels", data_type: TYPE_INT64, dims: [1], reshape { } >  # reshape {}: the model sees []
output {
  name: "x"   # the samples
  data_type: TYPE_FP32
  dims: 1 dims: 28
  dims: 28
}
dynamic_batching { preferred_batch_size: 64 preferred_batch_size: 256 }
"""

ONE_LINE = ('backend: "onnxruntime" output: [{name: "x", data_type: TYPE_FP32, dims: [1, 28, 28]}] '
            'input: [{name: "labels" data_type: TYPE_INT64 dims: [ 1 ] reshape: { shape: [] }}, '
            '{name: "z" data_type: TYPE_FP32 dims: [8]}] max_batch_size: 0x400 name: "gene" "rator" '
            'dynamic_batching: {}')


@pytest.mark.parametrize("text", [triton.config_pbtxt("generator", INPUTS, OUTPUTS), HAND_WRITTEN, ONE_LINE],
                         ids=["ours", "hand-written", "one-line"])
def test_config_in_any_legal_style_matches(text):
    assert triton.config_problems(text, "generator", INPUTS, OUTPUTS) == []


def test_styles_parse_to_the_same_message():
    ours = pbtxt.parse(triton.config_pbtxt("generator", INPUTS, OUTPUTS), triton.REPEATED)
    hand = pbtxt.parse(HAND_WRITTEN, triton.REPEATED)
    assert hand["input"][0] == ours["input"][0] == {"name": "z", "data_type": "TYPE_FP32", "dims": [8]}
    assert hand["output"] == ours["output"] == [{"name": "x", "data_type": "TYPE_FP32", "dims": [1, 28, 28]}]
    assert hand["dynamic_batching"]["preferred_batch_size"] == ours["dynamic_batching"]["preferred_batch_size"]


WRONG = {  # edit of HAND_WRITTEN -> what the problem names
    "name": (('name:"generator"', 'name:"generator_fp16"'), "name is 'generator_fp16'"),
    "platform": (("'onnxruntime_onnx'", "'tensorrt_plan'"), "platform"),
    "dims": (("dims: 8", "dims: 9"), "input is"),
    "dtype": (("data_type: TYPE_FP32 dims: 8", "data_type: TYPE_FP16 dims: 8"), "input is"),
    "no reshape": ((", reshape { } >", " >"), "input is"),
    "reshape size": (("reshape { }", "reshape { shape: 2 }"), "input is"),
    "missing input": (('input { name: "z" data_type: TYPE_FP32 dims: 8 }', ""), "input is"),
    "input twice": (('input { name: "z" data_type: TYPE_FP32 dims: 8 }',
                     'input { name: "z" data_type: TYPE_FP32 dims: 8 } input { name: "z" data_type: TYPE_FP32 dims: 8 }'),
                    "input is"),
    "output dims": (("  dims: 28\n}", "  dims: 27\n}"), "output is"),
    "max_batch_size": (("max_batch_size:1024", "max_batch_size:0"), "max_batch_size is 0"),
    "no batching": (("dynamic_batching { preferred_batch_size: 64 preferred_batch_size: 256 }", ""),
                    "no dynamic_batching"),
    "preferred": (("preferred_batch_size: 256", "preferred_batch_size: 2048"), "preferred_batch_size"),
    "syntax": (("output {", "output {{"), "not protobuf text format: line 6"),
}


@pytest.mark.parametrize("case", WRONG)
def test_config_that_differs_from_the_model_fails(case):
    (old, new), problem = WRONG[case]
    assert old in HAND_WRITTEN
    problems = triton.config_problems(HAND_WRITTEN.replace(old, new, 1), "generator", INPUTS, OUTPUTS)
    assert len(problems) == 1 and problem in problems[0], problems


def test_triton_validate_reads_the_config_through_the_parser(sine_export, sine_run, tmp_path):
    spec = spec_from_checkpoint(sine_run.checkpoint)
    folder = tmp_path / "generator"
    shutil.copytree(sine_export.artifacts["triton"], folder)
    cache = formats.CallCache()
    restyled = ("# restyled\ninput { name: 'z' data_type: TYPE_FP32 dims: 4 }\nname: 'generator'\n"
                "output < name: 'x' data_type: TYPE_FP32 dims: [ 32 ] >\nmax_batch_size: 8\n"
                "platform: 'onnxruntime_onnx' dynamic_batching: < >\n")
    (folder / "config.pbtxt").write_text(restyled)
    checks = triton.FORMAT.validate(spec, folder, cache)
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
    (folder / "config.pbtxt").write_text(restyled.replace("dims: 4", "dims: 5"))
    config = triton.FORMAT.validate(spec, folder, cache)[-1]
    assert config.name == "triton_config" and not config.passed and "input is" in config.detail


def test_parser_reads_the_text_format():
    text = r"""
    # comment ' " { not a token
    s: "tab\there \"q\" \101\x42\u00e9" s2: 'single' "+joined"
    n: -12 h: 0x1F o: 017 f: 1.5e3 g: .5f neg: - 2.5 big: -inf
    yes: true no: False e: TYPE_FP32
    m: { inner < k: [ ] > }
    l: [ 1, -2, 3 ]
    """
    assert pbtxt.parse(text) == {
        "s": 'tab\there "q" ABé', "s2": "single+joined", "n": -12, "h": 31, "o": 15, "f": 1500.0, "g": 0.5,
        "neg": -2.5, "big": float("-inf"), "yes": True, "no": False, "e": "TYPE_FP32", "m": {"inner": {"k": []}},
        "l": [1, -2, 3]}
    assert pbtxt.parse("a: 1 a: 2 b { } b { }") == {"a": [1, 2], "b": [{}, {}]}  # written twice: a list
    assert pbtxt.parse("a: 1", repeated={"a"}) == {"a": [1]}  # declared repeated: a list written once
    assert pbtxt.parse("") == {}


@pytest.mark.parametrize(("text", "error"), [
    ("a { b: 1", "line 1: the message opened on line 1 is not closed with '}'"),
    ("a {\n b: 1 >", "line 2: expected a field name, got '>'"),
    ("a 1", "line 1: expected ':' or a message after 'a'"),
    ("a: [1 2]", "line 1: expected ',' or ']', got '2'"),
    ("a [1]", "line 1: expected ':' before a list of values of 'a'"),
    ("a: -b", "line 1: expected a number after '-', got 'b'"),
    ("a: 1\nb: @", "line 2: unexpected '@'"),
    ('a: "\\q"', "unknown escape"),
    ('a: "open', "line 1: unexpected '\"'"),
    ("a: }", "expected a value, got '}'"),
])
def test_parser_names_the_line_of_an_error(text, error):
    with pytest.raises(pbtxt.PbtxtError) as exc:
        pbtxt.parse(text)
    assert error in str(exc.value)
