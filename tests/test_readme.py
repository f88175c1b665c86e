"""The README's promises: the set-up commands and CI agree, and its examples (and the guides' Python API one) run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str, text: str = README) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_readme_starts_with_the_two_setup_commands_and_ci_runs_the_test_one() -> None:
    first = _blocks("bash")[0].strip().splitlines()
    assert len(first) == 2
    assert "python -m acquisition" in first[0] and "pytest" in first[1]
    assert first[1] in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_custom_family_example_is_short_and_profiles(tmp_path: Path) -> None:
    code = next(b for b in _blocks("python") if "# my_blocks.py" in b)
    assert len(code.strip().splitlines()) < 30
    (tmp_path / "my_blocks.py").write_text(code)
    db = tmp_path / "a.sqlite"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    cmd = [sys.executable, "-m", "acquisition", "profile", "--plugin", "my_blocks", "--family", "sepconv",
           "--n", "3", "--device", "cpu", "--db", str(db), "--no-progress"]
    r = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    st = subprocess.run([sys.executable, "-m", "acquisition", "status", "--db", str(db), "--json"], env=env,
                        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    fams = json.loads(st.stdout)["families"]
    assert [(f["family"], f["ok"]) for f in fams] == [("sepconv", 3)]


@pytest.mark.slow
def test_python_api_example_runs(tmp_path: Path) -> None:
    guide = (ROOT / "docs" / "guides" / "families.md").read_text()
    code = next(b for b in _blocks("python", guide) if "profile_configs(store, prof" in b)
    script = tmp_path / "api_example.py"
    script.write_text("if __name__ == '__main__':\n" + "\n".join("    " + ln for ln in code.splitlines()))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, str(script)], env=env, cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    profiled, reused, min_ms, cost_s = r.stdout.split()
    assert int(profiled) == 10 and int(reused) == 0 and float(min_ms) > 0 and float(cost_s) > 0
