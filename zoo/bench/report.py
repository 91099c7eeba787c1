"""The benchmark's figures as the lines `python -m zoo.bench` prints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zoo.bench.timing import LABELS, contention

if TYPE_CHECKING:
    pass


def _cores(value: float) -> str:
    return f"{round(value, 2) + 0.0:.2f}"  # no "-0.00"


def _speed_line(label: str, s: dict[str, Any], unit: str = "step") -> str:
    windows = s["window_images_per_second"]
    return (
        f"{label:<15}{s['images_per_second']:,.1f} images/s ({min(windows):,.1f}–"
        f"{max(windows):,.1f} over {len(windows)} windows), {s['ms_per_step']:.1f} ms/{unit}"
    )


def report(f: dict[str, Any], profile_dir: str | None = None) -> str:
    """The figures of `bench` as the command prints them."""
    cpu = f["cpu"]
    lines = [
        f"model          {f['model']} ({f['params']:,} trainable params), batch {f['batch']}, "
        f"{f['steps_per_execution']} steps per call",
        f"device         {f['device']}, {f['precision']}{', XLA' if f['jit'] else ''}",
        f"cpu            {cpu['model']}, {cpu['cores']} cores; {cpu['vector']}",
        _speed_line("in-memory", f["in_memory"]),
        _speed_line("inference", f["inference"], "batch (predict)"),
        f"flop/s         train {f['train_flop_fraction']:.1%}, inference "
        f"{f['inference_flop_fraction']:.1%} of a large matmul's "
        f"{f['matmul_flops_per_second'] / 1e9:,.1f} GFLOP/s "
        f"({f['forward_flops'] / 1e6:,.1f} MFLOP per image forward)",
    ]
    if "pipeline" in f:
        lines.append(
            _speed_line("real pipeline", f["pipeline"])
            + f" (pipeline cost {f['pipeline_cost']:+.1%})"
        )
        lines.append(_speed_line("input alone", f["feed"], "batch (no model)"))
    lines.append(
        f"warm-up        {f['in_memory']['warmup_seconds']:.1f} s for the first window "
        "(tracing, compiling, first steps)"
    )
    for name, c in f.get("comparisons", {}).items():
        ratios = c["ratios"]
        lines += [
            _speed_line(LABELS[f"keras_{name}"], f[f"keras_{name}"]) + f" ({c['keras_setting']})",
            _speed_line(LABELS[f"torch_{name}"], f[f"torch_{name}"])
            + f" ({c['torch_setting']}, same {f['params']:,} params)",
            f"keras/pytorch  {c['ratio']:.2f}x training images/s {name} against {name}, median "
            f"of {len(ratios)} paired windows ({min(ratios):.2f}–{max(ratios):.2f}), alternating",
        ]
    lines.append("others' CPU    cores used by other processes in each timed window:")
    for key, mean in f["other_cores"].items():
        each = " ".join(_cores(cores) for cores in f[key]["other_cores"])
        resolution = f[key]["resolution"]
        lines.append(f"  {LABELS[key]:<13}{each} (mean {_cores(mean)} ±{resolution:.2f})")
    lines.append(contention(f))
    if "profile" in f:
        lines.append(f"op time        (trace in {profile_dir})")
        lines += [f"  {share:6.1%}  {kind}" for kind, share in f["profile"]]
    gpu = f", {f['peak_gpu_mib']:,.0f} MiB GPU" if "peak_gpu_mib" in f else ""
    lines.append(f"peak memory    {f['peak_rss_mib']:,.0f} MiB resident{gpu}")
    return "\n".join(lines)
