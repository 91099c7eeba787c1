"""Searches on real MNIST: the S2 grid, every tuner, resume after a kill, a distributed search
on loopback, the CLI's errors. Trials are tiny (a few images per class, one epoch)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import pandas as pd
import pytest

import tuning
import zoo
from tuning.search import main
from tuning.tuner import ZooHyperModel
from zoo.recipes import RunConfig
from zoo.train import make_optimizer

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {f.name for f in dataclasses.fields(RunConfig)}


@pytest.mark.parametrize("name", tuning.list_spaces())
def test_every_space_builds_with_default_hyperparameters(name):
    hp = tuning.hyperparameters(name)
    config = tuning.get_space(name)(hp)
    info = zoo.describe(config.model)
    # Each hyperparameter feeds a run setting or a builder toggle of the same name.
    assert hp.space
    for item in hp.space:
        assert item.name in SETTINGS or item.name in info.toggles, item.name
    model = ZooHyperModel(name, {}).build(kt.HyperParameters())
    assert model.optimizer is not None and model.count_params() > 0


def _values(item: kt.engine.hyperparameters.HyperParameter) -> list:
    """A hyperparameter's values: every one of a Choice or Boolean, a range's ends and default."""
    if isinstance(item, kt.engine.hyperparameters.Boolean):
        return [False, True]
    if isinstance(item, kt.engine.hyperparameters.Choice):
        return list(item.values)
    return sorted({item.min_value, item.default, item.max_value})


def _what_trains(config: RunConfig) -> str:
    """The config with the optimizer as Keras builds it (Adam with a decoupled decay is
    AdamW, and a momentum an optimizer ignores changes nothing)."""
    optimizer = make_optimizer(config)
    settings = {k: v for k, v in optimizer.get_config().items() if k != "name"}
    settings["weight_decay"] = settings["weight_decay"] or 0.0  # None is none
    kind = "Adam" if isinstance(optimizer, keras.optimizers.Adam) else type(optimizer).__name__
    run = dataclasses.asdict(config)
    for name in ("optimizer", "momentum", "rho", "decoupled_decay"):
        del run[name]
    return json.dumps([kind, settings, run], sort_keys=True, default=str)


@pytest.mark.parametrize("name", tuning.list_spaces())
def test_distinct_hyperparameters_train_distinct_runs(name):
    # Two points of a space that train the same run waste a trial and split its score.
    space = tuning.hyperparameters(name).space
    assert not any(item.conditions for item in space)  # every point is the full product
    seen: dict[str, dict] = {}
    for values in itertools.product(*map(_values, space)):
        hp = kt.HyperParameters()
        for item, value in zip(space, values, strict=True):
            hp.Fixed(item.name, value)
        point = {item.name: value for item, value in zip(space, values, strict=True)}
        key = _what_trains(tuning.get_space(name)(hp))
        assert key not in seen, f"{point} trains the same run as {seen[key]}"
        seen[key] = point


def test_space_values_reach_the_config():
    hp = kt.HyperParameters()
    hp.Fixed("lr", 0.01)
    hp.Fixed("hidden", 500)
    hp.Fixed("weight_decay", 1e-2)
    config = tuning.get_space("mlp_mnist")(hp)
    assert config.lr == 0.01 and config.model_kwargs["hidden"] == (500,)
    assert config.model_kwargs["weight_decay"] == 1e-2  # S2's L2 is the model's
    hp = kt.HyperParameters()
    hp.Fixed("decoupled_decay", 1e-3)
    assert tuning.get_space("vgg_a")(hp).decoupled_decay == 1e-3  # S1's is AdamW's
    assert tuning.get_space("mlp_mnist")(kt.HyperParameters()).subset == 0.1  # S2 searched 10 %


def test_bad_input_errors_name_the_valid_choices(tmp_path):
    with pytest.raises(ValueError, match="Did you mean 'mlp_mnist'.*Valid spaces: deeper_convnet"):
        tuning.run_search("mlp_mnst", tmp_path)
    with pytest.raises(ValueError, match="Valid tuners: grid, random, hyperband, bayesian"):
        tuning.run_search("mlp_mnist", tmp_path, tuner="evolution")
    with pytest.raises(ValueError, match="no hyperparameter 'hiden'.*lr, hidden, weight_decay"):
        tuning.run_search("mlp_mnist", tmp_path, fixed={"hiden": 500})
    with pytest.raises(ValueError, match="Valid: val_accuracy, val_loss"):
        tuning.run_search("mlp_mnist", tmp_path, objective="f1")
    assert not any(tmp_path.iterdir())  # nothing written for a bad request


@pytest.mark.parametrize(
    "argv, message",
    [
        (["mlp_mnst"], "Unknown space 'mlp_mnst'"),
        (["mlp_mnist", "--tuner", "evolution"], "Valid tuners"),
        (["mlp_mnist", "--set", "hiden=500"], "Its hyperparameters: lr, hidden"),
        (["mlp_mnist", "--set", "hidden"], "--set expects KEY=VALUE"),
        (["mlp_mnist", "--set", "hidden=abc"], "'hidden' expects tuple[int, ...], got ('abc',)"),
        (["mlp_mnist", "--subset", "all"], "expected a fraction or a count"),
        (["mlp_mnist", "--data-dir", "/no/such/folder"], "/no/such/folder"),
        ([], "give a SPACE"),
    ],
)
def test_cli_misuse_exits_2_with_one_line(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*/search.json"))  # the corrected command is not refused


def test_cli_lists_spaces(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "mlp_mnist " in out and "lr, hidden, weight_decay" in out


@pytest.mark.slow
def test_s2_grid_runs_every_combination_once(data_dir, tmp_path):
    result = tuning.run_search(
        "mlp_mnist", tmp_path, epochs=1, subset=5, data_dir=str(data_dir), verbose=False
    )
    table = pd.read_csv(result.path / "trials.csv")
    assert len(table) == 27 and set(table["status"]) == {"COMPLETED"}
    grid = set(itertools.product([1e-1, 1e-2, 1e-3], [500, 1000, 2000], [1e-2, 1e-3, 1e-4]))
    assert set(zip(table["lr"], table["hidden"], table["weight_decay"], strict=True)) == grid
    # Each trial is one zoo.train run, whose metrics are the table's.
    for _, row in table.iterrows():
        (run,) = row["runs"].split(";")
        metrics = json.loads((result.path / run / "metrics.json").read_text())
        assert row["val_accuracy"] == pytest.approx(metrics["val"]["accuracy"])
        assert row["accuracy"] == pytest.approx(metrics["train"]["accuracy"])
        assert row["epochs"] == metrics["epochs_run"] == 1
        saved = json.loads((result.path / run / "config.json").read_text())["config"]
        assert saved["lr"] == row["lr"] and saved["model_kwargs"]["hidden"] == [row["hidden"]]
        assert saved["subset"] == 5
    assert table["score"].equals(table["val_accuracy"])
    best = json.loads((result.path / "best.json").read_text())
    assert best["score"] == pytest.approx(table["score"].max())
    assert best["config"]["model"] == "mlp_mnist" and best["runs"]
    pd.testing.assert_frame_equal(
        tuning.trials(result.path).drop(columns="trial_id"), table.drop(columns="trial_id")
    )
    # TensorBoard's HParams dashboard: the config at the root, a session per trial.
    from tensorboard.backend.event_processing import event_accumulator

    sessions = sorted(p.name for p in (result.path / "tensorboard").iterdir() if p.is_dir())
    assert len(sessions) == 27
    root = event_accumulator.EventAccumulator(str(result.path / "tensorboard"))
    root.Reload()
    assert "_hparams_/experiment" in root.PluginTagToContent("hparams")
    events = event_accumulator.EventAccumulator(str(result.path / "tensorboard" / sessions[0]))
    events.Reload()
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")
    assert {"val_accuracy", "accuracy", "val_loss", "loss"} <= set(events.Tags()["tensors"])


def test_a_finished_search_reruns_as_a_no_op_and_settings_are_kept(data_dir, tmp_path):
    common = dict(epochs=1, subset=5, data_dir=str(data_dir), fixed={"gamma": 0.5}, verbose=False)
    first = tuning.run_search("mlp_mnist_gamma", tmp_path, **common)
    mtimes = {p: p.stat().st_mtime for p in first.path.glob("trial_*/*/metrics.json")}
    (model,) = first.tuner.get_best_models(1)  # Keras Tuner's own API reads our best.keras
    (best,) = first.path.glob("trial_*/*/best.keras")
    for loaded, saved in zip(model.weights, keras.models.load_model(best).weights, strict=True):
        np.testing.assert_array_equal(loaded.numpy(), saved.numpy())
    again = tuning.run_search("mlp_mnist_gamma", tmp_path, **common)
    assert len(again.trials) == 1 and len(mtimes) == 1
    assert {p: p.stat().st_mtime for p in again.path.glob("trial_*/*/metrics.json")} == mtimes
    with pytest.raises(ValueError, match="other settings.*epochs 1 -> 2"):
        tuning.run_search("mlp_mnist_gamma", tmp_path, **{**common, "epochs": 2})
    fresh = tuning.run_search("mlp_mnist_gamma", tmp_path, **{**common, "overwrite": True})
    assert len(fresh.trials) == 1
    assert all(p.stat().st_mtime != t for p, t in mtimes.items())  # trained afresh


class _Killed(BaseException):
    """Stands for a kill: neither Keras Tuner nor the trainer catches it."""


@pytest.mark.slow
def test_a_trial_killed_before_the_oracle_recorded_it_is_not_trained_again(
    data_dir, tmp_path, monkeypatch
):
    from tuning.tuner import ZooTuner

    common = dict(epochs=1, subset=5, data_dir=str(data_dir), fixed={"gamma": 0.5}, verbose=False)

    def killed(self, trial):  # the run folder is finished; the oracle has not heard of it
        raise _Killed

    with monkeypatch.context() as m:
        m.setattr(ZooTuner, "on_trial_end", killed)
        with pytest.raises(_Killed):
            tuning.run_search("mlp_mnist_gamma", tmp_path, **common)
    (best,) = tmp_path.glob("mlp_mnist_gamma-grid/trial_*/*/best.keras")
    trained = best.stat().st_mtime_ns
    result = tuning.run_search("mlp_mnist_gamma", tmp_path, **common)
    assert len(result.trials) == 1 and set(result.trials["status"]) == {"COMPLETED"}
    assert [p.stat().st_mtime_ns for p in result.path.glob("trial_*/*/best.keras")] == [trained]


@pytest.mark.slow
@pytest.mark.parametrize("tuner", ["random", "bayesian", "hyperband"])
def test_other_tuners(tuner, data_dir, tmp_path):
    result = tuning.run_search(
        "mlp_mnist_gamma", tmp_path, tuner=tuner, max_trials=2, epochs=2, subset=5,
        data_dir=str(data_dir), verbose=False,
    )  # fmt: skip
    table = result.trials
    assert len(table) >= 2 and set(table["status"]) == {"COMPLETED"}
    if tuner == "hyperband":  # each trial trains for its bracket's budget
        for _, row in table.iterrows():
            assert row["epochs"] == row["tuner/epochs"]
    else:
        assert len(table) == 2 and table["gamma"].nunique() == 2


@pytest.mark.slow
def test_executions_isolation_and_train_best(data_dir, tmp_path):
    result = tuning.run_search(
        "mlp_mnist_gamma", tmp_path, tuner="random", max_trials=1, epochs=1, subset=5,
        executions_per_trial=2, isolate=True, train_best=True, best_epochs=1, test_subset=3,
        data_dir=str(data_dir), fixed={"gamma": 0.5}, verbose=False,
    )  # fmt: skip
    (row,) = result.trials.to_dict("records")
    runs = row["runs"].split(";")
    assert len(runs) == 2 and row["gamma"] == 0.5
    seeds = {
        json.loads((result.path / r / "config.json").read_text())["config"]["seed"] for r in runs
    }
    assert seeds == {0, 1}
    accuracies = [
        json.loads((result.path / r / "metrics.json").read_text())["val"]["accuracy"] for r in runs
    ]
    assert row["val_accuracy"] == pytest.approx(sum(accuracies) / 2)
    retrained = json.loads((result.path / "best.json").read_text())["retrained"]
    config = json.loads((Path(retrained["run"]) / "config.json").read_text())["config"]
    assert config["subset"] is None and config["gamma"] == 0.5 and config["epochs"] == 1
    assert config["test_subset"] == 3  # 3 test images per class scored, not 10,000
    assert 0 < retrained["test"]["accuracy"] <= 1


def _search_command(out: Path, data_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "tuning.search", "mlp_mnist_gamma", "--out", str(out),
        "--data-dir", str(data_dir), "--quiet", *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_a_killed_search_resumes_without_losing_trials_or_epochs(data_dir, tmp_path):
    command = _search_command(tmp_path, data_dir, "--epochs", "3", "--subset", "300")
    project = tmp_path / "mlp_mnist_gamma-grid"
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    # Kill it once the second trial has finished an epoch (its backup exists).
    while not list(project.glob("trial_0001/*/backup/epoch-*")):
        assert process.poll() is None, "the search ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {p: p.read_bytes() for p in project.glob("trial_0000/*/metrics.json")}
    assert finished
    (history,) = project.glob("trial_0001/*/history.csv")
    before = history.read_text().splitlines()

    subprocess.run(command, cwd=REPO, check=True, stderr=subprocess.DEVNULL, timeout=300)
    table = pd.read_csv(project / "trials.csv")
    assert len(table) == 4 and set(table["status"]) == {"COMPLETED"}
    assert sorted(table["gamma"]) == [0.05, 0.1, 0.5, 1.0]
    # The finished trial was not rerun; the killed one continued in the same run folder.
    assert {p: p.read_bytes() for p in project.glob("trial_0000/*/metrics.json")} == finished
    assert all(len(list(p.glob("*/config.json"))) == 1 for p in project.glob("trial_*"))
    after = history.read_text().splitlines()
    assert after[: len(before)] == before and len(after) == 4  # header + 3 epochs, once each


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_distributed_search_on_loopback_runs_every_trial_once(data_dir, tmp_path):
    command = _search_command(tmp_path, data_dir, "--epochs", "1", "--subset", "5")
    env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1",
           "KERASTUNER_ORACLE_PORT": str(_free_port())}  # fmt: skip
    processes = [
        subprocess.Popen(
            command,
            cwd=REPO,
            env={**env, "KERASTUNER_TUNER_ID": tuner_id},
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for tuner_id in ("chief", "tuner0", "tuner1")
    ]
    for process in processes:
        assert process.wait(timeout=300) == 0
    project = tmp_path / "mlp_mnist_gamma-grid"
    table = pd.read_csv(project / "trials.csv")
    assert len(table) == 4 and set(table["status"]) == {"COMPLETED"}
    assert sorted(table["gamma"]) == [0.05, 0.1, 0.5, 1.0]
    for trial in project.glob("trial_*"):
        (run,) = trial.glob("*/metrics.json")
        assert json.loads(run.read_text())["epochs_run"] == 1
    # pandas before 3 reads CSV floats to within one ulp, not round-trip.
    best = json.loads((project / "best.json").read_text())["score"]
    assert best == pytest.approx(table["score"].max(), rel=1e-12)


@pytest.mark.slow
def test_memory_benchmark_prints_its_figure(data_dir, capsys):
    from tuning.memory import main as memory

    assert memory(["--trials", "3", "--from-trial", "1", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert out.count("rss") >= 4 and "rss growth from trial 1 to trial 3:" in out
