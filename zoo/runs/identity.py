"""The one rule of run identity: which settings make two configs the same run, and the digest
that names a run's folder."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from zoo.recipes import RunConfig


def _fields(config: RunConfig) -> dict[str, Any]:
    """Every field but those declared `compare=False` (data location, streaming, logging)."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.compare}


def identity(config: RunConfig) -> dict[str, Any]:
    """The settings that make a run what it is: every field but those declared
    `compare=False` in `RunConfig` (data location, streaming, logging), with the toggles
    spelt out over the builder's defaults (a default given or left out trains the same)."""
    from zoo import registry

    fields = _fields(config)
    fields["model_kwargs"] = {**registry.describe(config.model).toggles, **config.model_kwargs}
    return fields


def same_run(a: RunConfig, b: RunConfig) -> bool:
    """Whether two configs train the same run."""
    return identity(a) == identity(b)


# Settings renamed since run folders were first named, hashed under their old names so that
# the same settings keep the same folder (config.json format 1 called decoupled_decay
# weight_decay).
_DIGEST_NAMES = {"decoupled_decay": "weight_decay"}
# Defaults that changed since run folders were first named, hashed at their old values: a
# float32 run keeps the name it had when float32 was the default, before `auto`.
_DIGEST_DEFAULTS = {"precision": "float32"}


def digest(config: RunConfig) -> str:
    """Eight hex digits of the run's settings as given, the last part of its folder's name
    (toggles as given, so names written before `identity` spelt them out stay the same)."""
    # Settings left at their defaults are out, so a setting added later keeps old runs' names.
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    changed = {
        _DIGEST_NAMES.get(name, name): value
        for name, value in _fields(config).items()
        if defaults[name] is dataclasses.MISSING
        or value != _DIGEST_DEFAULTS.get(name, defaults[name])
    }
    text = json.dumps(changed, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def folder_name(config: RunConfig) -> str:
    """`<model>-<dataset>-<digest>`: the first folder a run of `config` is given."""
    return f"{config.model}-{config.home_dataset}-{digest(config)}"
