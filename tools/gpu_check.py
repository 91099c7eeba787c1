"""The GPU check: one command that a machine with a GPU runs as it is, in under 10 minutes.

    python tools/gpu_check.py --out gpu-check [--data-dir DIR] [--budget 570]

Steps, each in its own process under its own time limit, so that one stall cannot eat the
rest (a step that runs out of time is killed and recorded as such, and the next one starts):
1. the machine: GPU, driver, TensorFlow's build (CUDA, cuDNN) and the devices it sees;
2. `pytest -m gpu` without its XLA test, which can stall for many minutes (XLA is measured
   in the last step instead, time-boxed);
3. `zoo.bench` for each S1 model at its study batch size, at float32 and at the `auto`
   precision, with the real input pipeline, and the pipeline alone (can it feed the GPU?);
4. one epoch of S1's ResidualCNN at full width on all of CIFAR-10, as `zoo.train` runs it;
5. XLA last: the bench with `--jit` under `XLA_FLAGS=--xla_gpu_autotune_level=0`, then under
   XLA's defaults; the first window's time against the later ones splits a stall into
   compile-and-autotune and run.

Writes OUT/gpu_check.csv (a row per step), OUT/gpu_check.md (a summary) and OUT/gpu_check.log
(every step's output). Exits 1 when a test failed or when a GPU is present (nvidia-smi answers)
but TensorFlow sees none, which would pass CPU figures off as the GPU's; 0 otherwise: a slow or
stalled step is a finding, not a failure. Without nvidia-smi it runs through on the CPU.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from zoo import files
from zoo import runs as zoo_runs

S1 = ("basic_cnn", "improved_cnn", "resnet_cnn", "vgg_a")
XLA_SECONDS = 130  # the two XLA benches' share of the budget
COLUMNS = ("step", "model", "precision", "xla", "status", "seconds", "train_img_s",
           "pipeline_img_s", "pipeline_cost", "feed_img_s", "inference_img_s", "warmup_s",
           "steps_per_call", "peak_gpu_mib", "note")  # fmt: skip


class Check:
    """Runs the steps against one deadline and records each as a CSV row."""

    def __init__(self, out: Path, budget: float) -> None:
        self.out, self.deadline = out, time.monotonic() + budget
        self.rows: list[dict] = []
        self.log = open(out / "gpu_check.log", "w")  # noqa: SIM115 (open for the whole check)
        self.tests_failed = False

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, argv: list[str], limit: float, env: dict | None = None) -> tuple[str, float, str]:
        """Runs `argv` for at most `limit` seconds (less if the deadline is nearer); returns
        (status, seconds, output)."""
        limit = min(limit, self.left())
        if limit < 5:
            return "skipped", 0.0, "no time left"
        self.log.write(f"\n$ {shlex.join(argv)}   (limit {limit:.0f} s)\n")
        self.log.flush()
        begun = time.monotonic()
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=limit,
                env={**os.environ, **(env or {})},
            )  # fmt: skip
            output, status = done.stdout + done.stderr, "ok" if done.returncode == 0 else "failed"
        except subprocess.TimeoutExpired as stop:
            output = _text(stop.stdout) + _text(stop.stderr)
            status = "timeout"
        except OSError as err:  # no such program (nvidia-smi on a machine without a GPU)
            output, status = str(err), "missing"
        seconds = time.monotonic() - begun
        self.log.write(output + f"\n[{status} after {seconds:.1f} s]\n")
        self.log.flush()
        print(f"{status:<8} {seconds:6.1f} s  {shlex.join(argv)[:110]}", flush=True)
        return status, seconds, output

    def record(self, **row: object) -> None:
        self.rows.append({key: row.get(key, "") for key in COLUMNS})
        text = io.StringIO()
        writer = csv.DictWriter(text, COLUMNS)
        writer.writeheader()
        writer.writerows(self.rows)
        files.write_text(self.out / "gpu_check.csv", text.getvalue())  # a kill keeps the last


def _text(value: bytes | str | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def machine(check: Check) -> bool:
    """Records the machine; returns False for a GPU that TensorFlow does not see."""
    status, seconds, out = check.run(
        ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap",
         "--format=csv,noheader"], 20)  # fmt: skip
    check.record(step="nvidia-smi", status=status, seconds=f"{seconds:.1f}", note=out.strip())
    smi_ok = status == "ok"
    code = (
        "import json, tensorflow as tf\n"
        "from zoo import machine\n"
        "info = tf.sysconfig.get_build_info()\n"
        "print(json.dumps({'tensorflow': tf.__version__, 'cuda': info.get('cuda_version'),"
        " 'cudnn': info.get('cudnn_version'), 'gpus': [d.name for d in"
        " tf.config.list_physical_devices('GPU')], 'capabilities': machine.gpu_capabilities(),"
        " 'auto': machine.auto_precision(), 'cpu': machine.cpu_description()}))\n"
    )
    status, seconds, out = check.run(
        [sys.executable, "-c", code], 90, {"TF_CPP_MIN_LOG_LEVEL": "0"}
    )  # its library search
    found = [line for line in out.splitlines() if line.startswith("{")]
    check.record(step="tensorflow", status=status, seconds=f"{seconds:.1f}",
                 note=found[-1] if found else out.strip()[-300:])  # fmt: skip
    gpus = json.loads(found[-1])["gpus"] if found else []
    if smi_ok and not gpus:
        # Every later step would run on the CPU and be read as the GPU's: stop here. The
        # log holds TensorFlow's reason (a CUDA library it could not open, say).
        missing = [line for line in out.splitlines() if "Could not load" in line]
        note = "a GPU is present but TensorFlow sees none; " + " ".join(missing)
        check.record(step="stopped", status="failed", note=note)
        return False
    return True


def tests(check: Check) -> None:
    status, seconds, out = check.run(
        [sys.executable, "-m", "pytest", "-m", "gpu", "-k", "not xla", "-q",
         "-p", "no:cacheprovider", "tests/test_gpu.py"], 150)  # fmt: skip
    summary = out.strip().splitlines()[-1] if out.strip() else ""
    check.tests_failed |= status == "failed"
    check.record(step="pytest -m gpu", status=status, seconds=f"{seconds:.1f}", note=summary)


def bench(check: Check, model: str, precision: str, limit: float, jit: bool = False,
          env: dict | None = None, step: str = "bench") -> None:  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        figures_file = Path(tmp) / "figures.json"
        argv = [sys.executable, "-m", "zoo.bench", model, "--precision", precision,
                "--steps", "40", "--windows", "3", "--json", str(figures_file)]  # fmt: skip
        status, seconds, out = check.run(argv + (["--jit"] if jit else []), limit, env)
        f = json.loads(figures_file.read_text()) if figures_file.exists() else {}
    row = dict(step=step, model=model, precision=f.get("precision", precision),
               xla=jit, status=status, seconds=f"{seconds:.1f}")  # fmt: skip
    if f:
        row.update(
            train_img_s=f"{f['in_memory']['images_per_second']:.0f}",
            inference_img_s=f"{f['inference']['images_per_second']:.0f}",
            warmup_s=f"{f['in_memory']['warmup_seconds']:.1f}",
            steps_per_call=f["steps_per_execution"],
            peak_gpu_mib=f"{f.get('peak_gpu_mib', float('nan')):.0f}",
            note=f"batch {f['batch']}; {f['device']}",
        )
        if "pipeline" in f:
            row.update(pipeline_img_s=f"{f['pipeline']['images_per_second']:.0f}",
                       pipeline_cost=f"{f['pipeline_cost']:+.1%}",
                       feed_img_s=f"{f['feed']['images_per_second']:.0f}")  # fmt: skip
    else:
        row["note"] = out.strip().splitlines()[-1][:200] if out.strip() else ""
    check.record(**row)


def one_epoch(check: Check, limit: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        status, seconds, out = check.run(
            [sys.executable, "-m", "zoo.train", "resnet_cnn", "--epochs", "1", "--out", tmp,
             "--quiet"], limit)  # fmt: skip
        folders = zoo_runs.folders_in(tmp)
        history = zoo_runs.read_history(folders[0]) if folders else None
        epoch = history["seconds"].iloc[-1] if history is not None and len(history) else ""
    last = out.strip().splitlines()[-1] if out.strip() else ""
    check.record(step="train 1 epoch", model="resnet_cnn", status=status,
                 seconds=f"{seconds:.1f}", note=f"epoch {epoch} s; {last[-200:]}")  # fmt: skip


def summary(check: Check) -> str:
    lines = ["# GPU check", "", "| " + " | ".join(COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]  # fmt: skip
    for row in check.rows:
        cells = [str(row[key]).replace("|", "/").replace("\n", " ")[:160] for key in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="gpu-check", help="folder for the CSV, summary, log")
    parser.add_argument("--data-dir", help="data folder (default: $ZOO_DATA_DIR)")
    parser.add_argument("--budget", type=float, default=570, help="seconds for all steps")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.data_dir:
        os.environ["ZOO_DATA_DIR"] = args.data_dir
    check = Check(out, args.budget)
    if not machine(check):
        files.write_text(out / "gpu_check.md", summary(check))
        print(summary(check))
        return 1
    tests(check)
    # The auto precision first for every model, then float32: if time runs short, the
    # figures of the default setting are the ones kept. The epoch and XLA keep time of their
    # own, so the last steps run whatever the benches took.
    for precision in ("auto", "float32"):
        for model in S1:
            bench(check, model, precision, min(60, check.left() - XLA_SECONDS - 60))
    one_epoch(check, min(150, check.left() - XLA_SECONDS))
    flags = os.environ.get("XLA_FLAGS", "")  # kept: it may say where CUDA's ptxas lives
    for level, env in (("autotune 0", {"XLA_FLAGS": f"{flags} --xla_gpu_autotune_level=0"}),
                       ("autotune default", {})):  # fmt: skip
        bench(check, "resnet_cnn", "auto", XLA_SECONDS / 2, jit=True, env=env,
              step=f"xla {level}")  # fmt: skip
    files.write_text(out / "gpu_check.md", summary(check))
    print(summary(check))
    return 1 if check.tests_failed else 0


if __name__ == "__main__":
    sys.exit(main())
