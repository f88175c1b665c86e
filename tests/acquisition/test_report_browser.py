"""The HTML cost report in a real headless browser (Debian's ``chromium``) at 1280 px: no table is wider than the
page, the plots load, the platforms are named by what they are, and a screenshot is taken (kept in the test's
``tmp_path``: ``pytest --basetemp DIR`` keeps it where you can look at it).

The page is checked by a copy of it with a small script that, once everything has loaded, writes what it
measured (page and table widths, images) into the document title, which ``--dump-dom`` prints.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

from acquisition.report import write_report
from acquisition.store import Store
from profiler.devices import platform_label
from tests.acquisition.test_report import CAMPAIGNS, build_store

CHROMIUM = shutil.which("chromium") or next(
    (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if os.path.exists(p)), None)
WIDTH = 1280

NO_BROWSER = "no chromium binary: Debian's package installs it (apt-get install -y chromium)"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def _needs_chromium() -> None:
    """Skipped where no chromium is installed, except in CI (``CI=true``), which must have it."""
    if CHROMIUM is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{NO_BROWSER}; CI must install it before the tests")
        pytest.skip(NO_BROWSER)

PROBE = """<script>
addEventListener("load", () => {
  const root = document.documentElement;
  const tables = [...document.querySelectorAll("table")].map(t => ({
    right: Math.ceil(t.getBoundingClientRect().right), width: t.scrollWidth, box: t.parentElement.clientWidth}));
  const images = [...document.images].map(i => ({src: i.getAttribute("src"), width: i.naturalWidth,
    right: Math.ceil(i.getBoundingClientRect().right)}));
  document.title = "PROBE" + JSON.stringify({viewport: root.clientWidth, scroll: root.scrollWidth, tables, images});
});
</script>"""


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium with a fresh profile and nothing that reaches out to the network."""
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path)
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={WIDTH},2000", *args]
    # a generous limit: the browser starts in seconds; the limit only stops a browser that never exits
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def read_png(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the decompressed scanlines of a PNG (standard library only)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    return width, height, zlib.decompress(idat)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    out = tmp_path_factory.mktemp("html-report")
    fps = build_store(out / "r.sqlite")
    with Store(out / "r.sqlite", readonly=True) as store:
        files = write_report(store, str(out / "report"), fmt="html")
    return Path(files[0]), fps


def test_every_table_fits_a_1280px_page(report, tmp_path: Path) -> None:
    page, fps = report
    probe = page.with_name("probe.html")  # beside the page: the plots load from the same folder
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    proc = chromium(tmp_path, "--run-all-compositor-stages-before-draw", "--virtual-time-budget=10000",
                    "--dump-dom", probe.as_uri())
    m = re.search(r"<title>PROBE(.*?)</title>", proc.stdout, re.S)
    assert m, f"the probe did not run (exit {proc.returncode}): {proc.stderr[-2000:]}"
    seen = json.loads(html.unescape(m.group(1)))
    assert WIDTH - 40 <= seen["viewport"] <= WIDTH  # the window is 1280 px wide (less a scrollbar, if any)
    assert seen["scroll"] <= seen["viewport"], f"the page scrolls sideways: {seen}"
    # platforms, campaigns, device time, hours by activity, by platform and family
    assert len(seen["tables"]) == 5
    for t in seen["tables"]:
        assert t["right"] <= seen["viewport"] and t["width"] <= t["box"], f"a table runs off the page: {t}"
    curves = {f"{name}_learning_curve.png" for name, _, _ in CAMPAIGNS}
    assert curves <= {i["src"] for i in seen["images"]}
    for i in seen["images"]:
        assert i["width"] > 0 and i["right"] <= seen["viewport"], f"an image did not load or runs off: {i}"
    text = html.unescape(proc.stdout)
    for fp in fps.values():
        assert platform_label(fp) in text  # the platform named by what it is


def test_screenshot_at_1280px(report, tmp_path: Path) -> None:
    page, _ = report
    shot = tmp_path / "report.png"
    proc = chromium(tmp_path, "--hide-scrollbars", f"--screenshot={shot}", page.as_uri())
    assert shot.exists(), f"no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    width, height, pixels = read_png(shot)
    assert (width, height) == (WIDTH, 2000)
    assert len(set(pixels)) > 16  # text, tables and plots: not a blank page
