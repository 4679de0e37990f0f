#!/usr/bin/env bash
# Proves that a wheel and an sdist build from the work tree, and that gan-infer works from
# `python -m pip install 'ganforge-*.whl[cpu]'` alone: a fresh venv without torch generates
# from the committed tiny ONNX models, and torch is never imported.
#
#   bash scripts/check-lean-install.sh      # about a minute; exits non-zero on any failure
#
# The package is built from a copy of the work tree's files (tracked and untracked,
# not ignored), so a stale build/ folder in the repo cannot leak into the wheel and
# the repo is left untouched (no build/, dist/ or *.egg-info appear in it).
# Steps: wheel from the tree (pip, PEP 517 with build isolation), sdist from the tree
# (setuptools' PEP 517 hook), wheel from the sdist (pip again: proves the sdist holds what
# a build needs), the two wheels hold the same files, an editable install imports the package
# (not the clone) from the clone's parent, then install the first wheel with
# the cpu extra and run gan-infer, ganforge.inference and gan-train / gan-export from it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "lean install check FAILED: $*" >&2; exit 1; }
start=$SECONDS; last=$SECONDS
step() { echo "  [$((SECONDS - last))s] $*"; last=$SECONDS; }

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

step "copied the work tree"

# Build: a venv with setuptools for the sdist hook; pip builds the wheels in isolated
# environments from pyproject.toml's build-system requirements, as it does for a user.
"$python" -m venv "$tmp/build-venv"
build="$tmp/build-venv/bin/python"
"$build" -m pip install --quiet 'setuptools>=64' wheel
"$build" -m pip wheel --quiet --no-deps -w "$tmp/dist" "$tmp/src"
step "built the wheel from the tree"
(cd "$tmp/src" && "$build" -c 'import sys; from setuptools import build_meta as b; b.build_sdist(sys.argv[1])' \
  "$tmp/dist" >"$tmp/sdist.log" 2>&1) || { cat "$tmp/sdist.log" >&2; fail "the sdist did not build"; }
shopt -s nullglob
wheels=("$tmp"/dist/ganforge-*.whl) sdists=("$tmp"/dist/ganforge-*.tar.gz)
shopt -u nullglob
[ ${#wheels[@]} = 1 ] && [ ${#sdists[@]} = 1 ] || fail "expected one wheel and one sdist in dist/: $(ls "$tmp/dist")"
wheel=${wheels[0]} sdist=${sdists[0]}
step "built the sdist from the tree"
"$build" -m pip wheel --quiet --no-deps -w "$tmp/from-sdist" "$sdist"
step "built a wheel from the sdist"

"$build" - "$tmp/src" "$sdist" "$wheel" "$tmp"/from-sdist/ganforge-*.whl <<'PY'
import sys, tarfile, zipfile
from email.parser import Parser
from pathlib import Path

src, sdist, wheel, wheel2 = Path(sys.argv[1]), *map(Path, sys.argv[2:5])
fail = lambda msg: sys.exit(f"lean install check FAILED: {msg}")
package = sorted(p.relative_to(src / "src").as_posix() for p in (src / "src" / "ganforge").rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts)
with tarfile.open(sdist) as tar:
    top = sdist.name.removesuffix(".tar.gz")
    in_sdist = {n.removeprefix(top + "/") for n in tar.getnames()}
missing = [n for n in ["setup.cfg", "pyproject.toml", "README.md", "PKG-INFO", *("src/" + p for p in package)]
           if n not in in_sdist]
if missing:
    fail(f"the sdist lacks {missing[:10]}")
names = lambda w: sorted(n for n in zipfile.ZipFile(w).namelist() if ".dist-info/" not in n)
if names(wheel) != package:
    fail(f"the wheel's files differ from src/ganforge/: {sorted(set(names(wheel)) ^ set(package))[:10]}")
if names(wheel2) != names(wheel):
    fail(f"the wheel built from the sdist differs: {sorted(set(names(wheel2)) ^ set(names(wheel)))[:10]}")
with zipfile.ZipFile(wheel) as z:
    meta = Parser().parsestr(z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode())
extras = set(meta.get_all("Provides-Extra"))
if not {"cpu", "gpu", "train", "tensorboard", "dev"} <= extras:
    fail(f"extras are {sorted(extras)}")
requires = meta.get_all("Requires-Dist")
train = [r for r in requires if r.endswith('extra == "train"')]
if any(r.startswith("tensorboard") for r in train) or not any(r.startswith("onnx") for r in train):
    fail(f"the train extra is {train}")
if any(r.startswith("torch") for r in requires if "extra ==" not in r):
    fail("torch is a core requirement")
kb = lambda p: f"{p.stat().st_size / 1024:.0f} KB"
print(f"  wheel {wheel.name} ({kb(wheel)}, {len(package)} package files), sdist {sdist.name} ({kb(sdist)})")
PY

# An editable install of a clone named ganforge/, imported from the clone's parent (where the
# clone itself could pass for a namespace package ganforge, and its runs/ for ganforge.runs):
# the src/ layout's path entry must win, so the real package is the one imported.
mkdir -p "$tmp/parent" && cp -a "$tmp/src" "$tmp/parent/ganforge" && mkdir -p "$tmp/parent/ganforge/runs"
"$build" -m pip install --quiet --no-deps --no-build-isolation -e "$tmp/parent/ganforge" >/dev/null 2>&1 \
  || fail "the editable install did not build"
(cd "$tmp/parent" && "$build" -c 'import ganforge, sys; from ganforge.runs import DEFAULT_RUNS_DIR
assert ganforge.__file__.endswith("/ganforge/src/ganforge/__init__.py"), ganforge.__file__') \
  || fail "from the clone's parent, an editable install imports the clone folder instead of the package"
rm -rf "$tmp/parent"
step "an editable install imports the package from the clone's parent"
rm -rf "$tmp/src" "$tmp/from-sdist"

"$python" -m venv "$tmp/venv"
bin="$tmp/venv/bin"
"$bin/python" -m pip install --quiet "$wheel[cpu]"
step "installed the wheel with the cpu extra in a fresh venv"

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
"$bin/gan-infer" --model "$image" --n 3 --out "$tmp/each/"  # a sharded job: a folder of PNGs a shard
"$bin/gan-infer" --verify "$tmp/each/" || fail "gan-infer --verify failed on the job it had just made"
"$bin/gan-infer" --model "$image" --n 8 --truncation 0.7 --out "$tmp/t.png"
for f in series.png image.png x.npy each/manifest.json each/shard-000000/sample-00002.png t.png; do
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
# gan-export likewise (it needs the train extra and a runtime; this venv has only the runtime).
if out=$("$bin/gan-export" 2>&1); then fail "gan-export ran without torch?"; fi
case "$out" in "Error: gan-export needs the 'train' extra"*"pip install 'ganforge[train]'") ;;
  *) fail "gan-export without torch said: $out";; esac
step "gan-infer, ganforge.inference and gan-train from the [cpu] install"
echo "lean install check passed in $((SECONDS - start))s: a wheel and an sdist build, and gan-infer runs from the wheel's [cpu] install without torch"
