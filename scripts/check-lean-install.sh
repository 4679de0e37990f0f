#!/usr/bin/env bash
# Proves gan-infer works from `pip install '.[cpu]'` alone: a fresh venv without
# torch generates from the committed tiny ONNX models, and torch is never imported.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --upgrade pip
"$tmp/venv/bin/python" -m pip install --quiet "$repo[cpu]"
if "$tmp/venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "lean install check: torch is importable in the [cpu]-only venv" >&2; exit 1
fi
cd "$tmp"
"$tmp/venv/bin/gan-infer" --model "$repo/tests/data/tiny-series.onnx" --n 16 --out "$tmp/series.png"
"$tmp/venv/bin/gan-infer" --model "$repo/tests/data/tiny-image.onnx" --n 64 --out "$tmp/image.png"
"$tmp/venv/bin/gan-infer" --model "$repo/tests/data/tiny-image.onnx" --n 8 --out "$tmp/x.npy"
test -s "$tmp/series.png" && test -s "$tmp/image.png" && test -s "$tmp/x.npy"
"$tmp/venv/bin/python" - "$repo/tests/data/tiny-image.onnx" <<'PY'
import sys
import ganforge.inference as gi
gen = gi.Generator(sys.argv[1])
assert gen.generate(4).shape == (4, 3, 8, 8)
assert not [m for m in sys.modules if m == "torch" or m.startswith("torch.")], "torch was imported"
PY
# gan-train without the train extra: one line naming the extra, no traceback.
if out=$("$tmp/venv/bin/gan-train" 2>&1); then echo "gan-train ran without torch?" >&2; exit 1; fi
case "$out" in *"pip install 'ganforge[train]'"*) ;; *) echo "gan-train without torch said: $out" >&2; exit 1;; esac
case "$out" in *Traceback*) echo "gan-train without torch printed a traceback" >&2; exit 1;; esac
echo "lean install check passed: gan-infer runs from '.[cpu]' without torch"
