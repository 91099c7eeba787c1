"""Training end to end on real MNIST: run folders, schedules, early stopping, resume, the CLI."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

import zoo
from zoo.recipes import RECIPES, RunConfig, recipe
from zoo.runs import CONFIG_FORMAT, migrate
from zoo.runs import data as runs_data
from zoo.runs import digest as _digest
from zoo.train import (
    Run,
    forward_activations,
    forward_flops,
    load_config,
    make_optimizer,
    rebuild,
    resume,
    steps_per_execution,
    train,
)
from zoo.train.__main__ import _parser, config_from_args, main
from zoo.train.callbacks import Lookahead, schedule_fn, warmup_linear

REPO = Path(__file__).resolve().parents[1]


def _tiny(data_dir: Path, **overrides) -> RunConfig:
    settings = dict(
        data_dir=str(data_dir), subset=20, test_subset=10, epochs=2, batch_size=32,
        model_kwargs={"hidden": (32,)},
    )  # fmt: skip
    return recipe("mlp_mnist", **{**settings, **overrides})


def test_every_model_has_a_recipe_that_builds():
    assert set(RECIPES) == set(__import__("zoo").list_models())
    assert recipe("resnet_cnn").optimizer == "adamw"
    assert recipe("resnet_cnn").decoupled_decay == 5e-4
    assert recipe("mlp_mnist").schedule == "step" and recipe("mlp_mnist").batch_size == 32
    assert recipe("deeper_convnet").model_kwargs["bn"] is True


def test_several_steps_per_call_log_each_calls_mean_loss(data_dir, tmp_path):
    run = train(_tiny(data_dir, epochs=1), tmp_path, verbose=0)
    n = json.loads((run.path / "config.json").read_text())["num_examples"]["train"]
    per_epoch = -(-n // 32)  # 6 steps: a tiny model takes them all in one call
    assert run.metrics["steps_per_execution"] == per_epoch == 6
    steps = pd.read_csv(run.path / "steps.csv")
    assert list(steps["batch"]) == [5] and list(steps["step"]) == [5]
    assert steps["loss"][0] == pytest.approx(run.history["loss"][0], rel=1e-4)

    chunks = train(_tiny(data_dir, epochs=1, steps_per_execution=3), tmp_path, verbose=0)
    steps = pd.read_csv(chunks.path / "steps.csv")
    assert list(steps["batch"]) == [2, 5]
    sizes = [96, n - 96]
    average = np.average(steps["loss"], weights=sizes)
    assert average == pytest.approx(chunks.history["loss"][0], rel=1e-4)


def test_forward_activations_counts_every_layers_output():
    # mlp_mnist: Flatten 784, Dense 1000, LeakyReLU 1000, Dense 10; the input is not written.
    assert forward_activations(zoo.build("mlp_mnist")) == 784 + 1000 + 1000 + 10
    # Batch norm adds values to move and no FLOPs: what the time estimate needs to see.
    plain, normed = zoo.build("vgg_a", bn=False), zoo.build("vgg_a", bn=True)
    assert forward_flops(normed) == forward_flops(plain)
    assert forward_activations(normed) > forward_activations(plain)
    # A nested model counts its own layers; a layer of two outputs counts both.
    inner = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    inputs = keras.Input((8,))
    halves = keras.layers.Lambda(lambda x: [x[:, :3], x[:, 3:]])(inner(inputs))
    outer = keras.Model(inputs, keras.layers.Concatenate()(halves))
    assert forward_activations(outer) == 4 + (3 + 1) + 4


def test_steps_per_execution_fills_a_call_and_divides_the_epoch():
    mlp = zoo.build("mlp_mnist")  # 1.59 MFLOP per image forward
    assert forward_flops(mlp) == 2 * (784 * 1000 + 1000 * 10)
    assert steps_per_execution(mlp, 128, 469, gpu=False) == 7  # 469 = 7 x 67
    assert steps_per_execution(mlp, 128, 422, gpu=False) == 2  # 422 = 2 x 211
    assert steps_per_execution(mlp, 32, 1688, gpu=False) == 8
    assert steps_per_execution(zoo.build("vgg_a"), 128, 352, gpu=False) == 1
    assert steps_per_execution(zoo.build("vgg_a"), 128, 352, gpu=True) == 32  # 352 = 32 x 11
    assert steps_per_execution(mlp, 128, 469, gpu=True) == 7  # the largest divisor of 469
    with pytest.raises(ValueError, match="steps_per_execution must be >= 0"):
        recipe("mlp_mnist", steps_per_execution=-1)
    with pytest.raises(ValueError, match="does not run under the mirrored strategy"):
        recipe("mlp_mnist", steps_per_execution=4, strategy="mirrored")


@pytest.mark.parametrize(
    "name, settings",
    [("SGD", {}), ("SGD", {"momentum": 0.9}), ("SGD", {"momentum": 0.9, "nesterov": True}),
     ("Adam", {}), ("AdamW", {"weight_decay": 0.1}), ("Adam", {"amsgrad": True})],
)  # fmt: skip
def test_fused_optimizers_follow_keras(name, settings):
    rng = np.random.default_rng(0)
    start = rng.standard_normal((7, 5)).astype("float32")
    gradients = [rng.standard_normal((7, 5)).astype("float32") for _ in range(4)]
    ends = []
    for kind in (getattr(keras.optimizers, name), getattr(zoo.optimizers, name)):
        optimizer = kind(learning_rate=0.05, **settings)
        variable = keras.Variable(start)
        for gradient in gradients:
            optimizer.apply_gradients([(keras.ops.convert_to_tensor(gradient), variable)])
        ends.append(keras.ops.convert_to_numpy(variable))
    assert not np.allclose(ends[0], start)
    np.testing.assert_allclose(ends[1], ends[0], rtol=1e-5, atol=1e-6)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(again) is type(optimizer) and again.get_config() == optimizer.get_config()


def test_recipe_errors():
    with pytest.raises(TypeError, match="Unknown run setting.*'optimiser'"):
        recipe("mlp_mnist", optimiser="sgd")
    with pytest.raises(ValueError, match="'optimizer' must be one of"):
        recipe("mlp_mnist", optimizer="lbfgs")
    with pytest.raises(ValueError, match="Unknown model 'mlp'"):
        recipe("mlp")


def test_run_folder_has_every_file_with_sane_contents(data_dir, tmp_path):
    run = train(_tiny(data_dir, steps_per_execution=1), tmp_path, verbose=0)
    files = {p.name for p in run.path.iterdir()}
    assert {"config.json", "history.csv", "steps.csv", "best.keras", "metrics.json"} <= files
    assert "confusion_matrix.csv" in files

    saved = json.loads((run.path / "config.json").read_text())
    assert saved["config"]["model"] == "mlp_mnist" and saved["config"]["seed"] == 0
    assert saved["format"] == CONFIG_FORMAT and RunConfig(**saved["recipe"]) == recipe("mlp_mnist")
    assert {"zoo", "keras", "tensorflow"} <= set(saved["versions"])
    assert saved["device"] and saved["input_shape"] == [28, 28, 1]
    assert load_config(run.path) == run.config

    history = pd.read_csv(run.path / "history.csv")
    assert list(history["epoch"]) == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"} <= set(history)
    n = saved["num_examples"]["train"]
    assert saved["num_examples"] == {"train": 170, "val": 30, "test": 100}  # 3 of 20 per class
    steps = pd.read_csv(run.path / "steps.csv")
    per_epoch = -(-n // 32)
    assert len(steps) == 2 * per_epoch and list(steps["step"]) == list(range(2 * per_epoch))
    # The per-step losses average (batch-weighted) to the epoch's logged loss.
    sizes = np.array([32] * (per_epoch - 1) + [n - 32 * (per_epoch - 1)])
    first = steps[steps["epoch"] == 1]["loss"].to_numpy()
    assert np.average(first, weights=sizes) == pytest.approx(history["loss"][0], rel=1e-4)

    m = run.metrics
    assert m["epochs_run"] == 2 and m["stop_reason"] == "completed"
    assert m["steps_per_execution"] == 1
    assert 0 <= m["test"]["accuracy"] <= 1 and m["train_images_per_second"] > 0
    assert m["trainable_params"] == 784 * 32 + 32 + 32 * 10 + 10
    confusion = pd.read_csv(run.path / "confusion_matrix.csv", index_col=0)
    assert confusion.to_numpy().sum() == 100 and list(confusion.columns) == list("0123456789")

    best = keras.models.load_model(run.path / "best.keras", safe_mode=True)
    assert best.count_params() == rebuild(run.path).count_params()
    # One pass over test gives its scores and the matrix: they agree, and with Keras' own.
    _, _, test, _ = runs_data(run.config, augment=False, shuffle=False)
    loss, accuracy = best.evaluate(test, verbose=0)
    assert m["test"]["loss"] == pytest.approx(loss, rel=1e-5)
    assert m["test"]["accuracy"] == pytest.approx(accuracy) == np.trace(confusion) / 100


@pytest.mark.parametrize(
    "schedule, extra, expected",
    [
        ("constant", {}, [0.1, 0.1, 0.1, 0.1, 0.1]),
        ("step", {"step_size": 2, "gamma": 0.1}, [0.1, 0.1, 0.01, 0.01, 0.001]),
        ("halving", {"step_size": 2}, [0.1, 0.1, 0.05, 0.05, 0.025]),
        ("multistep", {"milestones": (1, 3), "gamma": 0.5}, [0.1, 0.05, 0.05, 0.025, 0.025]),
        ("exponential", {"gamma": 0.5}, [0.1, 0.05, 0.025, 0.0125, 0.00625]),
        ("cosine", {"min_lr": 0.0}, [0.1, 0.0904508, 0.0654508, 0.0345492, 0.0095492]),
    ],
)
def test_schedules_give_the_expected_lr_per_epoch(schedule, extra, expected):
    kwargs = dict(epochs=5, step_size=1, gamma=0.1, milestones=(), min_lr=0.0) | extra
    fn = schedule_fn(schedule, 0.1, **kwargs)
    assert [fn(e) for e in range(5)] == pytest.approx(expected, rel=1e-5)


def test_the_schedule_reaches_the_optimizer(data_dir, tmp_path):
    run = train(
        _tiny(data_dir, epochs=3, schedule="step", step_size=1, gamma=0.5), tmp_path, verbose=0
    )
    assert list(run.history["lr"]) == pytest.approx([0.1, 0.05, 0.025])


def test_warmup_linear_climbs_then_falls_every_step(data_dir, tmp_path):
    rate = warmup_linear(1.0, total=100, warmup=0.23, end=0.07)  # airbench94's shape
    assert [rate(s) for s in (0, 23, 100)] == pytest.approx([0.2, 1.0, 0.07])
    assert rate(11) == pytest.approx(0.2 + 0.8 * 11 / 23) and rate(50) < rate(49)
    assert warmup_linear(0.24, 200, 0.0, 0.0)(100) == pytest.approx(0.12)  # airbench's Muon
    cfg = _tiny(data_dir, epochs=3, schedule="warmup_linear", warmup=0.5, steps_per_execution=1)
    run = train(cfg, tmp_path, verbose=0)
    steps = len(pd.read_csv(run.path / "steps.csv")) // 3
    expected = warmup_linear(0.1, 3 * steps, 0.5, 0.0)
    assert list(run.history["lr"]) == pytest.approx([expected(e * steps) for e in range(3)])


def test_plateau_lowers_the_lr(data_dir, tmp_path):
    # At lr 1e-12 the weights stay put, so val accuracy cannot improve and the rule fires after
    # each epoch without gain (patience 1): the rate halves from the third epoch on.
    run = train(
        _tiny(data_dir, epochs=4, schedule="plateau", lr_patience=1, gamma=0.5, lr=1e-12),
        tmp_path,
        verbose=0,
    )
    assert run.metrics["epochs_run"] == 4  # a plateau only lowers the lr, it never stops
    assert run.history["lr"].tolist() == pytest.approx([1e-12, 1e-12, 5e-13, 2.5e-13])


def test_plateau_counts_a_rise_under_min_delta_as_no_gain(data_dir, tmp_path):
    # At a normal rate val accuracy rises, but never by half of all the images in one epoch, so
    # from the second epoch on (the first sets the best) every epoch counts as no gain.
    config = _tiny(data_dir, epochs=3, schedule="plateau", lr_patience=0, gamma=0.5, lr=1e-3)
    run = train(dataclasses.replace(config, lr_min_delta=0.5), tmp_path, verbose=0)
    assert run.history["lr"].tolist() == pytest.approx([1e-3, 1e-3, 5e-4])


def test_early_stopping_stops_and_restores_the_best(data_dir, tmp_path):
    # The lr drops to almost nothing after the first epoch, so nothing improves afterwards.
    config = _tiny(data_dir, epochs=10, schedule="exponential", gamma=1e-12, early_stopping=2)
    run = train(config, tmp_path, verbose=0)
    assert run.metrics["stop_reason"] == "early_stopping"
    assert run.metrics["epochs_run"] == 3
    assert run.metrics["val"]["accuracy"] == pytest.approx(run.history["val_accuracy"].max())


def test_nan_ends_the_run_with_a_stop_reason(data_dir, tmp_path):
    run = train(_tiny(data_dir, lr=1e12, epochs=3), tmp_path, verbose=0)
    assert run.metrics["stop_reason"] == "nan"
    assert run.metrics["best_epoch"] in (None, 1)  # none when the first epoch has no score


def test_set_toggles_reach_the_model(data_dir, tmp_path, capsys):
    code = main([
        "lenet", "--data-dir", str(data_dir), "--subset", "10", "--test-subset", "5",
        "--epochs", "1", "--out", str(tmp_path), "--quiet",
        "--set", "bn=True", "--set", "filters=(4, 8)", "--set", "optimizer='adam'",
        "--set", "weight_decay=0.0", "--decoupled-decay", "1e-4", "--set", "normalize=False",
    ])  # fmt: skip
    assert code == 0
    (path,) = tmp_path.iterdir()
    config = load_config(path)
    assert config.model_kwargs["bn"] is True and config.optimizer == "adam"
    # weight_decay is the model's L2; the optimizer's decay is decoupled_decay.
    assert config.model_kwargs["weight_decay"] == 0.0 and config.decoupled_decay == 1e-4
    assert config.normalize is False
    model = keras.models.load_model(path / "best.keras")
    assert model.get_layer("conv1_conv").filters == 4
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert "test" in capsys.readouterr().out


def test_a_run_at_another_image_size_trains_evaluates_and_resumes_at_it(data_dir, tmp_path):
    code = main([
        "deeper_convnet", "--data-dir", str(data_dir), "--subset", "8", "--test-subset", "4",
        "--epochs", "1", "--batch-size", "32", "--image-size", "16", "--out", str(tmp_path),
        "--quiet", "--set", "filters=(4, 8)",
    ])  # fmt: skip
    assert code == 0
    (path,) = tmp_path.iterdir()
    config = load_config(path)
    assert config.image_size == 16
    assert keras.models.load_model(path / "best.keras").input_shape == (None, 16, 16, 3)
    assert json.loads((path / "metrics.json").read_text())["test"]["accuracy"] >= 0
    # Everything that reads the run's data again (resume, reports) reads it at its size.
    *_, info = runs_data(config)
    assert info.input_shape == (16, 16, 3)
    assert resume(path, verbose=0).metrics["epochs_run"] == 1


def test_the_same_settings_reuse_a_finished_run_and_never_clobber_a_held_one(data_dir, tmp_path):
    first = train(_tiny(data_dir, epochs=1), tmp_path, verbose=0)
    modified = (first.path / "best.keras").stat().st_mtime_ns
    again = train(_tiny(data_dir, epochs=1), tmp_path, verbose=0)
    assert again.path == first.path and again.metrics == first.metrics  # read back, not retrained
    assert (first.path / "best.keras").stat().st_mtime_ns == modified
    # A folder another process holds is left alone: the run takes the next free name.
    other = _tiny(data_dir, epochs=1, seed=1)
    held = tmp_path / f"{first.path.name.rsplit('-', 1)[0]}-{_digest(other)}"
    held.mkdir()
    with open(held / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        second = train(other, tmp_path, verbose=0)
    assert second.path.name == f"{held.name}-2"
    assert Run.read(first.path).metrics == first.metrics


def test_the_same_run_whichever_way_its_data_is_given(data_dir, tmp_path, monkeypatch):
    """Where the data is read from and logging are not a run's identity (`zoo.runs`)."""
    first = train(_tiny(data_dir, epochs=1), tmp_path, verbose=0)
    monkeypatch.setenv("ZOO_DATA_DIR", str(data_dir))
    tiny = _tiny(data_dir, epochs=1)
    for config in (
        dataclasses.replace(tiny, data_dir=None),  # the data from $ZOO_DATA_DIR
        dataclasses.replace(tiny, data_dir=str(data_dir) + "/"),
        dataclasses.replace(tiny, tensorboard=True),
    ):
        again = train(config, tmp_path, verbose=0)
        assert again.path == first.path and not again.trained
    assert dataclasses.replace(tiny, data_dir=None) == tiny
    assert _digest(dataclasses.replace(tiny, data_dir=None)) == _digest(tiny)
    # A folder named under the older rule (the data folder in its digest) is found by its
    # settings, whichever way the data is given now, and not trained again.
    old = first.path.with_name(f"mlp_mnist-mnist-{'0' * 8}")
    first.path.rename(old)
    for config in (dataclasses.replace(tiny, data_dir=None), tiny):
        again = train(config, tmp_path, verbose=0)
        assert again.path == old and not again.trained
    # A toggle given at its builder's default trains the same model: the same run.
    from zoo import runs

    assert runs.same_run(recipe("lenet"), recipe("lenet", model_kwargs={"bn": False}))
    assert not runs.same_run(recipe("lenet"), recipe("lenet", model_kwargs={"bn": True}))
    # What is trained is identity: another seed is another run.
    assert train(dataclasses.replace(tiny, seed=1), tmp_path, verbose=0).path != old


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zoo.train", *args],
        capture_output=True, text=True, timeout=300, cwd=REPO, **kwargs,
    )  # fmt: skip


