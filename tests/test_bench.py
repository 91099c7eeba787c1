"""zoo.bench: the training-speed benchmark prints its figures, on real MNIST."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zoo.bench import bench
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


def test_bench_cli(data_dir, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "zoo.bench", "lenet", "--data-dir", str(data_dir),
         "--steps", "2", "--windows", "1", "--set", "channels=(4, 8)",
         "--steps-per-execution", "1", "--profile", str(tmp_path / "trace")],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-1500:]
    text = out.stdout
    assert "images/s" in text and "pipeline cost" in text and "MiB" in text
    assert "1 steps per call" in text
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


TWINS = [("mlp_mnist", {}), ("basic_cnn", {}), ("improved_cnn", {}), ("resnet_cnn", {}),
         ("vgg_a", {}), ("vgg_a", {"bn": True})]  # fmt: skip


@pytest.mark.parametrize("model, toggles", TWINS)
def test_pytorch_twins_have_the_keras_models_parameter_counts(model, toggles):
    pytest.importorskip("torch", reason="PyTorch twins are benchmark-only (pip install torch)")
    import zoo
    from zoo.twins import build_twin, trainable_params

    keras_model = zoo.build(model, **toggles)
    expected = sum(int(np.prod(w.shape)) for w in keras_model.trainable_weights)
    assert trainable_params(build_twin(model, toggles)) == expected


def test_bench_side_by_side_with_pytorch():
    pytest.importorskip("torch", reason="PyTorch twins are benchmark-only (pip install torch)")
    figures = bench(recipe("mlp_mnist", batch_size=32), steps=2, windows=1, pipeline=False,
                    torch=True)  # fmt: skip
    ratio = figures["in_memory"]["images_per_second"] / figures["torch"]["images_per_second"]
    assert figures["keras_over_torch"] == pytest.approx(ratio) and ratio > 0
    with pytest.raises(ValueError, match="No PyTorch twin for 'lenet'"):
        bench(recipe("lenet"), steps=1, windows=1, pipeline=False, torch=True)


def test_bench_cli_prints_the_pytorch_ratio(capsys):
    pytest.importorskip("torch", reason="PyTorch twins are benchmark-only (pip install torch)")
    from zoo.bench import main

    argv = ["mlp_mnist", "--no-pipeline", "--torch", "--steps", "1", "--windows", "1"]
    assert main([*argv, "--batch-size", "16"]) == 0
    out = capsys.readouterr().out
    assert "pytorch twin" in out and "keras/pytorch" in out and "795,010" in out
