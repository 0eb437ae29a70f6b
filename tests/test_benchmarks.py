"""The null-workload benchmarks run end to end, as ``make bench`` and benchmarks/README.md run
them, on a few iterations: their figures are of the right kind, not the figures themselves."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow  # make test-all (the default suite: make test)

SHORT = ["--iters", "30", "--warmup", "5", "--rounds", "1"]


def run(script: str) -> str:
    proc = subprocess.run([sys.executable, f"benchmarks/{script}", *SHORT], cwd=ROOT, text=True,
                          capture_output=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_the_null_workload_reports_each_variant_against_the_plain_loop():
    out = run("null_workload.py")
    for variant in ("as configured", "logging off", "hooked updates"):
        line = next(ln for ln in out.splitlines() if ln.startswith(f"{variant}: added"))
        lightning, plain = map(float, re.search(r"Lightning ([\d.]+) ms, plain ([\d.]+) ms",
                                                line).groups())  # fmt: skip
        assert lightning > 0 and plain > 0


def test_the_breakdown_adds_up_to_the_added_time():
    rows = dict(re.findall(r"^\| (.+?) \| (-?[\d.]+) \|", run("null_breakdown.py"), re.M))
    parts = {k: float(v) for k, v in rows.items()}
    added = parts["Lightning iteration"] - parts["plain iteration"]
    assert abs(parts["added"] - added) <= 3 * 0.0005 + 1e-9  # each printed to 0.001
    # the loop's parts, the step's parts and the updates account for all of it
    terms = [v for k, v in parts.items() if k.startswith(("loop:", "step:", "the updates"))]
    assert len(terms) == 14 and abs(sum(terms) - added) <= (len(terms) + 2) * 0.0005 + 1e-9
    assert parts["step: logging (self.log, logging steps)"] > 0  # the timers are in place


def test_the_emd_against_quality_benchmark_runs_end_to_end(tmp_path):
    """make bench-emd DATA=mnist5k on a few steps and tiny nets: a row per model and figure."""
    out = tmp_path / "emd"
    tiny = ["--model.g_width", "8", "--model.d_width", "8", "--fid.n_samples", "64"]
    proc = subprocess.run([sys.executable, "benchmarks/emd_quality.py", "--steps", "12",
                           "--every", "4", "--out", str(out), *tiny], cwd=ROOT, text=True,
                          capture_output=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = (tmp_path / "emd.md").read_text()
    for model, figure in (("wgan_gp", "val/critic_emd"), ("wgan", "val/critic_emd_train"),
                          ("gan", "train/d_loss"), ("wgan_gp", "val/domain_fid")):  # fmt: skip
        assert re.search(rf"^\| {model} \| .*`{figure}`", text, re.M), text
    assert (tmp_path / "emd.png").stat().st_size > 10_000
