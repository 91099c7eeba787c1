"""zoo.bench: the training-speed benchmark prints its figures, on real MNIST; the PyTorch twins.

The twin tests need PyTorch (`pip install -e ".[bench]"`); the default CI does not install it,
so they skip there.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

import zoo
from zoo import bench as zbench
from zoo.bench import __main__ as bench_cli
from zoo.bench import bench
from zoo.bench import timing as bench_timing
from zoo.recipes import recipe

REPO = Path(__file__).resolve().parents[1]


def test_bench_measures_memory_and_pipeline(data_dir):
    config = recipe("mlp_mnist", data_dir=str(data_dir), batch_size=64)
    figures = bench(config, steps=3, windows=2)
    assert figures["in_memory"]["images_per_second"] > 0
    assert figures["pipeline"]["ms_per_step"] > 0
    assert -1 < figures["pipeline_cost"] < 1
    assert figures["peak_rss_mib"] > 100 and figures["params"] == 795_010
    assert figures["inference"]["images_per_second"] > 0
    assert figures["forward_flops"] == 2 * (784 * 1000 + 1000 * 10)
    assert figures["matmul_flops_per_second"] > 1e9
    assert figures["train_flop_fraction"] > 0 and figures["inference_flop_fraction"] > 0
    assert figures["steps_per_execution"] == 3  # a small model, a call takes the whole window
    assert len(figures["in_memory"]["window_images_per_second"]) == 2
    assert len(figures["pipeline"]["other_cores"]) == 2
    assert set(figures["contention"]) == {"in_memory", "inference", "pipeline", "feed"}
    assert figures["busy"] == ("busy" in figures["contention"].values())
    # The pipeline alone, with no model, and the warm-up (tracing, compiling) are measured.
    assert figures["feed"]["images_per_second"] > 0 and len(figures["feed"]["other_cores"]) == 2
    assert figures["in_memory"]["warmup_seconds"] > 0
    assert figures["cpu"]["cores"] >= 1 and figures["cpu"]["vector"]


@pytest.mark.slow
def test_bench_cli(data_dir, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "zoo.bench", "lenet", "--data-dir", str(data_dir),
         "--steps", "2", "--windows", "1", "--set", "filters=(4, 8)",
         "--steps-per-execution", "1", "--profile", str(tmp_path / "trace"),
         "--json", str(tmp_path / "figures.json")],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-1500:]
    text = out.stdout
    assert "images/s" in text and "pipeline cost" in text and "MiB" in text
    assert re.search(r"^input alone +[\d,.]+ images/s", text, re.M)
    assert re.search(r"^warm-up +[\d.]+ s for the first window", text, re.M)
    assert json.loads((tmp_path / "figures.json").read_text())["model"] == "lenet"
    assert "1 steps per call" in text
    assert re.search(r"^cpu +.+, \d+ cores; ", text, re.M)
    assert re.search(r"^  in-memory +[-\d. ]+ \(mean [-\d.]+ ±[\d.]+\)$", text, re.M)
    assert re.search(r"^(quiet|unclear|WARNING) ", text, re.M)  # whether others were busy
    assert float(re.search(r"inference +([\d,.]+) images/s", text)[1].replace(",", "")) > 0
    train, infer, ceiling = re.search(
        r"flop/s +train ([\d.]+)%, inference ([\d.]+)% of a large matmul's ([\d,.]+) GFLOP/s", text
    ).groups()
    assert float(train) > 0 and float(infer) > 0 and float(ceiling.replace(",", "")) > 1
    ops = re.findall(r"^ +([\d.]+)% +(\S+)$", text, re.M)
    assert ops and 0 < sum(float(share) for share, _ in ops) <= 100.1
    assert any("Conv2D" in kind for _, kind in ops)  # where a convnet's time goes
    assert list((tmp_path / "trace").glob("plugins/profile/*/*.xplane.pb"))
    bad = subprocess.run(
        [sys.executable, "-m", "zoo.bench", "lenett"], capture_output=True, text=True, cwd=REPO
    )
    assert bad.returncode == 2 and "Unknown model 'lenett'" in bad.stderr


def test_the_command_answers_help_and_misuse_before_tensorflow_loads():
    for argv, status in ((["--help"], 0), (["mlp_mnist", "--steps", "many"], 2)):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "zoo.bench", *argv],
            capture_output=True, text=True, timeout=60, cwd=REPO,
        )  # fmt: skip
        imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
        assert out.returncode == status
        assert not {"tensorflow", "keras", "numpy"} & imported
    assert out.stdout == "" and "--steps: expected a whole number >= 1, got 'many'" in out.stderr
    assert all(action.help for action in bench_cli._parser()._actions)  # every flag explains itself


def _stat(*cores: tuple[int, int, int, int]) -> str:
    # /proc/stat: cpuN user nice system idle iowait irq softirq steal guest guest_nice
    lines = [f"cpu{n} {u} 0 {s} {idle} 5 0 {steal} 0 7 0" for n, (u, s, idle, steal) in
             enumerate(cores)]  # fmt: skip
    return "\n".join(["cpu  1 2 3 4 5 6 7 8 9 10", *lines, "intr 1 2", "ctxt 99", ""])


def _own(utime: int, stime: int) -> str:
    return f"4242 (python -m zoo) R {' '.join(['1'] * 10)} {utime} {stime} 0 0 20 0 3 0"


def test_other_processes_cpu_is_the_machines_busy_time_less_our_own(monkeypatch):
    monkeypatch.setattr(bench_timing, "_cpus", lambda: {0, 1})  # cpu2 is not ours: not counted
    before = zbench.cpu_sample(
        _stat((100, 50, 900, 0), (10, 10, 900, 0), (0, 0, 0, 0)), _own(40, 20)
    )
    after = zbench.cpu_sample(
        _stat((200, 90, 990, 10), (60, 20, 1200, 0), (5000, 0, 0, 0)), _own(120, 40)
    )  # fmt: skip
    # Busy ticks on cpu0 and cpu1: (100 + 40 + 10) + (50 + 10) = 210; ours 100; idle ignored.
    assert zbench.other_cpu_seconds(before, after) == pytest.approx(110 * bench_timing._TICK)
    assert zbench.cpu_sample()  # this machine's own files parse


def test_a_busy_neighbour_shows_in_the_window_and_flags_the_figures():
    burner = subprocess.Popen(
        [sys.executable, "-c", "print('burning', flush=True)\nwhile True: pass"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        burner.stdout.readline()
        watch = zbench.Watch()
        for _ in range(3):  # a warm-up window and two timed ones, while we sleep
            watch.start()
            time.sleep(0.5)
            watch.stop()
    finally:
        burner.kill()
        burner.wait()
    speed = zbench.speed(watch, batch=1, steps=1)
    # The burner wants a whole core; anything else running only adds to what it is seen to take.
    assert speed.other_cores_mean > 0.5 and min(speed.other_cores) > 0.3
    assert speed.resolution < zbench.BUSY_CORES  # a second of windows reads to a few ticks
    assert zbench.load_state(speed.other_cores_mean, speed.resolution) == "busy"


def test_the_verdict_warns_in_one_line_when_others_were_busy():
    assert zbench.load_state(1.3, 0.05) == "busy"
    assert zbench.load_state(0.05, 0.05) == "quiet"
    assert zbench.load_state(0.6, 1.5) == "unclear"  # windows too short to tell
    figures = {"other_cores": {"in_memory": 1.31, "torch": 0.02},
               "contention": {"in_memory": "busy", "torch": "quiet"}}  # fmt: skip
    line = zbench.contention(figures)
    assert "\n" not in line and line.startswith("WARNING")
    assert "not reliable: other processes used 1.31 cores during the timed windows" in line
    figures["contention"]["in_memory"] = "quiet"
    assert zbench.contention(figures).startswith("quiet ")


TWINS = [("mlp_mnist", {}), ("basic_cnn", {}), ("improved_cnn", {}), ("resnet_cnn", {}),
         ("vgg_a", {}), ("vgg_a", {"bn": True})]  # fmt: skip
NEEDS_TORCH = "PyTorch twins are benchmark-only (pip install -e '.[bench]'; not in default CI)"


@pytest.mark.parametrize("model, toggles", [*TWINS, ("resnet_cnn", {"bn": False})])
def test_pytorch_twins_have_the_keras_models_parameter_counts(model, toggles):
    pytest.importorskip("torch", reason=NEEDS_TORCH)
    from zoo.twins import build_twin, trainable_params

    keras_model = zoo.build(model, **toggles)
    expected = sum(int(np.prod(w.shape)) for w in keras_model.trainable_weights)
    assert trainable_params(build_twin(model, toggles)) == expected


@pytest.mark.parametrize("model, toggles", [*TWINS, ("resnet_cnn", {"bn": False})])
def test_pytorch_twins_compute_the_keras_models_logits(model, toggles):
    torch = pytest.importorskip("torch", reason=NEEDS_TORCH)
    from zoo.twins import build_twin, copy_weights

    rng = np.random.default_rng(0)
    keras_model = zoo.build(model, **toggles)
    for weight in keras_model.weights:  # biases and BN statistics away from their zero / one
        if weight.path.endswith(("gamma", "moving_variance")):
            weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32"))
        elif weight.path.endswith(("beta", "moving_mean", "bias")):
            weight.assign(rng.normal(0, 0.1, weight.shape).astype("float32"))
    twin = build_twin(model, toggles)
    copy_weights(keras_model, twin)
    x = rng.standard_normal((2, *keras_model.input_shape[1:])).astype("float32")  # (B, H, W, C)
    expected = keras.ops.convert_to_numpy(keras_model(x, training=False))
    with torch.no_grad():
        got = twin.eval()(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_copying_into_the_wrong_twin_says_what_is_missing():
    pytest.importorskip("torch", reason=NEEDS_TORCH)
    from zoo.twins import build_twin, copy_weights

    with pytest.raises(ValueError, match="has no Keras layer 's1_1_bn'"):
        copy_weights(zoo.build("vgg_a"), build_twin("vgg_a", {"bn": True}))


def test_bench_side_by_side_with_pytorch():
    pytest.importorskip("torch", reason=NEEDS_TORCH)
    from zoo import machine

    figures = bench(recipe("mlp_mnist", batch_size=32), steps=2, windows=3, pipeline=False,
                    torch=True)  # fmt: skip
    assert set(figures["comparisons"]) == {"float32", "best"}
    for name, comparison in figures["comparisons"].items():
        keras_windows = figures[f"keras_{name}"]["window_images_per_second"]
        torch_windows = figures[f"torch_{name}"]["window_images_per_second"]
        ratios = [k / t for k, t in zip(keras_windows, torch_windows, strict=True)]
        assert comparison["ratios"] == pytest.approx(ratios) and len(ratios) == 3
        assert comparison["ratio"] == pytest.approx(sorted(ratios)[1])  # the median
        assert len(figures[f"torch_{name}"]["other_cores"]) == 3
        assert {f"keras_{name}", f"torch_{name}"} <= set(figures["contention"])
    assert figures["comparisons"]["float32"]["keras_setting"] == "float32"
    assert figures["comparisons"]["float32"]["torch_setting"] == "float32"
    best = machine.auto_precision()  # this machine's: bfloat16 on some CPUs, float32 on others
    assert figures["comparisons"]["best"]["keras_setting"] == best
    assert ("autocast" in figures["comparisons"]["best"]["torch_setting"]) == (best != "float32")
    with pytest.raises(ValueError, match="No PyTorch twin for 'lenet'"):
        bench(recipe("lenet"), steps=1, windows=1, pipeline=False, torch=True)


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_a_twin_trains_in_each_setting(precision):
    """The best setting's twin (autocast, channels_last) trains, and its loss falls."""
    torch = pytest.importorskip("torch", reason=NEEDS_TORCH)
    from zoo import twins

    twin = twins.build_twin("basic_cnn")
    setting = twins.Setting(precision, precision != "float32", "cpu")
    train = twins.trainer(twin, (32, 32, 3), 8, "adam", 1e-3, setting=setting)
    before = [p.detach().clone() for p in twin.parameters()]
    train(3)
    assert any(not torch.equal(a, b) for a, b in zip(before, twin.parameters(), strict=True))
    assert twin.s1_1_conv.weight.is_contiguous(memory_format=torch.channels_last) == (
        precision != "float32"
    )
    assert str(setting) == ("float32" if precision == "float32"
                            else "autocast bfloat16 + channels_last")  # fmt: skip


