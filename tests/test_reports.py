"""Reports from real run folders: tiny trainings on MNIST and CIFAR-10 slices, built once."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
import shutil
import warnings
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from reports import build, figures
from reports.__main__ import main
from reports.landscape import loss_band, study_landscape
from reports.runs import find_runs, gather, read_run, study_figure, variant
from reports.surface import evaluate_grid, filter_normalized, surface
from reports.tables import ablation_table
from zoo.recipes import RunConfig, recipe
from zoo.train import train

# One worker trains the `runs` fixture once and runs every test that reads it.
pytestmark = pytest.mark.xdist_group("reports")


@pytest.fixture(scope="session")
def runs(data_dir, tmp_path_factory) -> Path:
    """Five finished runs (two seeds of one MLP, an MLP ablation, LeNet, a CIFAR-10 convnet),
    a folder that is not a run and an unfinished run."""
    root = tmp_path_factory.mktemp("runs")
    tiny = dict(data_dir=str(data_dir), subset=10, test_subset=5, epochs=2)
    mlp = {**recipe("mlp_mnist").model_kwargs, "hidden": (32,)}  # the recipe's, narrower
    for seed in (0, 1):
        train(recipe("mlp_mnist", seed=seed, model_kwargs=mlp, **tiny), root, verbose=0)
    train(recipe("mlp_mnist", model_kwargs={**mlp, "bn": True}, **tiny), root, verbose=0)
    train(recipe("lenet", **tiny), root, verbose=0)
    train(
        recipe("basic_cnn", data_dir=str(data_dir), subset=10, test_subset=2, epochs=1,
               model_kwargs={"width": 0.25}),
        root, verbose=0,
    )  # fmt: skip
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not a run")
    unfinished = root / "unfinished"
    shutil.copytree(next(root.glob("lenet-*")), unfinished)
    (unfinished / "metrics.json").unlink()
    return root


@pytest.fixture(scope="session")
def report(runs, tmp_path_factory):
    return build([str(runs)], tmp_path_factory.mktemp("report"), verbose=False)


def test_this_module_runs_on_one_worker(request):
    """Under `--dist loadgroup` xdist marks this module's tests `@reports` and gives them all
    to one worker, so `runs` trains once. pytest 9.2 silently dropped that mark (pytest-xdist
    issue 1386) and every worker trained its own: pyproject.toml keeps pytest below it."""
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not run by xdist workers with --dist loadgroup")
    assert request.node.nodeid.endswith("@reports"), (
        f"{request.node.nodeid}: xdist did not group this module; its trained fixtures would "
        f"train once per worker (pytest {pytest.__version__})"
    )


def _metrics(path: str) -> dict:
    return json.loads((Path(path) / "metrics.json").read_text())


def test_accuracy_table_rows_are_the_runs_metrics(report, runs):
    table = pd.read_csv(report.out / "accuracy.csv")
    assert len(table) == 5
    for _, row in table.iterrows():
        metrics = _metrics(runs / row["run"])
        for split in ("train", "val", "test"):
            assert row[f"{split} acc."] == pytest.approx(metrics[split]["accuracy"])
        assert row["params"] == metrics["trainable_params"]
        assert row["epochs"] == metrics["epochs_run"]
    assert sorted(table["model"].unique()) == ["basic_cnn", "lenet", "mlp_mnist"]
    for ext in ("md", "tex", "html"):
        text = (report.out / f"accuracy.{ext}").read_text()
        assert "lenet" in text and f"{table['test acc.'].iloc[0]:.1%}" in text
    assert (report.out / "accuracy.md").read_text().startswith("| model | variant |")
    assert "\\begin{tabular}" in (report.out / "accuracy.tex").read_text()


def _html_cells(page: Path) -> list[str]:
    text = page.read_text()
    return [
        re.sub(r"<[^>]+>", "", c).strip()
        for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", text, re.S)
    ]


def test_no_html_page_shows_none_nan_a_dict_or_a_raw_fraction(report):
    pages = sorted(report.out.rglob("*.html"))
    assert {p.name for p in pages} >= {"accuracy.html", "ablation.html", "index.html"}
    for page in pages:
        for cell in _html_cells(page):
            assert cell not in ("None", "nan", "NaN", "null"), f"{page.name}: {cell!r}"
            assert not re.match(r"[{\[]'", cell), f"{page.name}: dict-shaped {cell!r}"
            # Accuracies are shown in %, not as fractions such as 0.9836.
            assert not re.fullmatch(r"0\.\d{4}", cell), f"{page.name}: raw fraction {cell!r}"
        text = re.sub(r"<[^>]+>", " ", page.read_text())  # tags and embedded images out
        assert not re.search(r"\b(None|nan|NaN|null)\b|\{['\"]", text), page.name


def test_overlays_draw_one_axes_per_dataset_with_whole_epochs():
    from reports import figures

    history = pd.DataFrame({"epoch": [1, 2, 3], "val_accuracy": [0.5, 0.6, 0.7]})
    runs = {"a": history, "b": history, "c": history}
    fig = figures.overlay(runs, datasets={"a": "mnist", "b": "cifar10", "c": "mnist"})
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["val_accuracy by run, mnist", "val_accuracy by run, cifar10"]
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 1]
    ticks = fig.axes[0].get_xticks()
    assert all(float(t).is_integer() for t in ticks)  # epochs 1, 2, 3: no 1.5
    assert list(fig.axes[0].get_lines()[0].get_xdata()) == [1, 2, 3]
    # Six runs with long labels (S5's ladder) still leave the plot its room.
    long = {f"airbench-cifar10-{i:08x} ({'whiten=False+dirac=False+' * 4}seed {i})": history
            for i in range(6)}  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "constrained_layout not applied ... collapsed to zero"
        figures.overlay(long).savefig(io.BytesIO(), format="png")


def test_study_figure_beside_ours(report):
    runs = report.runs.set_index("model")
    assert runs.loc["lenet", "variant"] == "baseline"  # S2's recipe, shorter
    assert runs.loc["lenet", "study"] == "S2" and runs.loc["lenet", "study_test_accuracy"] == 0.9836
    assert runs.loc["basic_cnn", "variant"] == "width=0.25"
    assert pd.isna(runs.loc["basic_cnn", "study_test_accuracy"])  # not the study's network
    assert study_figure("vgg_a", "bn") == ("S1", 0.89)
    assert (
        study_figure(
            "tiny_baseline", "bn+dropout=0.5+head_bn+init=he_normal+residual+schedule=plateau"
        )[1]
        == 0.4302  # S3's +all, in the recipe's He init
    )


def test_ablation_pivot_has_mean_and_std_over_seeds(report):
    pivot = pd.read_csv(report.out / "ablation.csv", index_col=0, dtype=str)
    assert list(pivot.index) == ["basic_cnn", "lenet", "mlp_mnist"]
    assert list(pivot.columns) == ["baseline", "bn+hidden=32", "hidden=32", "width=0.25"]
    seeds = report.runs[report.runs["variant"] == "hidden=32"]["test_accuracy"]
    assert len(seeds) == 2
    cell = pivot.loc["mlp_mnist", "hidden=32"]
    assert cell == f"{seeds.mean():.1%} ± {seeds.std() * 100:.1f} (2)"  # the std in points
    assert (
        pivot.loc["lenet", "baseline"]
        == f"{report.runs.set_index('model').loc['lenet', 'test_accuracy']:.1%}"
    )
    assert pd.isna(pivot.loc["lenet", "hidden=32"])


def test_a_confusion_matrix_of_many_classes_is_drawn_at_a_fixed_size(tmp_path):
    from zoo.files import save_figure

    rng = np.random.default_rng(0)
    for classes, named in ((10, True), (200, False)):  # CIFAR-10's, Tiny ImageNet's
        names = [f"class {i}" for i in range(classes)]
        matrix = pd.DataFrame(rng.integers(0, 50, (classes, classes)), index=names,
                              columns=names)  # fmt: skip
        fig = figures.confusion(matrix)
        labels = [label.get_text() for label in fig.axes[0].get_xticklabels()]
        assert (labels == names) == named  # class names only where they fit
        save_figure(tmp_path / f"{classes}.png", fig, dpi=110)
        height, width = matplotlib.image.imread(tmp_path / f"{classes}.png").shape[:2]
        # 200 classes at a cell per 0.45 inch made a 10,230 x 10,120 PNG.
        assert 400 < width <= 1100 and 400 < height <= 1100


def test_ablation_rows_can_be_a_toggle(report):
    pivot = ablation_table(report.runs[report.runs["model"] == "mlp_mnist"], rows="bn")
    assert list(pivot.index) == ["(default)", "True"]
    assert list(pivot.columns) == ["hidden=32"]  # the row toggle leaves the variant
    with pytest.raises(KeyError, match="No column or toggle 'depth'"):
        ablation_table(report.runs, rows="depth")


def test_figures_are_non_blank_images(report):
    pngs = [p for p in report.files if p.suffix == ".png"]
    names = {p.name for p in pngs}
    assert {"curves.png", "confusion.png", "lr.png", "filters.png", "dense_weights.png",
            "overlay_val_accuracy.png", "overlay_loss.png"} <= names  # fmt: skip
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = matplotlib.image.imread(png)
        assert pixels.shape[0] > 100 and pixels[..., :3].std() > 0.01, png
        assert png.with_suffix(".svg").read_text().lstrip().startswith("<?xml")
    # Filters come from conv models only, unit images from the MLPs only.
    for folder in (report.out / "runs").iterdir():
        model = folder.name.split("-")[0]
        assert (folder / "filters.png").exists() == (model in ("lenet", "basic_cnn"))
        assert (folder / "dense_weights.png").exists() == (model == "mlp_mnist")


def test_index_html_embeds_every_figure_and_the_tables(report):
    text = (report.out / "index.html").read_text()
    pngs = [p for p in report.files if p.suffix == ".png"]
    assert text.count("data:image/png;base64,") == len(pngs)
    assert "accuracy table" in text and "ablation table" in text and "<table" in text


def test_non_runs_are_reported_and_skipped(report, runs):
    reasons = dict(report.skipped)
    assert reasons[str(runs / "unfinished")] == "unfinished run (no metrics.json)"
    assert len(report.runs) == 5  # the rest of the report is whole
    _, skipped = find_runs([str(runs / "notes"), str(runs / "lenet-*")])
    assert dict(skipped)[str(runs / "notes")] == "not a run folder (no config.json)"


def test_an_empty_selection_is_an_error_naming_what_was_searched(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No finished run folders in .*empty"):
        build([str(tmp_path / "empty")], tmp_path / "out", verbose=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["build", str(tmp_path / "nothing*"), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "nothing*" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exit_info:
        main(["build", str(tmp_path), "--formats", "png,gif"])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_cli_builds_a_report(runs, tmp_path, capsys):
    assert (
        main(["build", str(runs / "mlp_mnist-*"), "--out", str(tmp_path), "--formats", "pdf"]) == 0
    )
    assert "3 runs" in capsys.readouterr().out
    assert (tmp_path / "overlay_loss.pdf").read_bytes()[:4] == b"%PDF"
    assert len(pd.read_csv(tmp_path / "accuracy.csv")) == 3


def test_variant_labels():
    assert variant(recipe("vgg_a")) == "baseline"
    assert variant(recipe("vgg_a", model_kwargs={"bn": True})) == "bn"
    assert variant(recipe("resnet_cnn", model_kwargs={"residual": False})) == "no_residual"
    base = recipe("tiny_baseline").model_kwargs  # He's init
    config = recipe("tiny_baseline", schedule="plateau", model_kwargs={**base, "depth": "long"})
    assert variant(config) == "depth=long+schedule=plateau"
    assert variant(recipe("vgg_a", lr=5e-4, seed=3, epochs=2)) == "lr=0.0005"  # seed, epochs: not
    assert variant(recipe("mlp_mnist")) == "baseline"  # its L2 1e-4 is the recipe's
    assert variant(recipe("mlp_mnist", model_kwargs={})) == "weight_decay=0.001"
    assert variant(recipe("vgg_a", decoupled_decay=1e-4)) == "decoupled_decay=0.0001"
    assert variant(recipe("inception_v1", optimizer="rmsprop", momentum=0.5)) == (
        "momentum=0.5+optimizer=rmsprop"
    )
    # Against the recipe the run recorded, not today's.
    then = recipe("vgg_a", lr=5e-4)
    assert variant(then, then) == "baseline" and variant(recipe("vgg_a"), then) == "lr=0.001"


def _run_folder(path: Path, config: RunConfig, base: RunConfig | None = None) -> Path:
    """A finished run folder as far as the tables read it: config.json and metrics.json."""
    path.mkdir(parents=True)
    saved = {"format": 2, "config": dataclasses.asdict(config)}
    saved["recipe"] = dataclasses.asdict(base or recipe(config.model))
    (path / "config.json").write_text(json.dumps(saved, default=str))
    (path / "metrics.json").write_text(json.dumps({"test": {"accuracy": 0.5, "loss": 1.0}}))
    return path


@pytest.mark.parametrize(
    "model, kwargs, label, figure",
    [
        ("mlp_mnist", None, "baseline", ("S2", 0.9806)),
        ("deeper_convnet", None, "baseline", ("S0", 0.692)),  # its recipe is S0's final model
        # S0's baseline (builder defaults) was at lr 1e-3, constant: not at the recipe's schedule.
        ("deeper_convnet", {}, "hidden=100+init_std=0.001+no_bn+no_head_bn+weight_decay=0.001",
         (None, None)),
        ("deeper_convnet", {}, "", ("S0", 0.632)),
        ("vgg_a", {"bn": True}, "bn", ("S1", 0.89)),
        ("basic_cnn", {"width": 0.5}, "width=0.5", (None, None)),
    ],
)  # fmt: skip
def test_a_recipe_run_is_labelled_baseline_with_its_figure(model, kwargs, label, figure, tmp_path):
    overrides = {} if kwargs is None else {"model_kwargs": kwargs}
    if label == "":  # the study's own settings for that run
        overrides.update(lr=1e-3, schedule="constant")
        label = (
            "hidden=100+init_std=0.001+lr=0.001+no_bn+no_head_bn+schedule=constant"
            "+weight_decay=0.001"
        )
    config = recipe(model, epochs=1, seed=3, data_dir="/data", subset=10, **overrides)
    row = read_run(_run_folder(tmp_path / "run", config))
    assert (row["variant"], (row["study"], row["study_test_accuracy"])) == (label, figure)


def test_a_run_is_labelled_by_the_recipe_it_recorded(tmp_path):
    then = recipe("vgg_a", lr=5e-4, model_kwargs={"bn": True})  # a recipe since changed
    old = _run_folder(tmp_path / "old", then, base=then)
    new = _run_folder(tmp_path / "new", recipe("vgg_a"))
    frame, skipped = gather([old, new])
    assert list(frame["variant"]) == ["baseline", "baseline"] and not skipped
    assert list(frame["study_test_accuracy"]) == [0.89, 0.84]  # what each trained: VGG-A-BN, VGG-A


def test_a_format1_run_folder_is_read_in_todays_names():
    folder = Path(__file__).parent / "fixtures" / "run-format1"
    (path,), _ = find_runs([str(folder)])
    row = read_run(path)
    # Format 1 recorded no recipe: labelled against today's, its decay under today's name.
    assert row["variant"] == "decoupled_decay=0.0005+hidden=8+optimizer=adamw"
    assert row["optimizer"] == "adamw" and row["test_accuracy"] == pytest.approx(0.265)


def test_weight_figures_from_arrays():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 3, 8))
    fig = figures.filters(kernel)
    images = [ax.images[0].get_array() for ax in fig.axes if len(ax.images)]
    assert len(images) == 8
    first = kernel[..., 0]  # a filter is the last axis of a Keras conv kernel
    np.testing.assert_allclose(images[0], (first - first.min()) / (first.max() - first.min()))
    dense = np.random.default_rng(0).normal(size=(784, 20))
    fig = figures.dense_tiles(dense)
    images = [ax.images[0].get_array() for ax in fig.axes if len(ax.images)]
    assert len(images) == 20 and images[3].shape == (28, 28)
    unit = dense[:, 3].reshape(28, 28)
    np.testing.assert_allclose(images[3], 0.5 + 0.5 * unit / np.abs(unit).max())


def test_loss_band_is_the_per_step_min_and_max():
    runs = [np.array([3.0, 2.0, 1.0, 0.5]), np.array([2.5, 2.5, 0.8]), np.array([4.0, 1.0, 1.2])]
    low, high = loss_band(runs)  # cut to the shortest run
    np.testing.assert_array_equal(low, [2.5, 1.0, 0.8])
    np.testing.assert_array_equal(high, [4.0, 2.5, 1.2])


@pytest.mark.slow
def test_study_landscape_trains_once_and_draws_both_bands(data_dir, tmp_path, capsys):
    settings = dict(data_dir=str(data_dir), subset=10, batch_size=16)
    result = study_landscape(
        "mlp_mnist", {"bn": True}, lrs=(0.1, 0.01), epochs=2, out=tmp_path, **settings
    )
    assert set(result.runs) == {"baseline", "bn"} and all(len(r) == 2 for r in result.runs.values())
    for name, paths in result.runs.items():
        losses = np.stack([pd.read_csv(p / "steps.csv")["loss"].to_numpy() for p in paths])
        configs = [json.loads((p / "config.json").read_text())["config"] for p in paths]
        assert sorted(c["lr"] for c in configs) == [0.01, 0.1]
        assert all(c["model_kwargs"].get("bn", False) == (name == "bn") for c in configs)
        assert all(c["early_stopping"] == 0 and c["epochs"] == 2 for c in configs)
        # The figure reads the steps only: the test set is not evaluated.
        assert all("test" not in json.loads((p / "metrics.json").read_text()) for p in paths)
        bands = pd.read_csv(tmp_path / "bands.csv")
        np.testing.assert_allclose(bands[f"mlp_mnist {name} min"], losses.min(axis=0))
        np.testing.assert_allclose(bands[f"mlp_mnist {name} max"], losses.max(axis=0))
    assert len(bands) == 2 * math.ceil(80 / 16)  # 10 per class, 20 % of them held out
    pixels = matplotlib.image.imread(tmp_path / "landscape.png")
    assert pixels[..., :3].std() > 0.01
    capsys.readouterr()
    # Rerunning reuses every finished run: nothing is trained again.
    folders = sorted((tmp_path / "runs").iterdir())
    assert main(["landscape", "mlp_mnist", "--compare", "bn=True", "--lrs", "0.1,0.01",
                 "--epochs", "2", "--out", str(tmp_path), "--data-dir", str(data_dir),
                 "--subset", "10", "--batch-size", "16"]) == 0  # fmt: skip
    assert sorted((tmp_path / "runs").iterdir()) == folders
    assert "training" not in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["landscape", "mlp_mnist", "--compare", "batchnorm=True", "--out", str(tmp_path)])
    assert exit_info.value.code == 2


def test_filter_normalized_directions_keep_each_filters_norm():
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(3, 3, 2, 4)), rng.normal(size=(10, 5)) * 3, rng.normal(size=5)]
    conv, dense, bias = filter_normalized(weights, rng)
    for w, d in ((weights[0], conv), (weights[1], dense)):
        axes = tuple(range(w.ndim - 1))  # a filter is the last axis of a Keras kernel
        np.testing.assert_allclose(
            np.sqrt((d**2).sum(axis=axes)), np.sqrt((w**2).sum(axis=axes)), rtol=1e-6
        )
        assert not np.allclose(d, w)  # random, not the weights themselves
    assert not bias.any()  # biases (and BN's scale and offset) are left alone


def test_surface_around_a_trained_run(runs, tmp_path):
    import keras

    run = next(runs.glob("lenet-*"))
    result = surface(run, points=5, images=60, dims=2, out=tmp_path, verbose=False)
    assert result.grid.shape == (5, 5) and result.alphas[2] == 0
    # At the origin the loss is the trained model's own loss on the same images.
    assert result.grid[2, 2] == pytest.approx(result.line[2], rel=1e-5)
    assert np.isfinite(result.grid).all() and result.grid.max() > result.grid[2, 2]
    surface_csv = pd.read_csv(tmp_path / "surface.csv")
    assert len(surface_csv) == 25 and set(surface_csv.columns) == {"alpha", "beta", "loss"}
    for name in ("line.png", "contour.png"):
        assert matplotlib.image.imread(tmp_path / name)[..., :3].std() > 0.01

    model = keras.models.load_model(run / "best.keras", compile=False)
    before = [v.numpy().copy() for v in model.trainable_variables]
    from zoo.train import compile_model, load_config

    compile_model(model, load_config(run))
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    y = np.arange(8) % 10
    direction = filter_normalized(before, np.random.default_rng(1))
    losses = evaluate_grid(model, x, y, [direction], np.array([-1.0, 0.0, 1.0]), verbose=False)
    assert losses[1] == pytest.approx(model.evaluate(x, y, verbose=0)[0], rel=1e-5)
    for v, w in zip(model.trainable_variables, before, strict=True):
        np.testing.assert_array_equal(v.numpy(), w)  # weights restored
    # Away from the origin too, each point's loss is what evaluate reports with those weights.
    for v, w, d in zip(model.trainable_variables, before, direction, strict=True):
        v.assign(w + d)
    assert losses[2] == pytest.approx(model.evaluate(x, y, verbose=0)[0], rel=1e-4)


def test_surface_cli_errors(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["surface", str(tmp_path)])
    assert exit_info.value.code == 2


def test_runs_with_equal_folder_names_stay_apart():
    from reports.runs import _unique_names

    paths = [Path("s1/trial_0/r"), Path("s2/trial_0/r"), Path("s2/trial_1/q")]
    assert _unique_names(paths) == ["s1_trial_0_r", "s2_trial_0_r", "s2_trial_1_q"]
    assert _unique_names([Path("a/r"), Path("a/q")]) == ["r", "q"]


def test_surface_cli_writes_the_line(runs, tmp_path, capsys):
    run = next(runs.glob("lenet-*"))
    args = ["surface", str(run), "--points", "3", "--images", "20", "--dims", "1"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    assert "3/3 points" in capsys.readouterr().out
    line = pd.read_csv(tmp_path / "line.csv")
    assert list(line["alpha"]) == [-1.0, 0.0, 1.0] and line["loss"].notna().all()
    assert not (tmp_path / "surface.csv").exists()  # one direction only


@pytest.mark.slow
def test_damaged_run_folders_are_listed_and_the_rest_is_built(runs, tmp_path):
    import keras

    root = tmp_path / "runs"
    shutil.copytree(runs, root)
    good = sorted(root.glob("lenet-*"))[0]
    damaged = {
        "garbage-history": lambda p: (p / "history.csv").write_bytes(b"\x00\xff garbage"),
        "corrupt-model": lambda p: (p / "best.keras").write_bytes(b"PK\x03\x04 truncated"),
        # A Lambda layer carries Python code: safe_mode refuses to load it.
        "unsafe-model": lambda p: keras.Sequential(
            [keras.Input((2,)), keras.layers.Lambda(lambda x: x * 2)]
        ).save(p / "best.keras"),
    }
    for name, damage in damaged.items():
        shutil.copytree(good, root / name)
        damage(root / name)
    report = build([str(root)], tmp_path / "report", verbose=False)
    reasons = dict(report.skipped)
    for name in damaged:
        assert reasons[str(root / name)].startswith("unreadable"), reasons
    assert len(report.runs) == 5 and (report.out / "index.html").is_file()
    assert "unsafe-model" in (report.out / "index.html").read_text()  # listed there too


def test_the_ablation_averages_only_runs_that_differ_in_the_seed(runs):
    frame, _ = gather(find_runs([str(runs / "mlp_mnist-*")])[0])
    longer = frame[frame["seed"] == 0].copy()
    longer["epochs"], longer["seed"] = 60, 7
    longer["settings"] = [s.replace('"epochs": 2', '"epochs": 60') for s in longer["settings"]]
    longer["test_accuracy"] = 0.5
    table = ablation_table(pd.concat([frame, longer], ignore_index=True))
    cells = table.loc["mlp_mnist"]
    assert not any("(3)" in c for c in cells)  # 60 epochs and 2 epochs are not one cell
    assert any(c.endswith("(2)") for c in cells)  # the two seeds of 2 epochs still are
    assert any("epochs=60" in column for column in table.columns), list(table.columns)


def test_principal_plane_of_a_known_path():
    from reports.trajectory import principal_plane

    final = [np.zeros((2, 2), np.float32), np.zeros(3, np.float32)]
    # Epochs along one straight line, then a small step off it.
    epochs = [[w + s for w in final] for s in (3.0, 2.0, 1.0)] + [final]
    epochs[1][1] = epochs[1][1] + np.array([0.0, 0.1, 0.0], np.float32)
    directions, path, explained = principal_plane(epochs)
    assert path.shape == (4, 2) and np.allclose(path[-1], 0)  # ends at the final weights
    assert explained[0] > 0.99 and explained.sum() <= 1 + 1e-9
    assert sum(float((d**2).sum()) for d in directions[0]) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="at least 3 kept epochs"):
        principal_plane(epochs[:2])


@pytest.mark.slow
def test_trajectory_of_a_run_that_kept_its_epochs(data_dir, tmp_path, capsys):
    from reports.trajectory import trajectory

    config = recipe("mlp_mnist", data_dir=str(data_dir), subset=20, test_subset=5, epochs=3,
                    keep_epochs=True, model_kwargs={"hidden": (16,)})  # fmt: skip
    run = train(config, tmp_path / "runs", verbose=0)
    assert sorted(p.name for p in (run.path / "epochs").iterdir()) == [
        "epoch-001.weights.h5", "epoch-002.weights.h5", "epoch-003.weights.h5"
    ]  # fmt: skip
    result = trajectory(run.path, points=5, images=50, out=tmp_path / "out", verbose=False)
    assert result.path.shape == (3, 2) and np.allclose(result.path[-1], 0)
    assert 0 < result.explained.sum() <= 1 + 1e-9 and result.grid.shape == (5, 5)
    assert np.isfinite(result.grid).all()
    saved = json.loads((tmp_path / "out" / "trajectory.json").read_text())
    assert saved["explained_variance"] == pytest.approx(result.explained.tolist())
    assert matplotlib.image.imread(tmp_path / "out" / "trajectory.png")[..., :3].std() > 0.01
    # The command line; and a run that kept nothing says how to keep it.
    assert main(["surface", str(run.path), "--trajectory", "--points", "3", "--images", "20",
                 "--out", str(tmp_path / "cli"), "--quiet"]) == 0  # fmt: skip
    plain = train(dataclasses.replace(config, keep_epochs=False), tmp_path / "runs", verbose=0)
    with pytest.raises(SystemExit) as stop:
        main(["surface", str(plain.path), "--trajectory", "--quiet"])
    assert stop.value.code == 2 and "--keep-epochs" in capsys.readouterr().err


def test_probes_on_a_quadratic_give_its_curvature():
    """L(w) = mean((Xw - y)^2) with X'X = (c n / 2) I has Hessian c I: every step's gradient
    changes by c times its length, so the effective beta is c."""
    import keras

    from reports.smoothness import probe

    n, d, c = 64, 4, 3.0
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((n, d)))
    x = (q * np.sqrt(c * n / 2)).astype("float32")
    y = np.random.default_rng(1).standard_normal((n, 1)).astype("float32")
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(loss="mse")
    before = model.get_weights()
    result = probe(model, x, y, lr=0.01)
    assert result["beta"] == pytest.approx(c, rel=1e-3)
    # The loss along -g is a parabola: its range over the four steps is known exactly.
    w = before[0]
    g = 2 / n * x.T @ (x @ w - y)
    losses = [float(np.mean((x @ (w - s * g) - y) ** 2)) for s in 0.01 * np.array([0.5, 1, 2, 4])]
    assert result["loss_max"] - result["loss_min"] == pytest.approx(np.ptp(losses), rel=1e-3)
    for after, was in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(after, was)  # the model is left as it was


@pytest.mark.slow
def test_smoothness_of_a_model_and_its_ablation(data_dir, tmp_path, capsys):
    result = main(["smoothness", "mlp_mnist", "--compare", "bn=True", "--steps", "6",
                   "--every", "2", "--subset", "20", "--data-dir", str(data_dir),
                   "--out", str(tmp_path), "--quiet"])  # fmt: skip
    assert result == 0
    for label in ("baseline", "bn"):
        frame = pd.read_csv(tmp_path / f"probes_{label}.csv")
        assert frame["step"].tolist() == [0, 2, 4]
        assert (frame["loss_max"] >= frame["loss_min"]).all() and (frame["beta"] > 0).all()
    assert matplotlib.image.imread(tmp_path / "smoothness.png")[..., :3].std() > 0.01
    with pytest.raises(SystemExit) as stop:
        main(["smoothness", "mlp_mnist", "--compare", "batchnorm=True", "--quiet"])
    assert stop.value.code == 2 and "batchnorm" in capsys.readouterr().err


def test_an_out_that_is_a_file_is_one_line(tmp_path, capsys):
    taken = tmp_path / "report"
    taken.write_text("")
    folder = Path(__file__).parent / "fixtures" / "run-format1"
    with pytest.raises(SystemExit) as exit_info:
        main(["build", str(folder), "--out", str(taken), "--quiet"])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(taken) in line


def test_ctrl_c_in_landscape_says_the_same_command_continues(monkeypatch, capsys):
    from zoo.train import Interrupted

    def interrupted(*args, **kwargs):
        raise Interrupted(Path("landscape/runs/vgg_a-cifar10-1234abcd"))

    monkeypatch.setattr("reports.landscape.study_landscape", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        main(["landscape", "vgg_a", "--compare", "bn=True", "--quiet"])
    assert exit_info.value.code == 130
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "interrupted; the same command continues" in line


def test_precision_is_a_column_not_a_variant():
    # A run whose recorded recipe is in another precision (`auto` differs per machine) is the
    # recipe still; tables show its precision and never average two precisions in one cell.
    run = recipe("lenet", precision="float32")
    assert variant(run, recipe("lenet", precision="mixed_bfloat16")) == "baseline"
    assert variant(recipe("lenet", precision="mixed_bfloat16", lr=0.5)) == "lr=0.5"


@pytest.mark.slow  # 10-14 s: the whole suite runs it, the fast lane not
def test_a_rebuild_redraws_only_the_runs_that_changed(runs, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(runs, root)
    first = build([str(root)], tmp_path / "report", verbose=False)
    drawn = {p: p.stat().st_mtime_ns for p in first.files if p.parent.parent.name == "runs"}
    assert len({p.parent for p in drawn}) == 5

    again = build([str(root)], tmp_path / "report", verbose=False)
    assert set(again.files) == set(first.files)
    assert {p: p.stat().st_mtime_ns for p in drawn} == drawn  # nothing drawn twice

    lenet, mlp = next(root.glob("lenet-*")), sorted(root.glob("mlp_mnist-*"))[0]
    history = pd.read_csv(lenet / "history.csv")
    history.loc[0, "loss"] += 1.0
    history.to_csv(lenet / "history.csv", index=False)
    (mlp / "best.keras").write_bytes(b"PK\x03\x04 truncated")  # damaged after it was drawn
    third = build([str(root)], tmp_path / "report", verbose=False)
    redrawn = {p.parent.name for p in drawn if p.stat().st_mtime_ns != drawn[p]}
    assert redrawn == {lenet.name}
    assert dict(third.skipped)[str(mlp)].startswith("unreadable")
