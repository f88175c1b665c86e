"""The documentation's promises: every command line in the README and the docs parses with the real command-line
parser, the README stays a quickstart, the site builds with ``mkdocs build --strict``; and the code's own checks, as
CI runs them: the layers hold, no import cycle, ruff finds nothing."""

from __future__ import annotations

import importlib
import io
import re
import shlex
import shutil
import subprocess
import sys
from contextlib import redirect_stderr
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
_COMMAND = re.compile(r"python3? -m (acquisition|nas|studies) ")


def _bash_blocks(path: Path) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S)


def _literal(line: str) -> str:
    """A documented command line as one would type it: comments dropped, ``[optional groups]`` left out and the
    first of ``a|b`` alternatives taken."""
    line = re.sub(r"\s+#.*$", "", line)
    while re.search(r"\[[^\[\]]*\]", line):
        line = re.sub(r"\s*\[[^\[\]]*\]", "", line)
    return " ".join(tok.split("|")[0] if tok.startswith("-") or "|" in tok else tok for tok in line.split(" "))


def commands() -> list[tuple[str, str]]:
    """(where, command line) for every ``python -m acquisition|nas|studies`` line in a ``bash`` block."""
    out = []
    for path in PAGES:
        for block in _bash_blocks(path):
            for i, line in enumerate(block.replace("\\\n", " ").splitlines()):
                start = _COMMAND.search(line)
                cmd = _literal(line[start.start():]) if start else ""
                if cmd and "…" not in cmd and "..." not in cmd:  # an elided command is an outline, not a command
                    out.append((f"{path.relative_to(ROOT)} block line {i + 1}", cmd))
    return out


COMMANDS = commands()


def test_the_docs_have_command_lines_to_check() -> None:
    assert len(COMMANDS) > 40
    assert {c.split()[2] for _, c in COMMANDS} == {"acquisition", "nas", "studies"}


@pytest.mark.parametrize(("where", "line"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_every_documented_command_line_parses(where: str, line: str) -> None:
    argv = shlex.split(line)
    for i, tok in enumerate(argv):  # a shell `&&` chain or a pipe ends the command
        if tok in ("&&", "|", ";"):
            argv = argv[:i]
            break
    parser = importlib.import_module(f"{argv[2]}.cli").build_parser()
    err = io.StringIO()
    try:
        with redirect_stderr(err):
            parser.parse_args(argv[3:])
    except SystemExit as exc:
        pytest.fail(f"{where}: {line!r} does not parse: {err.getvalue().strip() or exc}")


def test_readme_is_a_quickstart_that_links_the_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 220
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).is_file(), link
    assert "## A 60-second tour" in readme


def test_the_site_has_its_sections_and_every_page_is_in_it() -> None:
    mkdocs = (ROOT / "mkdocs.yml").read_text()
    for section in ("Getting started", "Guides", "Reference", "Design", "Benchmarks"):
        assert f"- {section}:" in mkdocs
    docs = ROOT / "docs"
    pages = {str(p.relative_to(docs)) for p in docs.rglob("*.md")}
    assert pages == set(re.findall(r":\s+([\w/.-]+\.md)$", mkdocs, flags=re.M))
    for page in docs.glob("benchmarks/2*.md"):  # a benchmark page is dated and names its machine
        head = page.read_text().split("\n\n")[1]
        assert re.match(r"\*Measured up to \d{4}-\d\d-\d\d\.\* Machine: ", head), page.name


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300, env={"NO_MKDOCS_2_WARNING": "1",
                                                                                   "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-3000:]
    cli = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text()
    assert "python -m acquisition run" in cli and "--target-spearman" in cli  # generated from the parsers
    api = (tmp_path / "site" / "reference" / "api" / "index.html").read_text()
    assert 'id="acquisition.ask_tell.Campaign"' in api


def test_the_layers_hold_and_no_import_cycle_remains() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    r = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "0 broken" in r.stdout


def test_ruff_finds_nothing() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    r = subprocess.run([ruff, "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:]
