#!/usr/bin/env bash
# Proves gan-infer works from `pip install '.[cpu]'` alone: a fresh venv without
# torch generates from the committed tiny ONNX models, and torch is never imported.
#
#   bash scripts/check-lean-install.sh      # about a minute; exits non-zero on any failure
#
# The package is built from a copy of the work tree's files (tracked and untracked,
# not ignored), so a stale build/ folder in the repo cannot leak into the wheel and
# the repo is left untouched.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "lean install check FAILED: $*" >&2; exit 1; }

"$python" - "$repo" "$tmp/src" <<'PY'
import shutil, subprocess, sys
from pathlib import Path

repo, dest = Path(sys.argv[1]), Path(sys.argv[2])
listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                        check=True, capture_output=True).stdout.decode().split("\0")
for name in filter(None, listed):
    if (repo / name).is_file():  # a tracked file deleted in the work tree is skipped
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / name, dest / name)
PY
test -f "$tmp/src/setup.cfg" || fail "could not copy the work tree"

"$python" -m venv "$tmp/venv"
bin="$tmp/venv/bin"
"$bin/python" -m pip install --quiet "$tmp/src[cpu]"
rm -rf "$tmp/src"

if "$bin/python" -c "import torch" 2>/dev/null; then
  fail "torch is importable in the [cpu]-only venv"
fi

cd "$tmp"  # not the repo: the installed package must be the one that runs
series="$repo/tests/data/tiny-series.onnx"
image="$repo/tests/data/tiny-image.onnx"
"$bin/gan-infer" --model "$series" --n 16 --out "$tmp/series.png" --seed 1
"$bin/gan-infer" --model "$series" --n 16 --out "$tmp/series-again.png" --seed 1
"$bin/gan-infer" --model "$image" --n 64 --out "$tmp/image.png"
"$bin/gan-infer" --model "$image" --n 8 --out "$tmp/x.npy"
"$bin/gan-infer" --model "$image" --n 3 --out "$tmp/each/"
for f in series.png image.png x.npy each/sample-00002.png; do
  test -s "$tmp/$f" || fail "gan-infer did not write $f"
done
cmp -s "$tmp/series.png" "$tmp/series-again.png" || fail "same seed gave different PNG bytes"

# A user error is one line and no traceback, also without the training stack.
if out=$("$bin/gan-infer" --model "$tmp/missing.onnx" --n 4 --out "$tmp/bad.png" 2>&1); then
  fail "gan-infer accepted a missing model"
fi
case "$out" in *Traceback*) fail "gan-infer printed a traceback: $out";; esac
case "$out" in "Error: model file "*" does not exist") ;; *) fail "unexpected error for a missing model: $out";; esac
test ! -e "$tmp/bad.png" || fail "a failed gan-infer left $tmp/bad.png"

"$bin/python" - "$image" "$tmp" <<'PY'
import sys
from pathlib import Path

import ganforge.inference as gi

assert Path(gi.__file__).resolve().is_relative_to(Path(sys.prefix).resolve()), f"imported {gi.__file__}, not the install"
gen = gi.Generator(sys.argv[1])
assert gen.generate(4).shape == (4, 3, 8, 8)
gi.generate(sys.argv[1], 4, Path(sys.argv[2]) / "lib.png")
loaded = [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
assert not loaded, f"torch was imported: {loaded}"
PY

# gan-train without the train extra: one line naming the extra, no traceback.
if out=$("$bin/gan-train" 2>&1); then fail "gan-train ran without torch?"; fi
case "$out" in *"pip install 'ganforge[train]'"*) ;; *) fail "gan-train without torch said: $out";; esac
case "$out" in *Traceback*) fail "gan-train without torch printed a traceback";; esac
echo "lean install check passed: gan-infer runs from '.[cpu]' without torch"
