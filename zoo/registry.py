"""The model registry: builders register under their function name; `build` checks and calls them.

A builder's keyword-only signature is its schema: every toggle, its type and its default. `build`
fills `input_shape` / `num_classes` from the model's home dataset, maps a study's own argument names
onto ours, rejects unknown toggles with the valid ones listed, and type-checks every value.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import fnmatch
import functools
import inspect
import sys
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union

from zoo.data.specs import DATASETS, HOME_DATASETS

if TYPE_CHECKING:
    import keras

# Home datasets: input shape (H, W, C) and number of classes a builder gets when none is given.
HOME_SHAPES: dict[str, tuple[tuple[int, int, int], int]] = {
    name: (DATASETS[name].shape, DATASETS[name].classes) for name in HOME_DATASETS
}

_RESERVED = ("input_shape", "num_classes")


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What `describe` tells about a registered model.

    Attributes:
        name: Registry name.
        family: Module (architecture family) that defines the builder.
        dataset: Home dataset, which gives the default input shape and class count.
        input_shape: Default input shape `(H, W, C)`.
        num_classes: Default number of classes.
        study: Study whose configuration the defaults reproduce (`S0` to `S4`).
        toggles: Every toggle with its default value.
        aliases: The study's own argument names accepted in place of ours (`alias -> toggle`).
        summary: First line of the builder's docstring.
    """

    name: str
    family: str
    dataset: str
    input_shape: tuple[int, int, int]
    num_classes: int
    study: str
    toggles: dict[str, Any]
    aliases: dict[str, str]
    summary: str


@dataclasses.dataclass(frozen=True)
class _Entry:
    fn: Callable[..., keras.Model]
    dataset: str
    study: str
    aliases: Mapping[str, str]
    translate: Callable[[dict[str, Any]], dict[str, Any]] | None


_REGISTRY: dict[str, _Entry] = {}


def register(
    *,
    dataset: str,
    study: str,
    aliases: Mapping[str, str] | None = None,
    translate: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Callable[[Callable[..., keras.Model]], Callable[..., keras.Model]]:
    """Registers a builder under its function name.

    Args:
        dataset: Home dataset, a key of `HOME_SHAPES`.
        study: Study whose configuration the builder's defaults reproduce.
        aliases: The study's argument names mapped to the builder's toggle names.
        translate: Maps study arguments that are not plain renames onto toggles; runs first.

    Returns:
        A decorator that registers and returns the builder unchanged.
    """
    if dataset not in HOME_SHAPES:
        raise ValueError(
            f"Unknown home dataset {dataset!r}; expected one of {sorted(HOME_SHAPES)}."
        )

    def decorator(fn: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        if fn.__name__ in _REGISTRY:
            raise ValueError(f"Model {fn.__name__!r} is already registered.")
        _REGISTRY[fn.__name__] = _Entry(fn, dataset, study, dict(aliases or {}), translate)
        return fn

    return decorator


def list_models(pattern: str | None = None) -> list[str]:
    """Lists registered model names, sorted.

    Args:
        pattern: Optional shell-style pattern, e.g. `"*cnn"` or `"vgg_*"`.

    Returns:
        The matching names.
    """
    names = sorted(_builders())
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)] if pattern else names


def _builders() -> dict[str, _Entry]:
    # The families register themselves on import; a command line imports them only once its
    # arguments have parsed (see zoo/__init__.py), so lookups make sure they are in.
    import zoo.models  # noqa: F401

    return _REGISTRY


def _entry(name: str) -> _Entry:
    if name in _builders():
        return _REGISTRY[name]
    raise _unknown(name, sorted(_REGISTRY))


def _unknown(name: str, valid: list[str]) -> ValueError:
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(
        f"Unknown model {name!r}.{hint} "
        f"Valid models: {', '.join(valid)} (zoo.list_models() lists them)."
    )


