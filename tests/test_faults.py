"""Nothing lost, every fault one line: interrupted writes, damaged folders, bad values, Ctrl-C.

The write-point test interrupts a short real run at each of its file writes in turn, at the
moment the write would become visible, and checks that the same command then finishes the run
into the same folder with the same result as a run that was never interrupted.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from zoo import files
from zoo.recipes import RunConfig, recipe
from zoo.train import Run, train
from zoo.train.__main__ import main


class _Killed(BaseException):
    """Stands for a kill: no `except Exception` in the trainer or Keras catches it."""


def _tiny(data_dir: Path, **overrides) -> RunConfig:
    settings = dict(data_dir=str(data_dir), epochs=2, subset=20, test_subset=20, batch_size=64,
                    model_kwargs={"hidden": (16,)})  # fmt: skip
    return recipe("mlp_mnist", **{**settings, **overrides})


def _interrupt_at(monkeypatch: pytest.MonkeyPatch, at: int) -> dict[str, list]:
    """Makes the `at`-th file write (1-based; 0: none) raise `_Killed` before it lands."""
    real = files._replace
    seen: dict[str, list] = {"writes": []}

    def replace(tmp: Path, path: Path) -> None:
        seen["writes"].append(path.name)
        if len(seen["writes"]) == at:
            raise _Killed(path)
        real(tmp, path)

    monkeypatch.setattr(files, "_replace", replace)
    return seen


def _same_run(run: Run, whole: Run) -> None:
    assert run.path.name == whole.path.name  # the same folder: resumed, not retrained into -2
    for split in ("train", "val", "test"):
        assert run.metrics[split] == pytest.approx(whole.metrics[split], rel=1e-6)
    assert run.metrics["epochs_run"] == whole.metrics["epochs_run"]
    assert run.metrics["best_epoch"] == whole.metrics["best_epoch"]
    columns = [c for c in whole.history if c != "seconds"]
    pd.testing.assert_frame_equal(run.history[columns], whole.history[columns])
    steps, whole_steps = (pd.read_csv(r.path / "steps.csv") for r in (run, whole))
    pd.testing.assert_frame_equal(steps, whole_steps)
    assert not list(run.path.rglob(f"{files.TMP_PREFIX}*"))  # no temporary file left


@pytest.mark.slow
def test_an_interruption_at_every_write_point_resumes_to_the_same_run(
    data_dir, tmp_path, monkeypatch
):
    config = _tiny(data_dir)
    with monkeypatch.context() as m:
        writes = _interrupt_at(m, 0)["writes"]
        whole = train(config, tmp_path / "whole", verbose=0)
    # Each epoch: best.keras, steps.csv, history.csv, the backup; then the confusion matrix
    # and metrics.json; config.json first.
    assert writes[0] == "config.json" and writes[-1] == "metrics.json", writes
    assert {"best.keras", "steps.csv", "history.csv", "epoch-00002"} <= set(writes), writes
    for at in range(1, len(writes) + 1):
        out = tmp_path / f"at-{at}"
        with monkeypatch.context() as m:
            _interrupt_at(m, at)
            with pytest.raises(_Killed):
                train(config, out, verbose=0)
        _same_run(train(config, out, verbose=0), whole)


def _killed_in_the_second_epoch(config: RunConfig, out: Path, monkeypatch) -> Path:
    """Runs `config` until a write in its second epoch, after the first one's backup."""
    with monkeypatch.context() as m:
        _interrupt_at(m, 6)
        with pytest.raises(_Killed):
            train(config, out, verbose=0)
    (folder,) = out.iterdir()
    return folder


@pytest.mark.slow
def test_what_a_killed_writer_left_is_cleared_when_the_run_resumes(data_dir, tmp_path, monkeypatch):
    config = _tiny(data_dir)
    folder = _killed_in_the_second_epoch(config, tmp_path, monkeypatch)
    # What a SIGKILL during two writes leaves: a half-written file and a half-written backup.
    (folder / f"{files.TMP_PREFIX}999-history.csv").write_text("epoch,lo")
    half = folder / "backup" / f"{files.TMP_PREFIX}999-epoch-00002"
    half.mkdir()
    (half / "state.weights.h5").write_bytes(b"\x89HDF")
    run = train(config, tmp_path, verbose=0)
    assert run.metrics["epochs_run"] == 2
    assert not list(folder.rglob(f"{files.TMP_PREFIX}*"))


def test_a_format1_backup_keeps_its_best_checkpoint_score():
    from zoo.train.callbacks import Backup, BestCheckpoint

    best = BestCheckpoint(Path("best.keras"), "val_accuracy")
    state = {"epoch": 3, "callbacks": {"ModelCheckpoint": {"best": 0.75}}}  # as format 1 saved it
    Backup(Path("backup"), [best], state).on_train_begin()
    assert best.best == 0.75


