"""The repository alone is enough: no package or test code reaches for data beside the checkout, and a fresh
`git clone` of HEAD, with nothing next to it and RLVR_DATA_DIR unset, passes a data-dependent test."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# A path to a sibling of the checkout: '../shared', "..", "shared" or .parent / "shared" / "data" and the like.
SIBLING = re.compile(r"\.\./" + "shared" + r"|[\"']\.\.[\"'],\s*[\"']shared|[\"']shared[\"']\s*[/,]\s*[\"']data")


def test_package_and_test_code_never_name_a_directory_beside_the_checkout():
    code = [p for d in ("cluster", "actors", "learner", "rewards", "tests") for p in (REPO / d).rglob("*.py")]
    hits = [f"{p.relative_to(REPO)}:{i}: {line.strip()}" for p in code
            if p != Path(__file__).resolve() for i, line in enumerate(p.read_text().splitlines(), 1)
            if SIBLING.search(line)]
    assert hits == [], "data comes from RLVR_DATA_DIR / dataset.data_dir or tests/fixtures, never ../shared"


@pytest.mark.slow
def test_fresh_clone_passes_a_data_dependent_test_with_nothing_beside_it(tmp_path):
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip(f"{REPO} is not a git checkout: {head.stderr.strip()}")
    clone = tmp_path / "rlvr"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    assert not (tmp_path / "shared").exists()
    env = {k: v for k, v in os.environ.items() if k != "RLVR_DATA_DIR"}
    env["PYTHONPATH"] = str(clone)  # the clone's packages, not an installed copy
    where = subprocess.run([sys.executable, "-c", "import cluster.data.loaders as m; print(m.__file__)"], cwd=clone,
                           env=env, capture_output=True, text=True, timeout=120)
    assert where.stdout.strip().startswith(str(clone)), where.stdout + where.stderr
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_datasets.py",
                           "tests/test_rewards_countdown.py"], cwd=clone, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"\d+ passed", proc.stdout) and "skipped" not in proc.stdout, proc.stdout[-2000:]
