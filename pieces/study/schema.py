"""The study's settings, checked completely before anything is written or started.

One pydantic model (``StudySettings``) covers every key of
:func:`pieces.study.grid.default_settings`, whatever set it: the defaults, a
``--config`` TOML file or a command-line flag. Types are strict (``"3"`` is not a
number, ``true`` is not 1), lists are non-empty, and every value has its range.
:func:`validate_settings` returns the settings as plain data or raises
:class:`SettingsError` with one line naming the key's dotted path and what is allowed.

Examples
--------
>>> from pieces.study import default_settings
>>> s = validate_settings(default_settings("quick"))
>>> s["seeds"]
3
>>> validate_settings({**s, "seeds": -3})
Traceback (most recent call last):
...
pieces.study.schema.SettingsError: settings: seeds: got -3; allowed: an integer >= 1
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = ["StudySettings", "TrainSettings", "SettingsError", "validate_settings", "to_toml"]

#: Largest depth and width a study accepts: beyond them one task takes days (a depth-L
#: construction trains on 2**(L+1)+1 points), and a typo should not start that.
MAX_DEPTH = 64
MAX_WIDTH = 4096


class SettingsError(ValueError):
    """A bad setting: one line, ``settings: <key path>: <what is wrong>; allowed: ...``."""


def _target(v):
    from ..targets import resolve_target

    resolve_target(v)
    return v


def _precision(v):
    from ..precision import parse_precision

    parse_precision(v)
    return v


Depth = Annotated[int, Field(ge=1, le=MAX_DEPTH)]
Width = Annotated[int, Field(ge=1, le=MAX_WIDTH)]
Positive = Annotated[int, Field(ge=1)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Fraction01 = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Target = Annotated[str, AfterValidator(_target)]
Precision = Annotated[str, AfterValidator(_precision)]
Lr = Union[PositiveFloat, Literal["auto"]]
Delta = Union[NonNegative, Literal["ulp"]]


def _nonempty(t):
    return Annotated[list[t], Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TrainSettings(_Strict):
    """One training configuration of the study (a subset of ``TrainConfig``)."""

    optimizer: Literal["gd", "sgd", "adam"]
    lr: Lr
    steps: Positive
    record_every: Positive
    n_samples: Annotated[int, Field(ge=2)] = 256
    schedule: Literal["constant", "cosine", "linear", "exp"] = "constant"
    lr_final: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.01
    adam_eps: PositiveFloat = 1e-8
    batch_size: Optional[Positive] = None
    sampling: Literal["grid", "random"] = "grid"

    @model_validator(mode="after")
    def _auto_not_adam(self):
        if self.lr == "auto" and self.optimizer == "adam":
            raise ValueError("lr = 'auto' is for gd and sgd (Adam's step does not scale with the curvature)")
        return self


class StudySettings(_Strict):
    """Every setting of ``pieces study``; see ``default_settings`` for their meaning."""

    title: str
    seeds: Positive
    depths: _nonempty(Depth)
    widths: _nonempty(Width)
    targets: _nonempty(Target)
    train: TrainSettings
    construction_depths: _nonempty(Annotated[int, Field(ge=1, le=24)])
    construction_deltas: _nonempty(Delta)
    construction_seeds: Positive
    construction_train: TrainSettings
    construction_adam: Optional[TrainSettings] = None
    perturbation_depths: _nonempty(Depth)
    perturbation_construction_depths: Optional[_nonempty(Annotated[int, Field(ge=1, le=24)])] = None
    perturbation_widths: _nonempty(Width)
    perturbation_targets: _nonempty(Target)
    perturbation_train: TrainSettings
    perturbation_stages: _nonempty(Fraction01)
    etas: _nonempty(NonNegative)
    noise_draws: Annotated[int, Field(ge=2)]
    perturbation_lr: Lr
    control_sigmas: _nonempty(PositiveFloat) = [1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1]
    iteration_steps: _nonempty(Annotated[int, Field(ge=1, le=10_000)]) = [1, 10, 100]
    iteration_depths: _nonempty(Depth) = [4, 8, 12]
    iteration_etas: _nonempty(NonNegative) = [0.0, 1e-3, 1e-1, 1.0]
    iteration_draws: Annotated[int, Field(ge=2)] = 10
    assumption_widths: _nonempty(Width)
    assumption_depths: _nonempty(Depth)
    assumption_stages: _nonempty(Fraction01)
    backprop_depths: _nonempty(Depth)
    precisions: _nonempty(Precision)
    precision_depths: _nonempty(Depth)
    precision_construction_depths: Optional[_nonempty(Annotated[int, Field(ge=1, le=24)])] = None
    precision_deltas: _nonempty(Delta)
    precision_seeds: Positive
    precision_construction_seeds: Positive
    precision_construction_train: TrainSettings
    precision_construction_adam: Optional[TrainSettings] = None
    precision_train: TrainSettings


_ALLOWED = {
    "int_type": "an integer", "float_type": "a number", "string_type": "a string", "list_type": "a list",
    "bool_type": "true or false", "model_type": "a table", "dict_type": "a table",
    "extra_forbidden": "only the known keys (pieces study --print-config lists them)",
    "missing": "a value (the key is required)", "too_short": "a non-empty list",
    "literal_error": None, "finite_number": "a finite number", "value_error": None,
}


def _path(loc):
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in str(part) or str(part).startswith("constrained-") or part in ("float", "int", "str"):
            continue  # a branch of a union or a validator, not a key
        else:
            out += ("." if out else "") + str(part)
    return out


def _describe(err):
    t = err["type"]
    ctx = err.get("ctx") or {}
    if t in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[t]
        bound = next(iter(ctx.values()), "")
        kind = "a number" if isinstance(bound, float) else "an integer"
        return f"{kind} {op} {bound:g}" if isinstance(bound, float) else f"{kind} {op} {bound}"
    if t == "literal_error":
        return f"one of {ctx.get('expected', '')}"
    if t == "value_error":
        return str(ctx.get("error", err["msg"])).replace("Value error, ", "")
    return _ALLOWED.get(t) or err["msg"]


def validate_settings(settings):
    """The settings checked against :class:`StudySettings`, as plain data (dicts and
    lists, defaults filled in). Raises :class:`SettingsError` (one line) on the first
    bad value."""
    if not isinstance(settings, dict):
        raise SettingsError(f"settings: expected a table of keys, got {type(settings).__name__}")
    try:
        model = StudySettings.model_validate(settings)
    except ValidationError as exc:
        errs = exc.errors(include_url=False)
        # a union reports one error per branch: name the key once, with every branch allowed
        first = errs[0]
        path = _path(first["loc"])
        same = [e for e in errs if _path(e["loc"]) == path]
        allowed = " or ".join(dict.fromkeys(_describe(e) for e in same))
        got = first.get("input")
        shown = repr(got) if not isinstance(got, (dict, list)) or len(repr(got)) < 60 else type(got).__name__
        if first["type"] == "missing":
            raise SettingsError(f"settings: {path}: missing; allowed: {allowed}") from None
        if first["type"] == "value_error" and isinstance(got, dict):
            raise SettingsError(f"settings: {path}: {_describe(first)}") from None
        raise SettingsError(f"settings: {path}: got {shown}; allowed: {allowed}") from None
    return model.model_dump(mode="python", exclude_unset=False)


def to_toml(settings):
    """The settings as TOML text (scalars and lists first, then one table per dict)."""

    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        raise TypeError(type(v).__name__)

    flat = [f"{k} = {val(v)}" for k, v in settings.items() if not isinstance(v, dict) and v is not None]
    tables = []
    for k, v in settings.items():
        if isinstance(v, dict):
            tables.append(f"\n[{k}]")
            tables += [f"{kk} = {val(vv)}" for kk, vv in v.items() if vv is not None]
    return "\n".join(flat + tables) + "\n"
