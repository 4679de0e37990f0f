"""The page at / in a real browser (Debian's chromium-headless-shell): it asks the model for its
classes, renders the grid of /v1/generate.png, and a screenshot shows it.

Skipped, with the reason, where the browser is not installed, except under CI=true, where a
missing browser fails (.ci/run installs it)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.serve.conftest import COND, serving

CANDIDATES = ("chromium-headless-shell", "/usr/lib/chromium/chromium-headless-shell", "chromium", "chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--virtual-time-budget=15000"]


def browser() -> str:
    for name in (os.environ.get("GANFORGE_CHROMIUM"), *CANDIDATES):
        found = name and (shutil.which(name) or (Path(name).is_file() and name))
        if found:
            return found
    reason = "no headless Chromium: apt-get install chromium-headless-shell (as root; .ci/run does)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def run(exe: str, *args: str) -> str:
    proc = subprocess.run([exe, *FLAGS, *args], capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_page_renders_the_grid(tmp_path):
    exe = browser()
    with serving(COND) as server:
        dom = run(exe, "--dump-dom", server.url + "/")
        status, _, png = server.get("/v1/generate.png?n=64&seed=0")
        run(exe, "--window-size=900,700", f"--screenshot={tmp_path / 'page.png'}", server.url + "/")
    from PIL import Image

    width, height = Image.open(io.BytesIO(png)).size
    grid = re.search(r'<img id="grid"[^>]*>', dom)[0]
    assert f'data-loaded="{width}x{height}"' in grid and 'src="blob:' in grid, grid  # decoded: it rendered
    for name in ("T-shirt/top", "Trouser", "Sneaker"):  # the class picker, from the model
        assert f'<option value="{name}">' in dom
    assert "sha256 14a5aad08ab1" in dom  # the model line, from /v1/model
    assert "walk-image" in dom and 'id="walk-image" alt="walk between two seeds" class="hidden"' in dom
    shot = Image.open(tmp_path / "page.png").convert("L")
    assert shot.size == (900, 700) and len(shot.getcolors(256)) > 20  # more than a blank page's few greys


def test_a_link_shows_a_class_and_a_walk():
    """/?seed=5&n=9&label=Sneaker&a=1&b=2&steps=4: the grid of that query and the walk's GIF, rendered."""
    exe = browser()
    with serving(COND) as server:
        dom = run(exe, "--dump-dom", server.url + "/?seed=5&n=9&label=Sneaker&a=1&b=2&steps=4")
    grid = re.search(r'<img id="grid"[^>]*>', dom)[0]
    walk = re.search(r'<img id="walk-image"[^>]*>', dom)[0]
    side = 3 * (8 + 2) + 2  # 3 x 3 cells of 8 px and their borders
    assert f'data-loaded="{side}x{side}"' in grid, grid
    assert 'data-loaded="128x128"' in walk, walk  # the GIF's 8 px frames, scaled up to 128 px


def test_missing_browser_skips_here_and_fails_under_ci(monkeypatch):
    import tests.serve.test_serve_browser as me

    monkeypatch.setattr(me, "CANDIDATES", ("no-such-browser-here",))
    monkeypatch.delenv("GANFORGE_CHROMIUM", raising=False)
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium-headless-shell"):
        me.browser()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        me.browser()


# the grid as the page decoded it, pixel by pixel (the page's CSP lets no script fetch the blob back)
PIXELS = """(() => { const img = document.getElementById("grid"), c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight; const g = c.getContext("2d"); g.drawImage(img, 0, 0);
  return [c.width, c.height, Array.from(g.getImageData(0, 0, c.width, c.height).data)]; })()"""
QUERY = '(document.getElementById("grid").complete && document.getElementById("grid").dataset.query || "")'


def shown(page):
    import numpy as np

    width, height, data = page.evaluate(PIXELS)
    return np.array(data, np.uint8).reshape(height, width, 4)


def decoded(png: bytes):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def test_a_slider_a_direction_and_moving_one_edits_the_same_seed(tmp_path, directed_server):
    """The page's sliders come from /v1/model's directions; moving one asks for that edit of the same
    seed and shows those bytes; reset asks for the plain samples again."""
    from tests.serve.cdp import browsing

    exe = browser()
    dom = run(exe, "--dump-dom", directed_server.url + "/")
    for name, kind in (("pc0", "(principal)"), ("pc1", "(principal)"), ("sneaker", "(toward Sneaker)")):
        assert re.search(rf'<label for="edit-{name}">{name} <span class="kind">{re.escape(kind)}</span></label>'
                         rf'<input type="range" id="edit-{name}" min="-4" max="4" step="0.25"', dom), name
    assert 'id="no-directions" class="hidden"' in dom
    with browsing(exe, directed_server.url + "/?seed=5&n=9", tmp_path / "profile") as page:
        assert page.wait_for(QUERY) == "n=9&seed=5"
        plain = shown(page)
        page.evaluate('{ const s = document.getElementById("edit-sneaker"); s.value = "2";'
                      's.dispatchEvent(new Event("input", {bubbles: true})); } true')
        assert page.wait_for(f'{QUERY}.includes("edit") && {QUERY}') == "n=9&seed=5&edit=sneaker%3D%2B2"
        edited = shown(page)
        assert page.evaluate('document.querySelector("#edit-sneaker + output").textContent') == "+2"
        page.evaluate('document.getElementById("truncation").value = "0.6";'
                      'document.getElementById("truncation").dispatchEvent(new Event("input")); true')
        assert page.wait_for(f'{QUERY}.includes("truncation") && {QUERY}') == \
            "n=9&seed=5&truncation=0.6&edit=sneaker%3D%2B2"
        page.evaluate('document.getElementById("reset").click(); true')
        assert page.wait_for(f'{QUERY} && !{QUERY}.includes("edit") && {QUERY}') == "n=9&seed=5"
        again = shown(page)
    assert (decoded(directed_server.get("/v1/generate.png?n=9&seed=5")[2]) == plain).all()
    assert (decoded(directed_server.get("/v1/generate.png?n=9&seed=5&edit=sneaker%3D%2B2")[2]) == edited).all()
    assert (edited != plain).any() and (again == plain).all()


def test_without_directions_the_page_says_how_to_make_them(cond_server):
    dom = run(browser(), "--dump-dom", cond_server.url + "/?truncation=0.7")
    assert re.search(r'<p id="no-directions" class="">No edits: this model has no named directions: make them with '
                     r"gan-directions MODEL on the server .*; truncation works without them\.</p>", dom)
    assert '<div id="directions"></div>' in dom
    assert 'data-query="n=64&amp;seed=0&amp;truncation=0.7"' in dom  # truncation still asked for and shown
