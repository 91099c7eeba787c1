"""`--strategy multiworker` on loopback: two worker processes on 127.0.0.1, as on two machines.

Each worker is a real `python -m zoo.train` process with its own TF_CONFIG. The runs are
checked against one process training the same settings with the same global batch: every
epoch's loss and accuracy must agree within float noise. With the batch sharded, the two
workers' halves make up each global batch once; a worker that saw another's examples (or its
own twice) would average a different loss and take a different step, and the runs would part.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from zoo.recipes import recipe
from zoo.train import Run, train

# One worker trains the `alone` fixture once and runs every test that compares with it.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("multiworker")]

EPOCHS = 3
# A worker that kills itself (SIGKILL: no cleanup, no except clause runs) at a given step.
_KILLED_AT = """
import os, signal, sys
from zoo.train import callbacks
from zoo.train.__main__ import main

epoch, batch = int(os.environ["KILL_EPOCH"]), int(os.environ["KILL_BATCH"])
step = callbacks.StepLosses.on_train_batch_end

def on_train_batch_end(self, at, logs=None):
    if self._epoch == epoch and at == batch:
        os.kill(os.getpid(), signal.SIGKILL)
    step(self, at, logs)

callbacks.StepLosses.on_train_batch_end = on_train_batch_end
sys.exit(main(sys.argv[1:]))
"""


def _settings(data_dir: Path) -> dict:
    # 170 training images in steps of 40: the last step's 10 split 5 and 5 between workers.
    # No dropout or batch norm, whose per-replica randomness and statistics differ by design.
    # float32: half a batch per worker rounds differently from a whole one in bfloat16.
    return dict(data_dir=str(data_dir), epochs=EPOCHS, subset=20, test_subset=20, batch_size=40,
                augment=False, steps_per_execution=1, precision="float32",
                model_kwargs={"weight_decay": 1e-4, "hidden": (16,)})  # fmt: skip


def _free_ports() -> list[int]:
    """Two consecutive free ports (Slurm's resolver numbers its tasks' ports from a base)."""
    for _ in range(100):
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            base = first.getsockname()[1]
            try:
                second.bind(("127.0.0.1", base + 1))
            except OSError:
                continue
            return [base, base + 1]
    raise RuntimeError("no two consecutive free ports")


def _argv(data_dir: Path, out: Path) -> list[str]:
    return ["mlp_mnist", "--strategy", "multiworker", "--data-dir", str(data_dir),
            "--epochs", str(EPOCHS), "--subset", "20", "--test-subset", "20",
            "--batch-size", "40", "--no-augment", "--steps-per-execution", "1",
            "--precision", "float32",
            "--set", "hidden=(16,)", "--out", str(out), "--quiet"]  # fmt: skip


def _start_workers(
    data_dir: Path,
    out: Path,
    scratch: Path,
    kill: tuple[int, int] | None = None,
    slurm: bool = False,
    argv: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> list[subprocess.Popen]:
    """Starts the chief (worker 0) and worker 1; worker 1 dies at `kill` (epoch, batch).

    The cluster comes from TF_CONFIG, or with `slurm` from the variables `srun` sets for a job
    step of two tasks on one node. `argv` replaces the training command's arguments; `env` adds
    to its environment.
    """
    ports = _free_ports()
    hosts = [f"127.0.0.1:{p}" for p in ports]
    procs = []
    extra = env or {}
    for index in range(2):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "TF_CONFIG"))}
        env.update(extra)
        env["TMPDIR"] = str(scratch / f"tmp{index}")
        (scratch / f"tmp{index}").mkdir(parents=True, exist_ok=True)
        if slurm:
            env.update(SLURM_STEP_NUM_TASKS="2", SLURM_PROCID=str(index),
                       SLURM_STEP_NODELIST="127.0.0.1", SLURM_STEP_TASKS_PER_NODE="2",
                       ZOO_SLURM_PORT=str(ports[0]))  # fmt: skip
        else:
            env["TF_CONFIG"] = json.dumps(
                {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
            )
        command = [sys.executable, "-m", "zoo.train"]
        if kill and index == 1:
            env.update(KILL_EPOCH=str(kill[0]), KILL_BATCH=str(kill[1]))
            command = [sys.executable, "-c", _KILLED_AT]
        procs.append(
            subprocess.Popen(
                command + (argv or _argv(data_dir, out)),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    return procs


def _finish(procs: list[subprocess.Popen], timeout: float = 300) -> list[str]:
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=timeout)[0])
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output[-3000:]
    return outputs


def _same_training(run: Path, alone: Run) -> None:
    history = pd.read_csv(run / "history.csv")
    # Every epoch once: none lost or repeated.
    assert list(history["epoch"]) == list(range(1, EPOCHS + 1))
    for column in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert history[column].tolist() == pytest.approx(alone.history[column].tolist(), rel=1e-5)
    steps, alone_steps = pd.read_csv(run / "steps.csv"), pd.read_csv(alone.path / "steps.csv")
    assert steps["step"].tolist() == alone_steps["step"].tolist()
    assert steps["loss"].tolist() == pytest.approx(alone_steps["loss"].tolist(), rel=1e-4)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and alone.metrics["replicas"] == 1
    for split in ("train", "val", "test"):
        assert metrics[split] == pytest.approx(alone.metrics[split], rel=1e-5)
    confusion, alone_confusion = (
        pd.read_csv(p / "confusion_matrix.csv", index_col=0) for p in (run, alone.path)
    )
    pd.testing.assert_frame_equal(confusion, alone_confusion)  # every test image, once


@pytest.fixture(scope="module")
def alone(data_dir, tmp_path_factory) -> Run:
    """The same settings trained by one process."""
    return train(recipe("mlp_mnist", **_settings(data_dir)), tmp_path_factory.mktemp("alone"))


def test_two_workers_train_like_one_process_and_only_the_chief_writes(data_dir, alone, tmp_path):
    out = tmp_path / "runs"
    # Over the memory limit, both workers stream their images from disk; the reference did not.
    outputs = _finish(_start_workers(data_dir, out, tmp_path, env={"ZOO_MEMORY_LIMIT": "1K"}))
    (run,) = out.iterdir()  # one run folder: the chief's
    assert run.name.startswith("mlp_mnist-mnist-")
    assert json.loads((run / "config.json").read_text())["data_streamed"] is True
    _same_training(run, alone)
    assert str(run) in outputs[1]  # the worker reports the chief's folder
    for index in range(2):  # the worker's own copy went with it
        assert not list((tmp_path / f"tmp{index}").iterdir())
    assert not (run / "backup").exists()


@pytest.mark.parametrize("restart", ["the same command", "--resume RUN_DIR"])
def test_a_worker_killed_mid_epoch_resumes_from_the_last_finished_epoch(
    data_dir, alone, tmp_path, restart
):
    out = tmp_path / "runs"
    chief, worker = _start_workers(data_dir, out, tmp_path, kill=(1, 2))
    worker.wait(timeout=300)
    assert worker.returncode == -signal.SIGKILL
    # The chief now waits on its lost peer; a scheduler would stop the job and start it again.
    chief.send_signal(signal.SIGKILL)
    chief.wait(timeout=60)
    (run,) = out.iterdir()
    assert len(pd.read_csv(run / "history.csv")) == 1  # epoch 0 finished, epoch 1 did not
    assert (run / "backup" / "epoch-00001").is_dir()
    assert not (run / "metrics.json").exists()

    argv = ["--resume", str(run), "--quiet"] if restart.startswith("--resume") else None
    _finish(_start_workers(data_dir, out, tmp_path, argv=argv))
    assert [p.name for p in out.iterdir()] == [run.name]  # resumed, not begun anew in -2
    _same_training(run, alone)


def test_a_slurm_job_step_of_two_tasks_trains_as_two_workers(data_dir, alone, tmp_path):
    out = tmp_path / "runs"
    _finish(_start_workers(data_dir, out, tmp_path, slurm=True))
    (run,) = out.iterdir()
    _same_training(run, alone)