@functools.cache
def declared_models() -> tuple[str, ...]:
    """The builders the families register, read from their source without importing them
    (and so Keras and TensorFlow): how a command refuses an unknown model at once."""
    names = []
    for path in sorted((Path(__file__).parent / "models").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            # `@register(...) def name` and a variant's `name = register(...)(variant(...))`
            if isinstance(node, ast.FunctionDef) and any(map(_registers, node.decorator_list)):
                names.append(node.name)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                if _registers(node.value.func):
                    names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return tuple(sorted(names))


def _registers(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and getattr(node.func, "id", None) == "register"


def check_model(name: str) -> None:
    """Raises the registry's ValueError for an unknown model, before TensorFlow loads."""
    valid = sorted(_REGISTRY) if "zoo.models" in sys.modules else list(declared_models())
    if name not in valid:
        raise _unknown(name, valid)


def _toggle_params(fn: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    params = inspect.signature(fn).parameters
    return {k: p for k, p in params.items() if k not in _RESERVED}


def describe(name: str) -> ModelInfo:
    """Describes a registered model: toggles and defaults, home dataset, the study's figure.

    Args:
        name: Registry name.

    Returns:
        A `ModelInfo`.

    Raises:
        ValueError: If the name is not registered.
    """
    entry = _entry(name)
    shape, classes = HOME_SHAPES[entry.dataset]
    doc = inspect.getdoc(entry.fn) or ""
    return ModelInfo(
        name=name,
        family=entry.fn.__module__.rsplit(".", 1)[-1],
        dataset=entry.dataset,
        input_shape=shape,
        num_classes=classes,
        study=entry.study,
        toggles={k: p.default for k, p in _toggle_params(entry.fn).items()},
        aliases=dict(entry.aliases),
        summary=doc.splitlines()[0] if doc else "",
    )


def build(
    name: str,
    *,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
    **toggles: Any,
) -> keras.Model:
    """Builds a registered model: functional, uncompiled, outputs logits.

    Args:
        name: Registry name (see `list_models`).
        input_shape: `(H, W, C)`; defaults to the model's home dataset.
        num_classes: Number of output logits; defaults to the home dataset's.
        **toggles: The builder's toggles (see `describe(name).toggles`); the study's own
            argument names are accepted too (`describe(name).aliases`).

    Returns:
        A `keras.Model` named `name`.

    Raises:
        ValueError: Unknown model, a value outside a toggle's choices, or a bad shape.
        TypeError: Unknown toggle, or a value of the wrong type.
    """
    entry = _entry(name)
    home_shape, home_classes = HOME_SHAPES[entry.dataset]
    input_shape = _check_shape(name, home_shape if input_shape is None else input_shape)
    num_classes = home_classes if num_classes is None else num_classes
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"{name}: num_classes must be a positive integer, got {num_classes!r}.")
    toggles = resolve_toggles(name, toggles)
    try:
        model = entry.fn(input_shape=input_shape, num_classes=num_classes, **toggles)
    except ValueError as err:
        if str(err).startswith(f"{name}:"):
            raise
        raise ValueError(f"{name} with input_shape={input_shape}: {err}") from err
    import keras

    if model.outputs[0].dtype != "float32":
        # Under a mixed policy the logits are cast to float32, as Keras's mixed-precision guide
        # advises: float16 logits can overflow, and the softmax and loss lose precision.
        logits = keras.layers.Activation("linear", dtype="float32", name="logits_float32")
        model = keras.Model(model.inputs, logits(model.outputs[0]), name=model.name)
    return model


def resolve_toggles(name: str, toggles: Mapping[str, Any]) -> dict[str, Any]:
    """Maps a study's argument names onto the model's toggles and checks every name and type.

    Args:
        name: Registry name.
        toggles: Toggle values, ours or the study's names.

    Returns:
        The toggles under the builder's own names, lists turned into tuples.

    Raises:
        TypeError: Unknown toggle or a value of the wrong type.
        ValueError: A value outside a toggle's choices.
    """
    entry = _entry(name)
    toggles = dict(toggles)
    if entry.translate:
        toggles = entry.translate(toggles)
    for alias, target in entry.aliases.items():
        if alias in toggles:
            if target in toggles:
                raise TypeError(f"{name}: give {alias!r} or {target!r}, not both.")
            toggles[target] = toggles.pop(alias)
    params = _toggle_params(entry.fn)
    unknown = sorted(set(toggles) - set(params))
    if unknown:
        valid = ", ".join(f"{k}={p.default!r}" for k, p in params.items())
        raise TypeError(
            f"{name}: unknown toggle(s) {', '.join(map(repr, unknown))}. "
            f"Valid toggles: {valid}"
            + (f"; study names: {', '.join(sorted(entry.aliases))}" if entry.aliases else "")
            + "."
        )
    hints = typing.get_type_hints(inspect.unwrap(entry.fn))
    for key, value in toggles.items():
        if isinstance(value, list):
            toggles[key] = value = tuple(value)
        if _one_of_many(value, hints.get(key)):
            toggles[key] = value = (value,)  # `hidden=256`: one hidden layer of 256
        check_type(name, key, value, hints.get(key, Any))
    return toggles


def _one_of_many(value: Any, hint: Any) -> bool:
    """Whether `value` is one int given where the hint takes a tuple of ints."""
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    options = (
        typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) else (hint,)
    )
    return any(typing.get_origin(o) is tuple and typing.get_args(o)[:1] == (int,) for o in options)


def variant(
    family: Callable[..., keras.Model],
    name: str,
    doc: str,
    *,
    fixed: Mapping[str, Any] | None = None,
    **defaults: Any,
) -> Callable[..., keras.Model]:
    """A builder called `name`: `family` with other defaults, as timm makes its variants.

    Its signature, which `register` reads as the schema, is the family's with `defaults` in
    place and the `fixed` arguments (say, a spec row) left out, so the variants of a family
    share one signature and differ only in their defaults.

    Args:
        family: A builder of the contract `(*, input_shape, num_classes, **toggles)`, plus the
            `fixed` arguments.
        name: The variant's registry name.
        doc: Its docstring: summary and configuration; the family's Args section follows.
        fixed: Arguments every call gets that are not toggles.
        **defaults: The variant's defaults of some toggles.

    Raises:
        TypeError: A default or fixed argument the family does not take.
    """
    fixed = dict(fixed or {})
    signature = inspect.signature(family)
    unknown = sorted((set(defaults) | set(fixed)) - set(signature.parameters))
    if unknown:
        raise TypeError(f"{name}: {family.__name__} takes no {', '.join(map(repr, unknown))}.")
    params = [
        p.replace(default=defaults.get(p.name, p.default))
        for p in signature.parameters.values()
        if p.name not in fixed
    ]

    @functools.wraps(family)
    def builder(**toggles: Any) -> keras.Model:
        return family(**fixed, **{**defaults, **toggles})

    builder.__name__ = builder.__qualname__ = name
    args = (family.__doc__ or "").partition("\n    Args:")[2]
    builder.__doc__ = doc.rstrip() + ("\n\n    Args:" + args if args else "")
    builder.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    return builder


def _check_shape(name: str, shape: Any) -> tuple[int, int, int]:
    try:
        shape = tuple(shape)
    except TypeError:
        shape = ()
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(
            f"{name}: input_shape must be three positive integers (height, width, channels), "
            f"got {shape!r}."
        )
    return shape


def check_type(model: str, key: str, value: Any, hint: Any) -> None:
    """Raises TypeError (ValueError for a `Literal`'s choices) unless `value` fits `hint`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal and value not in args:
        raise ValueError(
            f"{model}: {key!r} must be one of {', '.join(map(repr, args))}; got {value!r}."
        )
    if not _matches(value, hint):
        raise TypeError(
            f"{model}: {key!r} expects {_type_name(hint)}, got {value!r} ({type(value).__name__})."
        )


def _matches(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin is Literal:
        return value in args
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is tuple:
        item = args[0] if args else Any
        return isinstance(value, tuple) and all(_matches(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is not None:  # tuple[int, ...], not just "tuple"
        return str(hint).replace("typing.", "")
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
