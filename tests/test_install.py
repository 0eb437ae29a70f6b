"""Installing: version ranges in pyproject.toml, the exact tested set in constraints.txt, which
``make install`` uses, and a clear line for a Python that is too old."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from importlib.metadata import version

import pytest
from packaging.requirements import Requirement

from tests.helpers import ROOT


def pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    found = [re.match(r"([A-Za-z0-9_.\-]+)==(\S+)$", ln) for ln in lines if ln and ln[0] != "#"]
    assert all(found), "constraints.txt holds exact pins only"
    return {m.group(1).lower().replace("_", "-"): m.group(2) for m in found}


def test_pyproject_states_ranges_and_constraints_pin_every_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    requirements += [Requirement(r) for r in project["optional-dependencies"]["dev"]]
    pinned = pins()
    for req in requirements:
        assert not any(s.operator == "==" for s in req.specifier), f"{req}: a range, not a pin"
        name = req.name.lower().replace("_", "-")
        assert name in pinned, f"{name} is not in constraints.txt"
        assert req.specifier.contains(pinned[name], prereleases=True), (req, pinned[name])


def test_this_environment_is_the_constrained_one():
    """The suite runs on the versions constraints.txt names (CI installs them with make)."""
    pinned = pins()
    for name in ("torch", "torchvision", "lightning", "torchmetrics", "jsonargparse", "wandb"):
        assert version(name).split("+")[0] == pinned[name], name


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_install_uses_the_constraints_and_a_torch_index():
    dry = ["make", "-n", "-B", "install", "TORCH_INDEX=https://example.org/whl/cu126"]
    out = subprocess.run(dry, cwd=ROOT, capture_output=True, text=True).stdout
    assert "-c constraints.txt -e '.[dev]'" in out
    assert "torch torchvision --index-url https://example.org/whl/cu126" in out


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_python_older_than_3_11_gets_one_line(tmp_path):
    fake = tmp_path / "python3.8"
    fake.write_text("#!/bin/sh\nexit 1\n")  # a Python that fails the version check
    fake.chmod(0o755)
    venv = tmp_path / "venv"  # a fresh target, so make really runs the recipe
    args = ["make", "install", f"PYTHON={fake}", f"VENV={venv}"]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "is not Python >= 3.11" in proc.stderr and "Traceback" not in proc.stderr
    assert not venv.exists()
