"""zoo.machine: the CPU's name and extensions, and the precision `auto` picks for a machine.

The choices are checked on described machines, so no test depends on this CPU's extensions.
"""

from __future__ import annotations

import json

import pytest

from zoo import machine

ZEN3 = "model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse2 avx fma avx2 bmi2\n"
ZEN4 = "model name\t: AMD EPYC 9B14\nflags\t\t: avx fma avx2 avx512f avx512_vnni avx512_bf16\n"
SAPPHIRE = "flags : avx avx2 fma avx512f avx512_vnni avx512_fp16 amx_tile amx_bf16 amx_int8"


def test_the_cpu_is_named_with_its_vector_extensions():
    assert machine.cpu_description(ZEN3)["model"] == "AMD EPYC 7B13"
    assert machine.cpu_description(ZEN3)["vector"] == "AVX2+FMA, no AVX-512"
    spr = "flags : avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8"
    assert machine.vector_extensions(set(spr.split())) == (
        "AVX2+FMA, AVX-512 (VNNI, BF16), AMX (BF16, INT8)"
    )
    assert machine.vector_extensions({"fp", "asimd", "sve", "bf16"}) == "NEON, SVE, BF16"


@pytest.mark.parametrize(
    "cpuinfo, gpus, chosen",
    [(ZEN3, [], "float32"),                       # AVX2 only: bfloat16 would be emulated
     (ZEN4, [], "mixed_bfloat16"),                # AVX512_BF16
     (SAPPHIRE, [], "mixed_bfloat16"),            # AMX without AVX512_BF16 listed
     ("Features : fp asimd sve bf16", [], "float32"),  # Arm: not chosen automatically
     (ZEN3, [(9, 0)], "mixed_bfloat16"),          # H100: the GPU decides, not the CPU
     (ZEN4, [(7, 5)], "mixed_float16"),           # T4: tensor cores without bfloat16
     (ZEN4, [(8, 0), (7, 0)], "mixed_float16"),   # the oldest GPU decides for all replicas
     (ZEN4, [(6, 1)], "float32")],                # Pascal: no tensor cores
)  # fmt: skip
def test_auto_precision_follows_the_hardware(cpuinfo, gpus, chosen):
    assert machine.choose_precision(machine.cpu_flags(cpuinfo), gpus) == chosen


def test_this_machine_gets_one_of_the_policies():
    chosen = machine.resolve_precision("auto")
    assert chosen == machine.choose_precision(machine.cpu_flags(), machine.gpu_capabilities())
    assert machine.resolve_precision("float32") == "float32"
    with pytest.raises(ValueError, match="Unknown precision 'half'. Precisions: auto, float32"):
        machine.resolve_precision("half")


# --- the chosen precision in runs, studies and searches ------------------------------------------


def test_a_config_records_the_policy_auto_chose(monkeypatch):
    from zoo.recipes import RunConfig, recipe

    monkeypatch.setattr(machine, "auto_precision", lambda: "mixed_bfloat16")
    assert RunConfig("lenet").precision == "mixed_bfloat16"  # `auto` is the default
    assert recipe("lenet", precision="auto").precision == "mixed_bfloat16"
    explicit = recipe("lenet", precision="float32")
    assert explicit.precision == "float32" and explicit != recipe("lenet", precision="auto")
    monkeypatch.setattr(machine, "auto_precision", lambda: "float32")
    assert RunConfig("lenet").precision == "float32"


def test_a_config_written_without_a_precision_reads_as_float32(tmp_path, monkeypatch):
    import json
    import shutil
    from pathlib import Path

    from zoo.train import load_config

    monkeypatch.setattr(machine, "auto_precision", lambda: "mixed_bfloat16")
    run = tmp_path / "run"
    shutil.copytree(Path(__file__).parent / "fixtures" / "run-format1", run)
    saved = json.loads((run / "config.json").read_text())
    assert load_config(run).precision == "float32"  # as written
    del saved["config"]["precision"]
    (run / "config.json").write_text(json.dumps(saved))
    assert load_config(run).precision == "float32"  # not this machine's `auto`


def test_a_study_keeps_the_precision_it_started_in(tmp_path, monkeypatch):
    from study_runner.runner import study_precision

    monkeypatch.setattr(machine, "auto_precision", lambda: "mixed_bfloat16")
    folder = tmp_path / "S1-cpu"
    assert study_precision(folder) == "mixed_bfloat16"  # a new study takes this machine's
    monkeypatch.setattr(machine, "auto_precision", lambda: "float32")  # continued elsewhere
    assert study_precision(folder) == "mixed_bfloat16"
    assert study_precision(folder, "mixed_bfloat16") == "mixed_bfloat16"
    with pytest.raises(ValueError, match="holds a study trained in mixed_bfloat16; continue it"):
        study_precision(folder, "float32")  # one folder, one precision
    older = tmp_path / "S0-cpu"  # from before study.json: its runs were all float32
    (older / "runs" / "a-run").mkdir(parents=True)
    (older / "runs" / "a-run" / "config.json").write_text("{}")
    monkeypatch.setattr(machine, "auto_precision", lambda: "mixed_bfloat16")
    assert study_precision(older) == "float32"
    with pytest.raises(ValueError, match="Unknown precision 'half'"):
        study_precision(tmp_path / "S2-cpu", "half")


def test_a_search_continues_in_its_precision(tmp_path):
    import json

    from tuning.project import project_precision as _project_precision

    project = tmp_path / "mlp_mnist-grid"
    assert _project_precision(project) is None  # new: this machine's `auto`
    project.mkdir()
    (project / "search.json").write_text(json.dumps({"default_run": {"precision": "bf"}}))
    assert _project_precision(project) == "bf"
    (project / "search.json").write_text(json.dumps({"space": "mlp_mnist"}))
    assert _project_precision(project) == "float32"  # written before `auto`


def test_a_float32_run_keeps_the_folder_name_it_had_before_auto():
    from zoo.recipes import recipe
    from zoo.runs import digest as _digest

    # Digests that the code before `auto` gave these settings (float32 then the default), so
    # reruns of older float32 runs and studies find their folders.
    assert _digest(recipe("lenet", precision="float32")) == "3ab917ac"
    assert _digest(recipe("basic_cnn", epochs=3, seed=2, precision="float32")) == "a7315477"
    bf16 = recipe("lenet", precision="mixed_bfloat16")
    assert _digest(bf16) != _digest(recipe("lenet", precision="float32"))


def test_a_study_keeps_the_test_set_it_started_with(tmp_path):
    from study_runner.runner import study_test_subset

    folder = tmp_path / "S1-cpu"
    assert study_test_subset(folder, 50) == 50  # a new study takes the one given
    assert study_test_subset(folder) == 50  # and keeps it when continued without one
    assert json.loads((folder / "study.json").read_text())["test_subset"] == 50
    with pytest.raises(ValueError, match="scored on --test-subset 50; continue it"):
        study_test_subset(folder, 0.5)
    older = tmp_path / "S0-cpu"  # began before the record: scored on the budget's test set
    (older / "runs" / "a-run").mkdir(parents=True)
    (older / "runs" / "a-run" / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="scored on the budget's test set"):
        study_test_subset(older, 10)
    assert study_test_subset(older) is None
