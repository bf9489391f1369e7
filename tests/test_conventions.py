"""What a Snakemake user checks first: `snakemake --lint` finds nothing, the rules are formatted
with snakefmt."""

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_snakemake_lint_is_clean():
    p = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    out = p.stdout + p.stderr
    assert p.returncode == 0 and "Lints for" not in out, out[-3000:]


def test_rules_are_formatted_with_snakefmt():
    exe = shutil.which("snakefmt", path=str(Path(sys.executable).parent)) or shutil.which("snakefmt")
    assert exe, "snakefmt is in the test extras: pip install -e '.[test]'"
    p = subprocess.run([exe, "--check", "Snakefile", "rules/"], cwd=REPO, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