def test_lenets_main_job_prints_no_tensorflow_error_line(data_dir, tmp_path):
    # Grappler fused conv -> bias -> LeakyRelu, and its gradient then read a node gone:
    # "E0000 ... remapper failed" on every run, and the graph trained without its fusions.
    done = _cli("lenet", "--epochs", "1", "--subset", "5", "--test-subset", "5",
                "--data-dir", str(data_dir), "--out", str(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr[-1500:]
    logged = [line for line in done.stderr.splitlines() if re.match(r"[EF]\d{4} ", line)]
    assert not logged, logged


@pytest.mark.parametrize(
    "args, message",
    [
        (["mlp_mnst"], "Unknown model 'mlp_mnst'. Did you mean 'mlp_mnist'"),
        (["mlp_mnist", "--epochz", "3"], "unrecognized arguments: --epochz"),
        (["mlp_mnist", "--set", "hiden=5"], "unknown toggle(s) 'hiden'"),
        (["mlp_mnist", "--set", "bn=3"], "'bn' expects bool"),
        (["mlp_mnist", "--optimizer", "lbfgs"], "'optimizer' must be one of"),
        (["mlp_mnist", "--precision", "half"], "'precision' must be one of 'auto', 'float32'"),
        (["mlp_mnist", "--steps-per-execution", "-1"], "steps_per_execution must be >= 0"),
        (["mlp_mnist", "--image-size", "0"], "image_size must be a number >= 1"),
        (
            ["mlp_mnist", "--weight-decay", "1e-4"],
            "use --set weight_decay=1e-4 for the model's L2 penalty or --decoupled-decay 1e-4",
        ),
        (["--resume", "/nonexistent/run"], "not a run folder"),
        (["cifar100_model"], "Unknown model"),
    ],
)
def test_cli_misuse_exits_2_with_one_line(args, message, capsys):
    # In process: the parser's path is the same, without a TensorFlow start per case (the
    # real `python -m zoo.train` exits 2 in test_cli_data_not_found_and_wrong_resume_model).
    with pytest.raises(SystemExit) as exit:
        main(args)
    assert exit.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert message in line


@pytest.mark.slow
def test_cli_data_not_found_and_wrong_resume_model(data_dir, tmp_path):
    missing = _cli("basic_cnn", "--data-dir", str(tmp_path), "--out", str(tmp_path / "runs"))
    assert missing.returncode == 2 and "No cifar10 data in data_dir" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1, missing.stderr  # no start-up lines
    assert not list((tmp_path / "runs").glob("*"))  # no empty run folder left behind
    run = train(_tiny(data_dir, epochs=1), tmp_path / "runs", verbose=0)
    wrong = _cli("lenet", "--resume", str(run.path))
    assert wrong.returncode == 2 and "holds a mlp_mnist run, not lenet" in wrong.stderr


KILLABLE = textwrap.dedent(
    """
    import sys
    from zoo.recipes import recipe
    from zoo.train import train
    config = recipe("lenet", data_dir=sys.argv[1], subset=300, test_subset=20, epochs=6,
                    batch_size=32, seed=5)
    train(config, sys.argv[2], verbose=0)
    """
)


@pytest.mark.slow
def test_killed_run_resumes_without_losing_or_repeating_epochs(data_dir, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(KILLABLE)
    out = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(script), str(data_dir), str(out)], env=env)
    history = None
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        found = list(out.glob("*/history.csv"))
        if found and len(found[0].read_text().splitlines()) >= 3:  # header + 2 epochs
            history = found[0]
            break
        time.sleep(0.02)
    assert history is not None, "the run never finished two epochs"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    path = history.parent
    assert not (path / "metrics.json").exists()

    rerun = subprocess.run([sys.executable, str(script), str(data_dir), str(out)], env=env)
    assert rerun.returncode == 0
    assert [p.name for p in out.iterdir()] == [path.name]  # the same folder, resumed
    resumed = Run.read(path)
    assert list(resumed.history["epoch"]) == list(range(1, 7))
    steps = pd.read_csv(path / "steps.csv")
    assert steps["step"].is_unique and steps["epoch"].max() == 6

    fresh = subprocess.run(
        [sys.executable, str(script), str(data_dir), str(tmp_path / "fresh")], env=env
    )
    assert fresh.returncode == 0
    (fresh_path,) = (tmp_path / "fresh").iterdir()
    uninterrupted = Run.read(fresh_path)
    for split in ("train", "val", "test"):
        assert resumed.metrics[split] == pytest.approx(uninterrupted.metrics[split], rel=1e-5)
    np.testing.assert_allclose(
        resumed.history["val_loss"], uninterrupted.history["val_loss"], rtol=1e-5
    )


def test_resume_of_a_finished_run_reads_it_back(data_dir, tmp_path):
    run = train(_tiny(data_dir, epochs=1), tmp_path, verbose=0)
    again = resume(run.path, verbose=0)
    assert again.metrics == run.metrics


MIRRORED = textwrap.dedent(
    """
    import sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    from zoo.recipes import recipe
    from zoo.train import train
    config = recipe("mlp_mnist", data_dir=sys.argv[1], subset=20, test_subset=10, epochs=1,
                    batch_size=32, strategy="mirrored", model_kwargs={"hidden": (16,)})
    run = train(config, sys.argv[2], verbose=0)
    print("REPLICAS", run.metrics["replicas"])
    """
)


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(data_dir, tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, str(script), str(data_dir), str(tmp_path / "runs")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "REPLICAS 2" in out.stdout


def test_a_time_limit_shorter_than_an_epoch_progresses_over_invocations(data_dir, tmp_path):
    config = _tiny(data_dir, epochs=3, time_limit=1e-6)
    first = train(config, tmp_path, verbose=0)
    # The first epoch of an invocation always finishes: never a finished run with no epoch.
    assert first.trained and first.metrics["stop_reason"] == "time_limit"
    assert first.metrics["epochs_run"] == 1 and "test" in first.metrics
    second = train(config, tmp_path, verbose=0)  # the same command continues it
    assert second.path == first.path and second.trained and second.metrics["epochs_run"] == 2
    third = train(config, tmp_path, verbose=0)
    assert third.metrics["stop_reason"] == "completed" and third.metrics["epochs_run"] == 3
    again = train(config, tmp_path, verbose=0)  # finished: read back, and it says so
    assert not again.trained and again.metrics == third.metrics
    assert list(third.history["epoch"]) == [1, 2, 3]


def test_a_long_epoch_is_announced():
    from zoo.train.callbacks import EpochEstimate

    lines = []
    estimate = EpochEstimate(steps=1000, write=lines.append)
    estimate.AFTER_SECONDS = 0.0
    estimate.on_train_batch_end(0)  # the first call: tracing and compiling, not timed
    time.sleep(0.1)
    estimate.on_train_batch_end(1)
    (line,) = lines
    assert re.fullmatch(r"an epoch will take about \d+ min \(1000 steps of 0\.\d\d s\)", line)
    quick = EpochEstimate(steps=10, write=lines.append)
    quick.AFTER_SECONDS = 0.0
    quick.on_train_batch_end(0)
    quick.on_train_batch_end(1)
    assert len(lines) == 1 and quick.estimate < 60  # short epochs are not announced
    done = EpochEstimate(steps=10_000, write=lines.append)
    done.AFTER_SECONDS = 0.0
    done.on_train_batch_end(0)
    done.on_epoch_end(0)  # an epoch ended before its estimate was due: none follows
    done.on_train_batch_end(0)  # the next epoch's numbering starts again
    time.sleep(0.05)
    done.on_train_batch_end(1)  # would announce 10,000 steps of 0.05 s
    assert len(lines) == 1 and math.isnan(done.estimate)


@pytest.mark.slow
def test_time_limit_inside_an_epoch_keeps_the_last_epoch_and_resume_continues(
    data_dir, tmp_path, monkeypatch
):
    from zoo.train import callbacks

    whole = train(_tiny(data_dir, epochs=3), tmp_path / "whole", verbose=0)

    def begin(self, epoch, logs=None):
        self.epoch = epoch

    def step(self, batch, logs=None):
        if self.epoch == 1 and batch >= 1:  # the limit passes inside the second epoch
            raise callbacks.TimeLimitReached("time limit")

    monkeypatch.setattr(callbacks.TimeLimit, "on_epoch_begin", begin, raising=False)
    monkeypatch.setattr(callbacks.TimeLimit, "on_train_batch_end", step)
    config = _tiny(data_dir, epochs=3, time_limit=60.0)
    stopped = train(config, tmp_path / "limited", verbose=0)
    assert stopped.metrics["stop_reason"] == "time_limit" and stopped.metrics["epochs_run"] == 1
    assert (stopped.path / "backup").is_dir()  # the last finished epoch, to continue from
    monkeypatch.undo()
    done = resume(stopped.path, verbose=0)  # as the same command would continue it
    assert done.metrics["stop_reason"] == "completed" and done.metrics["epochs_run"] == 3
    pd.testing.assert_frame_equal(
        done.history.drop(columns="seconds"), whole.history.drop(columns="seconds")
    )
    assert done.metrics["test"] == whole.metrics["test"]


def test_list_prints_every_recipe(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in RECIPES:
        assert name in out
    assert '"optimizer": "adamw"' in out


def test_mixed_precision_run(data_dir, tmp_path):
    run = train(_tiny(data_dir, epochs=1, precision="mixed_bfloat16"), tmp_path, verbose=0)
    model = keras.models.load_model(run.path / "best.keras")
    assert model.get_layer("fc1").dtype_policy.name == "mixed_bfloat16"
    assert np.isfinite(run.metrics["test"]["loss"])


@pytest.mark.slow
def test_xla_run(data_dir, tmp_path):
    run = train(_tiny(data_dir, epochs=1, jit=True), tmp_path, verbose=0)
    assert load_config(run.path).jit is True
    assert np.isfinite(run.metrics["test"]["loss"]) and run.metrics["epochs_run"] == 1


def test_rmsprop_honours_momentum_and_none_is_the_optimizers_default():
    rmsprop = recipe("inception_v1", optimizer="rmsprop")
    assert make_optimizer(rmsprop).momentum == 0.0
    assert make_optimizer(dataclasses.replace(rmsprop, momentum=0.5)).momentum == 0.5
    assert make_optimizer(recipe("mlp_mnist")).momentum == 0.9
    assert make_optimizer(recipe("mlp_mnist", momentum=0.5)).momentum == 0.5
    # The optimizer's default, given, is the default: one run, one config, one folder name.
    assert recipe("mlp_mnist", momentum=0.9) == recipe("mlp_mnist")
    assert dataclasses.replace(rmsprop, momentum=0.0).momentum is None
    args = _parser().parse_args(["inception_v1", "--optimizer", "rmsprop", "--momentum", "0.5"])
    assert config_from_args(args).momentum == 0.5


def test_two_weight_decays_have_two_names():
    def config(*argv: str) -> RunConfig:
        return config_from_args(_parser().parse_args(["deeper_convnet", *argv]))

    assert config("--decoupled-decay", "1e-4").decoupled_decay == 1e-4
    assert config("--set", "decoupled_decay=1e-4") == config("--decoupled-decay", "1e-4")
    l2 = config("--set", "weight_decay=1e-3")
    assert l2.model_kwargs["weight_decay"] == 1e-3 and l2.decoupled_decay == 0.0
    assert config("--set", "reg=1e-3") == l2  # S0's name of the toggle


# --- config.json formats: run folders written before a rename keep loading --------------------

# A run folder written by format-1 code (before `decoupled_decay`) for this command, into a
# folder named FORMAT1_FOLDER; its data_dir was $ZOO_DATA_DIR.
FORMAT1 = REPO / "tests" / "fixtures" / "run-format1"
FORMAT1_FOLDER = "mlp_mnist-mnist-aacb08d2"
# The command that wrote the format-1 fixture, float32 then the default.
FORMAT1_COMMAND = dict(
    epochs=1, subset=20, test_subset=20, optimizer="adamw", decoupled_decay=5e-4,
    model_kwargs={"hidden": (8,), "weight_decay": 1e-4}, precision="float32",
)  # fmt: skip


def test_a_format1_run_folder_loads_in_todays_names():
    assert "format" not in json.loads((FORMAT1 / "config.json").read_text())
    config = load_config(FORMAT1)
    # Equal to today's config for the same command, which is what reusing a folder checks.
    assert config == recipe("mlp_mnist", **FORMAT1_COMMAND)
    assert config.decoupled_decay == 5e-4 and config.model_kwargs["weight_decay"] == 1e-4
    assert f"mlp_mnist-mnist-{_digest(config)}" == FORMAT1_FOLDER  # folder names unchanged
    assert rebuild(FORMAT1).count_params() == 784 * 8 + 8 + 8 * 10 + 10
    run = Run.read(FORMAT1)
    assert run.config == config and run.metrics["epochs_run"] == len(run.history) == 1
    best = keras.models.load_model(FORMAT1 / "best.keras")
    assert best.count_params() == run.metrics["trainable_params"]
    assert best.optimizer.weight_decay == pytest.approx(5e-4)  # what decoupled_decay says


def test_migrate_reads_format1_as_it_ran():
    def old(**settings) -> RunConfig:
        saved = migrate({"config": {"model": "inception_v1", "weight_decay": 1e-4, **settings}})
        assert saved["format"] == CONFIG_FORMAT
        return RunConfig(**saved["config"])

    assert old().decoupled_decay == 1e-4 and old().momentum is None
    assert old(optimizer="momentum", momentum=0.5).momentum == 0.5
    # Format-1 RMSprop ignored its momentum: it ran without, today's default for it.
    rmsprop = RunConfig("inception_v1", optimizer="rmsprop", decoupled_decay=1e-4,
                        model_kwargs={"stem": (192,)}, precision="float32")  # fmt: skip
    assert old(optimizer="rmsprop", momentum=0.9) == rmsprop
    assert old(optimizer="rmsprop", momentum=0.5).momentum is None
    today = {"format": CONFIG_FORMAT, "config": {"model": "mlp_mnist", "decoupled_decay": 0.1,
                                                 "precision": "mixed_bfloat16"}}  # fmt: skip
    assert migrate(today) == today
    with pytest.raises(ValueError, match="config.json format 5 is not one this zoo reads"):
        migrate({**today, "format": 5})


def test_an_airbench_run_from_before_the_muon_head_keeps_its_head():
    before = {"format": 3, "config": {"model": "airbench", "other_lr": 1.0, "model_kwargs": {}}}
    toggles = migrate(before)["config"]["model_kwargs"]
    assert toggles == {"head_scale": 1 / 9, "head_init": "glorot_uniform"}
    model = zoo.build("airbench", width=0.125, **toggles)  # the head it trained with
    assert model.get_layer("logits").scale == pytest.approx(1 / 9)
    assert np.asarray(model.get_layer("logits_unscaled").kernel).std() < 0.5  # Glorot, not unit
    # Written with head_lr, the run had today's head: nothing to add.
    since = {"format": 3, "config": {"model": "airbench", "head_lr": 1340.0, "model_kwargs": {}}}
    assert migrate(since)["config"]["model_kwargs"] == {}


@pytest.mark.slow
def test_the_same_command_resumes_an_unfinished_format1_run(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(data_dir))  # the fixture's data_dir is null
    old = tmp_path / FORMAT1_FOLDER
    shutil.copytree(FORMAT1, old)
    (old / "metrics.json").unlink()
    created = json.loads((old / "config.json").read_text())["created"]
    run = train(recipe("mlp_mnist", **FORMAT1_COMMAND), tmp_path, verbose=0)
    assert run.path == old  # not a -2 folder beside it
    saved = json.loads((old / "config.json").read_text())
    assert saved["format"] == CONFIG_FORMAT and saved["created"] == created
    assert saved["config"]["decoupled_decay"] == 5e-4 and "weight_decay" not in saved["config"]
    # Format 1 recorded no recipe: today's, in the run's precision.
    assert RunConfig(**saved["recipe"]) == recipe("mlp_mnist", precision="float32")
    # A resumed run keeps the recipe it first recorded, whatever today's recipe is.
    saved["recipe"]["lr"] = 0.5
    (old / "config.json").write_text(json.dumps(saved))
    (old / "metrics.json").unlink()
    assert train(recipe("mlp_mnist", **FORMAT1_COMMAND), tmp_path, verbose=0).path == old
    assert json.loads((old / "config.json").read_text())["recipe"]["lr"] == 0.5


# A run folder written by format-2 code, before `head_bn` and `filters` (tests/fixtures).
FORMAT2 = REPO / "tests" / "fixtures" / "run-format2"
FORMAT2_FOLDER = "lenet-mnist-e2d0c1d3"
# Its command in today's names: format 2's `bn` normalized LeNet's dense layers too.
FORMAT2_COMMAND = dict(
    epochs=1, subset=20, test_subset=20, precision="float32",
    model_kwargs={"bn": True, "head_bn": True, "filters": (4, 8), "hidden": (16,)},
)  # fmt: skip


def test_a_format2_run_folder_loads_in_todays_names(data_dir, tmp_path, monkeypatch):
    assert json.loads((FORMAT2 / "config.json").read_text())["format"] == 2
    config = load_config(FORMAT2)
    assert config == recipe("lenet", **FORMAT2_COMMAND)
    best = keras.models.load_model(FORMAT2 / "best.keras")
    assert rebuild(FORMAT2).count_params() == best.count_params()  # the same layers rebuilt
    assert any(layer.name == "fc1_bn" for layer in rebuild(FORMAT2).layers)
    # The same command in today's names reads the folder back under its old name.
    monkeypatch.setenv("ZOO_DATA_DIR", str(data_dir))
    shutil.copytree(FORMAT2, tmp_path / FORMAT2_FOLDER)
    run = train(recipe("lenet", **FORMAT2_COMMAND), tmp_path, verbose=0)
    assert run.path == tmp_path / FORMAT2_FOLDER and not run.trained
    # ... and so does the command in its own names.
    old_names = {"bn": True, "channels": (4, 8), "hidden": 16}
    old = recipe("lenet", **{**FORMAT2_COMMAND, "model_kwargs": old_names})
    assert old != config  # today's `bn` alone leaves the dense layers alone
    assert train(dataclasses.replace(old, model_kwargs={**old_names, "head_bn": True}),
                 tmp_path, verbose=0).path == run.path  # fmt: skip


def test_a_format2_recipe_migrates_with_its_run():
    """Reports label a run against its recorded recipe: both read in today's names."""
    old = {
        "format": 2,
        "config": {"model": "deeper_convnet", "model_kwargs": {"bn": True}},
        "recipe": {"model": "deeper_convnet", "model_kwargs": {"bn": True, "hidden": 256}},
    }
    new = migrate(old)
    assert new["config"]["model_kwargs"]["head_bn"] is True
    assert new["recipe"]["model_kwargs"]["head_bn"] is True
    assert RunConfig(**new["recipe"]).model_kwargs == {
        "bn": True,
        "hidden": (256,),
        "head_bn": True,
    }


def test_a_finished_folder_of_a_run_wins_over_an_unfinished_one_before_it(tmp_path):
    """Two older names of one run: the finished one is read back, never the other trained."""
    from zoo import runs

    config = recipe("lenet", **FORMAT2_COMMAND)
    unfinished, finished = tmp_path / "lenet-mnist-00000001", tmp_path / "lenet-mnist-00000002"
    shutil.copytree(FORMAT2, unfinished)
    (unfinished / "metrics.json").unlink()
    shutil.copytree(FORMAT2, finished)
    assert runs.find(config, tmp_path) == finished
    with runs.claim(config, tmp_path) as (path, done):
        assert (path, done) == (finished, True)
    assert runs.first_folder(config, tmp_path) == finished


def test_a_format1_inception_keeps_its_single_stem_conv():

    old = {"config": {"model": "inception_v1", "model_kwargs": {"residual": True}}}
    assert migrate(old)["config"]["model_kwargs"] == {"residual": True, "stem": (192,)}
    old = {"config": {"model": "inception_v1", "model_kwargs": {"stem_filters": 96}}}
    assert migrate(old)["config"]["model_kwargs"] == {"stem": (96,)}


def test_the_cli_says_when_it_reads_a_finished_run_back(data_dir, tmp_path, capsys):
    argv = ["mlp_mnist", "--data-dir", str(data_dir), "--subset", "5", "--test-subset", "5",
            "--epochs", "1", "--out", str(tmp_path), "--quiet", "--set", "hidden=(8,)"]  # fmt: skip
    assert main(argv) == 0
    assert "read back" not in capsys.readouterr().out
    assert main(argv) == 0
    first, last = capsys.readouterr().out.strip().splitlines()
    assert "finished earlier, read back without training" in first
    assert "1 epochs, stopped: completed" in last


def test_lookahead_pulls_the_weights_to_a_slow_copy(data_dir, tmp_path):
    """The callback's arithmetic by hand, then a run with it on real images."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    look = Lookahead(total=20, steps_per_epoch=10, start=5, every=5, decay=0.9)
    look.set_model(model)
    look.on_epoch_begin(0)
    model.set_weights([np.array([[1.0]])])
    look.on_train_batch_end(4)  # step 5: the first update only takes the slow copy
    model.set_weights([np.array([[3.0]])])
    look.on_train_batch_end(8)  # step 9: not a multiple of 5, nothing
    assert model.get_weights()[0][0, 0] == 3.0
    look.on_train_batch_end(9)  # step 10: ρ = 0.9⁵ · (10 / 20)³
    rho = 0.9**5 * 0.5**3
    assert model.get_weights()[0][0, 0] == pytest.approx(rho * 1 + (1 - rho) * 3)
    # A run resumed after the start takes its slow copy from the weights it resumed with.
    resumed = Lookahead(total=20, steps_per_epoch=10, start=5, every=5, decay=0.9)
    resumed.set_model(model)
    resumed.on_epoch_begin(1)
    assert resumed._slow is not None
    run = train(_tiny(data_dir, epochs=3, lookahead=True), tmp_path, verbose=0)
    assert np.isfinite(run.history["loss"]).all() and run.metrics["test"]["accuracy"] > 0.3


def test_epochs_count_from_1_and_older_folders_counted_from_0_are_renumbered(data_dir, tmp_path):
    from zoo.train.callbacks import EpochTable

    run = train(_tiny(data_dir), tmp_path, verbose=0)
    assert list(run.history["epoch"]) == [1, 2] and run.metrics["best_epoch"] in (1, 2)
    old = Path(__file__).parent / "fixtures" / "run-format1"  # best_epoch 0: its first epoch
    assert json.loads((old / "metrics.json").read_text())["best_epoch"] == 0
    assert zoo.runs.read_metrics(old)["best_epoch"] == 1
    # A folder written before epochs counted from 1 reads back counted from 1.
    for name in ("history.csv", "steps.csv"):
        table = pd.read_csv(run.path / name)
        table["epoch"] -= 1
        table.to_csv(run.path / name, index=False)
    assert list(Run.read(run.path).history["epoch"]) == [1, 2]
    assert set(zoo.runs.read_steps(run.path)["epoch"]) == {1, 2}
    # Resumed at Keras's epoch 1 (the second), its first epoch is kept and renumbered, its
    # second dropped (a kill may have come before its backup), and the new one follows it.
    table = EpochTable(run.path / "history.csv")
    table.start(1)
    assert [row["epoch"] for row in table.rows] == [1]
    table.add(1, [{**table.rows[0], "epoch": 2}])
    assert pd.read_csv(run.path / "history.csv")["epoch"].tolist() == [1, 2]
