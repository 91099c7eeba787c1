"""tools/gpu_check.py: every step under its own limit, and no CPU figures passed off as a GPU's."""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_stalled_step_is_killed_at_its_limit_and_the_next_runs(tmp_path):
    check = _module().Check(tmp_path, budget=30)
    status, seconds, _ = check.run([sys.executable, "-c", "import time; time.sleep(30)"], 5)
    assert status == "timeout" and seconds < 10
    assert check.run([sys.executable, "-c", "print('next')"], 10)[::2] == ("ok", "next\n")
    assert check.run(["no-such-program-here"], 10)[0] == "missing"
    check.deadline = 0  # the budget is spent: later steps are skipped, not started
    assert check.run([sys.executable, "-c", "pass"], 10)[0] == "skipped"
    check.record(step="x", status="ok", note="a | b")
    assert "a / b" in _module().summary(check)


@pytest.mark.slow  # 10-14 s: the whole suite runs it, the fast lane not
def test_a_gpu_that_tensorflow_cannot_see_stops_the_check(tmp_path):
    # A stand-in nvidia-smi: the machine has a GPU, but TensorFlow here sees none.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA H200, 580.159.04, 143771 MiB, 9.0'\n")
    smi.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "CUDA_VISIBLE_DEVICES": ""}  # fmt: skip
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "out"), "--budget", "120"],
        capture_output=True, text=True, timeout=180, cwd=REPO, env=env,
    )  # fmt: skip
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    rows = list(csv.DictReader((tmp_path / "out" / "gpu_check.csv").open()))
    assert [row["step"] for row in rows] == ["nvidia-smi", "tensorflow", "stopped"]
    assert "TensorFlow sees none" in rows[-1]["note"]
    assert (tmp_path / "out" / "gpu_check.md").exists()
