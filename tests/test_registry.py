"""The registry's contract: names, descriptions, toggle checking and error messages."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import typing
import warnings
from pathlib import Path

import keras
import pytest

import zoo

EXPECTED = {
    "airbench",
    "basic_cnn",
    "deeper_convnet",
    "improved_cnn",
    "inception_v1",
    "lenet",
    "mlp_mnist",
    "resnet_cnn",
    "three_layer_convnet",
    "tiny_baseline",
    "vgg_a",
}


def test_every_study_model_is_registered():
    assert EXPECTED <= set(zoo.list_models())
    # What commands check before TensorFlow loads, read from the families' source.
    assert list(zoo.registry.declared_models()) == zoo.list_models()


def test_list_models_pattern():
    assert zoo.list_models("*cnn") == ["basic_cnn", "improved_cnn", "resnet_cnn"]
    assert zoo.list_models("nothing*") == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_describe(name):
    info = zoo.describe(name)
    assert info.name == name
    assert (info.input_shape, info.num_classes) == zoo.HOME_SHAPES[info.dataset]
    assert info.study in {"S0", "S1", "S2", "S3", "S4", "S5"}
    assert info.toggles and "input_shape" not in info.toggles
    assert info.summary


def test_describe_and_the_catalog_give_each_recipe_its_study_figure():
    from zoo.study.catalog import reported

    assert reported("improved_cnn") == ("S1", pytest.approx(0.9261))
    assert reported("mlp_mnist") == ("S2", pytest.approx(0.9806))
    assert reported("tiny_baseline") == ("S3", pytest.approx(0.2271))
    assert zoo.describe("tiny_baseline").dataset == "tiny_imagenet"
    assert zoo.describe("vgg_a").toggles["bn"] is False


# The toggle vocabulary: one name, one type and one meaning in every family (docs/toggles.md).
VOCABULARY = {
    "bn": bool,  # batch norm after every conv; in the MLP, which has none, every hidden layer
    "head_bn": bool,  # batch norm after every hidden dense layer of a conv net's head
    "filters": tuple[int, ...],  # filter counts: per conv, or per stage
    "hidden": tuple[int, ...],  # units of every hidden dense layer
    "width": float,  # multiplier of every filter count
    "dropout": float,
    "weight_decay": float,
}
# Names the families used before one vocabulary: study aliases now, never toggles.
RETIRED = {"channels": "filters", "widths": "filters"}


def test_every_family_speaks_one_toggle_vocabulary():
    for name in zoo.list_models():
        fn = inspect.unwrap(zoo.registry._REGISTRY[name].fn)
        hints = typing.get_type_hints(fn)
        toggles = zoo.describe(name).toggles
        for toggle, kind in VOCABULARY.items():
            if toggle in toggles:
                assert hints[toggle] == kind, f"{name}.{toggle}: {hints[toggle]}"
        assert not set(RETIRED) & set(toggles), name
        # Old names still build, as aliases of today's.
        for old, new in RETIRED.items():
            if new in toggles and old in zoo.describe(name).aliases:
                assert zoo.describe(name).aliases[old] == new


def test_vgg_variants_share_one_signature_with_their_own_defaults():
    signatures = {n: inspect.signature(zoo.registry._REGISTRY[n].fn)
                  for n in ("basic_cnn", "improved_cnn", "vgg_a")}  # fmt: skip
    names = {n: list(s.parameters) for n, s in signatures.items()}
    assert names["basic_cnn"] == names["improved_cnn"] == names["vgg_a"]
    assert zoo.describe("improved_cnn").toggles["bn"] is True
    assert zoo.describe("vgg_a").toggles["hidden"] == (512, 512)
    assert zoo.build("basic_cnn").count_params() == 1_147_466  # S1's printed count
    with pytest.raises(TypeError, match="unknown toggle"):
        zoo.build("vgg_a", spec="basic_cnn")  # the variant's row is not a toggle


def test_old_toggle_names_and_one_int_for_a_tuple_still_build():
    assert zoo.registry.resolve_toggles("lenet", {"channels": [4, 8]}) == {"filters": (4, 8)}
    assert zoo.registry.resolve_toggles("resnet_cnn", {"widths": (8, 16, 32)}) == {
        "filters": (8, 16, 32)}  # fmt: skip
    assert zoo.registry.resolve_toggles("deeper_convnet", {"hidden": 256}) == {"hidden": (256,)}
    # The study's "normalize every layer" names set both.
    both = {"bn": True, "head_bn": True}
    assert zoo.registry.resolve_toggles("deeper_convnet", {"use_batchnorm": True}) == both
    assert zoo.registry.resolve_toggles("tiny_baseline", {"norm": True}) == both


def test_unknown_model_names_close_matches_and_how_to_list():
    with pytest.raises(ValueError, match=r"Unknown model 'vgga'\. Did you mean 'vgg_a'\?") as err:
        zoo.build("vgga")
    assert "list_models" in str(err.value) and "resnet_cnn" in str(err.value)


def test_unknown_toggle_lists_the_builders_toggles():
    with pytest.raises(TypeError, match=r"unknown toggle\(s\) 'batchnorm'") as err:
        zoo.build("vgg_a", batchnorm=True)
    for toggle in zoo.describe("vgg_a").toggles:
        assert toggle in str(err.value)


def test_toggle_types_are_checked():
    with pytest.raises(TypeError, match="'bn' expects bool"):
        zoo.build("vgg_a", bn="yes")
    with pytest.raises(TypeError, match="'width' expects float"):
        zoo.build("vgg_a", width="wide")
    with pytest.raises(ValueError, match="'activation' must be one of 'relu'"):
        zoo.build("mlp_mnist", activation="swishy")
    with pytest.raises(ValueError, match="'depth' must be one of 'short', 'mid', 'long'"):
        zoo.build("tiny_baseline", depth="huge")


def test_lists_are_accepted_for_tuples():
    model = zoo.build("mlp_mnist", hidden=[16, 8])
    assert [layer.name for layer in model.layers if layer.name.startswith("fc")][:1] == ["fc1"]
    assert model.get_layer("fc2").units == 8


@pytest.mark.parametrize(
    "shape, message",
    [((8, 8, 1), "too small"), ((28, 28), "three positive integers"), ((0, 28, 1), "three")],
)
def test_impossible_shapes_say_so(shape, message):
    with pytest.raises(ValueError, match=message):
        zoo.build("lenet", input_shape=shape)


def test_bad_num_classes():
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        zoo.build("mlp_mnist", num_classes=0)


def test_study_argument_names_are_aliases():
    ours = zoo.build("deeper_convnet", hidden=256, bn=True, dropout=0.2, weight_decay=5e-4)
    theirs = zoo.build(
        "deeper_convnet",
        hidden_dim=256,
        use_batchnorm=True,
        use_dropout=True,
        dropout_keep_ratio=0.8,
        reg=5e-4,
    )
    assert ours.get_layer("fc1").units == theirs.get_layer("fc1").units == 256
    assert theirs.get_layer("fc1_drop").rate == pytest.approx(0.2)
    assert len(theirs.losses) == len(ours.losses) > 0
    off = zoo.build("deeper_convnet", use_dropout=False, dropout_keep_ratio=0.5)
    assert not [layer for layer in off.layers if isinstance(layer, keras.layers.Dropout)]
    norm = zoo.build("tiny_baseline", norm=True, width=0.125)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in norm.layers)
    with pytest.raises(TypeError, match="not both"):
        zoo.build("deeper_convnet", reg=1e-3, weight_decay=1e-3)


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_cli_lists_and_describes():
    listed = _cli("list")
    assert listed.returncode == 0
    assert "resnet_cnn" in listed.stdout and "91.57%" in listed.stdout
    described = _cli("describe", "basic_cnn")
    assert described.returncode == 0
    assert '"trainable_params": 1147466' in described.stdout


def test_a_command_freezes_the_collector_only_when_it_succeeded():
    # Frozen, the interpreter's last collections skip TensorFlow's objects (1.3 s an exit); a
    # failed or interrupted command is left to close what it holds as Python does.
    code = (
        "import atexit, gc; from zoo.cli import run_main\n"
        "for status in (2, 130):\n"
        "    try:\n"
        "        run_main(lambda: status)\n"
        "    except SystemExit as exit:\n"
        "        print(exit.code, gc.get_freeze_count() > 0)\n"
        "atexit.register(lambda: print(0, gc.get_freeze_count() > 0))\n"
        "run_main(lambda: None)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["2 False", "130 False", "0 True"]


def test_cli_misuse_exits_2_with_one_line():
    bad = _cli("describe", "vgga")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("python -m zoo: Unknown model 'vgga'")
    assert "Traceback" not in bad.stderr
    assert _cli("frobnicate").returncode == 2


def _onednn(code: str, **env: str) -> tuple[bool, str]:
    """Runs `code` in a fresh interpreter; returns TensorFlow's own word on oneDNN, and stderr."""
    environ = {k: v for k, v in __import__("os").environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    check = "from zoo import compat; print(compat.onednn_enabled())"
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", f"{code}; {check}"],
        env={**environ, **env}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.strip() in ("True", "False"), done.stdout
    return done.stdout.strip() == "True", done.stderr


@pytest.mark.slow
def test_importing_the_zoo_turns_tensorflows_cpu_kernels_on():
    # The tuning and reports packages import zoo before Keras Tuner or Keras load TensorFlow.
    assert _onednn("import tuning")[0]  # the fast path by default, on any CPU
    assert _onednn("import reports")[0]
    assert not _onednn("import zoo", TF_ENABLE_ONEDNN_OPTS="0")[0]  # opt out
    # Too late to choose: TensorFlow decides by the CPU (on for AVX-512 Intel CPUs, off on
    # others), and the zoo warns only when TensorFlow reports it off.
    on, stderr = _onednn("import tensorflow, zoo")
    assert ("import zoo first" in stderr) == (not on), stderr


@pytest.mark.slow
def test_tensorflows_start_up_lines_do_not_reach_stderr():
    stderr = _onednn("import zoo")[1]
    assert "absl" not in stderr and "cuda" not in stderr.lower(), stderr


@pytest.mark.parametrize(
    "module, argv",
    [
        ("zoo.__main__", ["lst"]),
        ("zoo.bench.__main__", ["mlp_mnist", "--steps", "many"]),
        ("zoo.data.__main__", ["info"]),
        ("tuning.memory", ["--trials", "many"]),
    ],
)
def test_every_cli_reports_misuse_in_one_line_with_status_2(module, argv, capsys):
    import importlib

    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(module).main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("python -m ")


def _readme_samples() -> list[str]:
    """The Python samples of the README and the docs pages."""
    root = Path(__file__).resolve().parents[1]
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    return [s for p in pages for s in re.findall(r"```python\n(.*?)```", p.read_text(), re.S)]


@pytest.mark.slow
@pytest.mark.parametrize("needle", ["zoo.list_models()", "model.compile("])
def test_readme_samples_run_as_written(needle, tmp_path, monkeypatch):
    """The samples that need no data folder; the others are the tests' own calls."""
    (sample,) = [s for s in _readme_samples() if needle in s]
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():  # a sample that warns is a sample a reader distrusts
        warnings.simplefilter("error", UserWarning)
        exec(compile(sample, "README.md", "exec"), {})  # noqa: S102


CLIS = ["zoo.__main__", "zoo.train.__main__", "zoo.data.__main__", "zoo.bench.__main__",
        "zoo.study.__main__", "tuning.search", "tuning.memory", "reports.__main__"]  # fmt: skip


@pytest.mark.parametrize("module", CLIS)
def test_every_flag_of_every_command_says_what_it_does(module):
    import argparse
    import importlib

    parsers = [importlib.import_module(module)._parser()]
    for parser in parsers:  # subcommands too
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers += action.choices.values()
            elif action.help != argparse.SUPPRESS:
                assert action.help, f"{module}: {action.option_strings or action.dest} has no help"


@pytest.mark.slow
@pytest.mark.parametrize("module", [m.removesuffix(".__main__") for m in CLIS])
def test_help_answers_before_tensorflow_loads(module):
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", module, "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and "usage:" in done.stdout
    loaded = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert not {"tensorflow", "keras", "numpy"} & loaded, module