def test_a_finished_run_with_damaged_metrics_is_repaired_not_retrained(data_dir, tmp_path):
    config = _tiny(data_dir, epochs=1)
    whole = train(config, tmp_path, verbose=0)
    trained = (whole.path / "best.keras").stat().st_mtime_ns
    (whole.path / "metrics.json").write_text("")  # as a full disk or another tool left it
    repaired = train(config, tmp_path, verbose=0)
    assert repaired.path == whole.path
    assert (whole.path / "best.keras").stat().st_mtime_ns == trained  # not trained again
    assert repaired.metrics["test"] == pytest.approx(whole.metrics["test"])
    assert repaired.metrics["stop_reason"] == "completed"
    assert json.loads((whole.path / "metrics.json").read_text())["test"]


def test_a_damaged_config_json_is_rewritten_and_the_run_resumes(data_dir, tmp_path):
    config = _tiny(data_dir, epochs=1)
    first = train(config, tmp_path, verbose=0)
    for name in ("metrics.json", "config.json"):
        (first.path / name).write_text("")
    again = train(config, tmp_path, verbose=0)
    assert again.path == first.path and again.config == config


def test_config_json_is_not_rewritten_on_resume(data_dir, tmp_path, monkeypatch):
    config = _tiny(data_dir)
    folder = _killed_in_the_second_epoch(config, tmp_path, monkeypatch)
    before = (folder / "config.json").stat().st_mtime_ns
    with monkeypatch.context() as m:
        writes = _interrupt_at(m, 0)["writes"]
        train(config, tmp_path, verbose=0)
    assert "config.json" not in writes
    assert (folder / "config.json").stat().st_mtime_ns == before


def test_a_run_that_diverges_at_once_keeps_no_nan_weights_and_valid_json(data_dir, tmp_path):
    run = train(_tiny(data_dir, epochs=3, lr=1e30), tmp_path, verbose=0)
    assert run.metrics["stop_reason"] == "nan" and run.metrics["best_epoch"] is None
    assert not (run.path / "best.keras").exists()
    text = (run.path / "metrics.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in metrics.json"))


def test_a_failure_before_the_first_epoch_leaves_no_folder(tmp_path, monkeypatch):
    empty = tmp_path / "no-data"
    empty.mkdir()
    with pytest.raises(ValueError, match="No mnist data in data_dir"):
        train(recipe("lenet", data_dir=str(empty)), tmp_path / "runs", verbose=0)
    assert not list((tmp_path / "runs").iterdir())


