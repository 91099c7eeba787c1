"""The machine a run trains on: its CPU, its GPUs, and the precision that is fastest there.

`--precision auto` (the default of `zoo.train`, `zoo.study`, `tuning.search` and `zoo.bench`)
asks `auto_precision`. Half precision pays only where the hardware computes in it: bfloat16 on
CPUs with AVX512_BF16 or AMX (oneDNN's bfloat16 matmuls and convolutions; without them it
emulates bfloat16 and runs slower than float32) and on GPUs of compute capability 8.0 or newer
(Ampere's bfloat16 tensor cores, no loss scaling); float16 with loss scaling on older GPUs with
tensor cores (7.0 to 7.5); float32 elsewhere, older GPUs included, where Keras itself warns that
float16 runs slower for lack of tensor cores.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path
from typing import Any

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# (flag in /proc/cpuinfo, label): x86 "flags", then Arm "Features".
_AVX512 = (("avx512_vnni", "VNNI"), ("avx512_bf16", "BF16"), ("avx512_fp16", "FP16"))
_AMX = (("amx_bf16", "BF16"), ("amx_int8", "INT8"), ("amx_fp16", "FP16"))
_ARM = (("asimd", "NEON"), ("sve", "SVE"), ("sve2", "SVE2"), ("bf16", "BF16"), ("i8mm", "I8MM"))


def _cpuinfo_fields(cpuinfo: str | None) -> dict[str, str]:
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The first CPU's feature flags from /proc/cpuinfo (x86 `flags`, Arm `Features`)."""
    fields = _cpuinfo_fields(cpuinfo)
    return set((fields.get("flags") or fields.get("features") or "").split())


def vector_extensions(flags: set[str]) -> str:
    """Summarizes a CPU's vector extensions from its /proc/cpuinfo flags.

    For example `AVX2+FMA, AVX-512 (VNNI, BF16), AMX (BF16, INT8)`, or `AVX2+FMA, no AVX-512`.
    """
    parts = []
    if "avx2" in flags:
        parts.append("AVX2+FMA" if "fma" in flags else "AVX2")
    elif "avx" in flags:
        parts.append("AVX, no AVX2")
    if "avx512f" in flags:
        subsets = [label for flag, label in _AVX512 if flag in flags]
        parts.append("AVX-512" + (f" ({', '.join(subsets)})" if subsets else ""))
    elif "avx" in flags:
        parts.append("no AVX-512")
    if "amx_tile" in flags:
        subsets = [label for flag, label in _AMX if flag in flags]
        parts.append("AMX" + (f" ({', '.join(subsets)})" if subsets else ""))
    parts += [label for flag, label in _ARM if flag in flags]
    return ", ".join(parts) or "no vector extensions listed"


def cpu_description(cpuinfo: str | None = None) -> dict[str, Any]:
    """The CPU's name, the cores this process may use, and its vector extensions.

    Args:
        cpuinfo: The text of /proc/cpuinfo; None reads it (empty where there is none).

    Returns:
        `{"model": "AMD EPYC 7B13", "cores": 2, "vector": "AVX2+FMA, no AVX-512"}`.
    """
    fields = _cpuinfo_fields(cpuinfo)
    name = fields.get("model name") or fields.get("hardware") or platform.processor()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    return {
        "model": name or platform.machine() or "unknown CPU",
        "cores": cores or os.cpu_count(),
        "vector": vector_extensions(cpu_flags(cpuinfo)),
    }


def _gpu_device_files() -> bool:
    # NVIDIA's and ROCm's device nodes: without them no GPU can be seen, and TensorFlow, which
    # takes seconds to import, need not be asked.
    dev = Path("/dev")
    return any(dev.glob("nvidia[0-9]*")) or (dev / "kfd").exists() or (dev / "dxg").exists()


def gpu_capabilities() -> list[tuple[int, int]]:
    """The CUDA compute capability of each GPU TensorFlow sees ((0, 0) where it reports none).

    Imports TensorFlow only on a machine with GPU device files, and initializes no device, so
    a multi-worker strategy can still be made afterwards.
    """
    if not _gpu_device_files():
        return []
    import tensorflow as tf

    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        found.append(tuple(details.get("compute_capability") or (0, 0)))
    return found


def choose_precision(flags: set[str], gpus: list[tuple[int, int]]) -> str:
    """The fastest sound precision for a CPU's flags and the GPUs' compute capabilities.

    With GPUs the slowest one decides, since every replica must run the same policy.
    """
    if gpus:
        oldest = min(gpus)
        if oldest >= (8, 0):
            return "mixed_bfloat16"
        return "mixed_float16" if oldest >= (7, 0) else "float32"
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        return "mixed_bfloat16"
    return "float32"


@functools.cache
def auto_precision() -> str:
    """`choose_precision` for this machine (read once per process)."""
    return choose_precision(cpu_flags(), gpu_capabilities())


def resolve_precision(precision: str) -> str:
    """A precision name as given, or `auto_precision()` for "auto".

    Raises:
        ValueError: Neither "auto" nor one of `PRECISIONS`.
    """
    if precision == "auto":
        return auto_precision()
    if precision not in PRECISIONS:
        raise ValueError(
            f"Unknown precision {precision!r}. Precisions: auto, {', '.join(PRECISIONS)}."
        )
    return precision