def test_bench_cli_prints_the_pytorch_ratio(capsys):
    pytest.importorskip("torch", reason=NEEDS_TORCH)
    from zoo.bench.__main__ import main

    argv = ["mlp_mnist", "--no-pipeline", "--torch", "--steps", "1", "--windows", "2"]
    assert main([*argv, "--batch-size", "16"]) == 0
    out = capsys.readouterr().out
    assert "pytorch fp32" in out and "795,010" in out
    for name in ("float32", "best"):
        assert re.search(rf"keras/pytorch +[\d.]+x training images/s {name} against {name}, "
                         r"median of 2 paired windows \([\d.]+–[\d.]+\)", out)  # fmt: skip
    assert re.search(r"^  pytorch best +[-\d.]+ [-\d.]+ \(mean", out, re.M)


def test_largest_batch_stops_at_the_first_that_runs_out(monkeypatch):
    import tensorflow as tf

    real = keras.Model.train_on_batch

    def tight(self, x, y, *args, **kwargs):
        if x.shape[0] > 8:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
        return real(self, x, y, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "train_on_batch", tight)
    config = recipe("mlp_mnist", model_kwargs={"hidden": (16,)})
    assert zbench.largest_batch(config) == (8, 16)
    assert zbench.largest_batch(config, limit=4) == (4, None)