@pytest.mark.parametrize(
    "args, message",
    [
        (["lenet", "--lr", "nan"], "lr must be a number > 0, got nan"),
        (["lenet", "--lr", "inf"], "lr must be a number > 0, got inf"),
        (["lenet", "--lr", "-0.1"], "lr must be a number > 0, got -0.1"),
        (["lenet", "--gamma", "nan"], "gamma must be a number > 0"),
        (["lenet", "--label-smoothing", "1"], "label_smoothing must be a number >= 0 and < 1"),
        (["lenet", "--label-smoothing", "-0.1"], "label_smoothing must be a number >= 0"),
        (["lenet", "--early-stopping", "-1"], "early_stopping must be a number >= 0"),
        (["lenet", "--time-limit", "-5"], "time_limit must be a number >= 0"),
        (
            ["lenet", "--strategy", "multiworker", "--time-limit", "5"],
            "time_limit does not run under the multiworker strategy",
        ),
        (["--resume", "runs/x", "--epochs", "50"], "would make another run"),
    ],
)
def test_bad_values_are_refused_in_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def _cli_fault(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as stop:
        main([*args, "--quiet"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_an_out_that_cannot_be_written_is_one_line(data_dir, tmp_path, capsys):
    common = ("mlp_mnist", "--data-dir", str(data_dir), "--subset", "5", "--epochs", "1")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    assert str(a_file) in _cli_fault(capsys, *common, "--out", str(a_file))
    if os.geteuid() != 0:  # root writes through read-only permissions
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert "Permission denied" in _cli_fault(capsys, *common, "--out", str(locked))


def test_a_full_disk_is_one_line_and_keeps_the_last_epoch(data_dir, tmp_path, monkeypatch, capsys):
    common = ("mlp_mnist", "--data-dir", str(data_dir), "--subset", "20", "--test-subset", "20",
              "--set", "hidden=(16,)", "--out", str(tmp_path))  # fmt: skip
    real, count = files._replace, []

    def full(tmp: Path, path: Path) -> None:
        count.append(path)
        if len(count) > 5:  # config.json and the first epoch's files fit
            raise OSError(28, "No space left on device", str(path))
        real(tmp, path)

    monkeypatch.setattr(files, "_replace", full)
    assert "No space left on device" in _cli_fault(capsys, *common, "--epochs", "3")
    monkeypatch.undo()
    assert main([*common, "--epochs", "3", "--quiet"]) == 0  # the same command finishes it
    history = pd.read_csv(next(tmp_path.glob("mlp_mnist-*/history.csv")))
    assert history["epoch"].tolist() == [1, 2, 3]


def test_zoo_data_dir_that_is_a_file_is_one_line(tmp_path, monkeypatch, capsys):
    a_file = tmp_path / "data"
    a_file.write_text("")
    monkeypatch.setenv("ZOO_DATA_DIR", str(a_file))
    err = _cli_fault(capsys, "lenet", "--out", str(tmp_path / "runs"))
    assert "$ZOO_DATA_DIR" in err and "got a file" in err


def test_ctrl_c_exits_130_with_the_command_that_resumes(data_dir, tmp_path, monkeypatch, capsys):
    from zoo.train import callbacks

    begin = callbacks.EpochExtras.on_epoch_begin

    def interrupt(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt
        begin(self, epoch, logs)

    monkeypatch.setattr(callbacks.EpochExtras, "on_epoch_begin", interrupt)
    common = ["mlp_mnist", "--data-dir", str(data_dir), "--subset", "20", "--epochs", "2",
              "--set", "hidden=(16,)", "--out", str(tmp_path), "--quiet"]  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        main(common)
    assert stop.value.code == 130
    err = capsys.readouterr().err.strip()
    (folder,) = tmp_path.iterdir()
    assert err.endswith(f"interrupted; resume with: python -m zoo.train --resume {folder}"), err
    monkeypatch.undo()
    assert main(["--resume", str(folder), "--quiet"]) == 0
    assert len(pd.read_csv(folder / "history.csv")) == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (["mlp_mnist", "--executions-per-trial", "0"], "--executions-per-trial: expected a whole"),
        (["mlp_mnist", "--max-trials", "0"], "--max-trials: expected a whole number >= 1"),
    ],
)
def test_search_refuses_zero_trials_and_executions(args, message):
    done = subprocess.run(
        [sys.executable, "-m", "tuning.search", *args], capture_output=True, text=True
    )
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.slow
def test_two_processes_extracting_one_archive_do_not_fail_each_other(tmp_path):
    # 20,000 members take seconds to extract; both processes, started and then told to go
    # together, ask for the same archive within milliseconds of each other.
    archive, cache = tmp_path / "many.tar.gz", tmp_path / "cache"
    with tarfile.open(archive, "w:gz") as tar:
        for i in range(20_000):
            member = tarfile.TarInfo(f"many/{i % 10}/{i:05d}.txt")
            member.size = 1
            tar.addfile(member, io.BytesIO(b"x"))
    script = (
        "import sys; from pathlib import Path; from zoo.data import formats; "
        "print('ready', flush=True); sys.stdin.readline(); "
        "print(formats.extract(Path(sys.argv[1]), Path(sys.argv[2])))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(archive), str(cache)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for _ in range(2)
    ]  # fmt: skip
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-500:]
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-500:] for o in outs]
    assert outs[0][0] == outs[1][0]  # the same folder
    assert len(list(Path(outs[0][0].strip()).rglob("*.txt"))) == 20_000


@pytest.mark.slow
def test_resume_reads_back_a_time_limited_run_that_lost_its_state(data_dir, tmp_path, monkeypatch):
    import shutil

    from zoo.train import callbacks, resume

    def begin(self, epoch, logs=None):
        self.epoch = epoch

    def step(self, batch, logs=None):
        if self.epoch == 1:
            raise callbacks.TimeLimitReached("time limit")

    with monkeypatch.context() as m:
        m.setattr(callbacks.TimeLimit, "on_epoch_begin", begin, raising=False)
        m.setattr(callbacks.TimeLimit, "on_train_batch_end", step)
        stopped = train(_tiny(data_dir, time_limit=60.0), tmp_path, verbose=0)
    shutil.rmtree(stopped.path / "backup")  # as a run folder written before backups were kept
    history = (stopped.path / "history.csv").read_text()
    again = resume(stopped.path, verbose=0)
    assert again.metrics == stopped.metrics  # read back: nothing to continue from
    assert (stopped.path / "history.csv").read_text() == history
