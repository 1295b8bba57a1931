"""The shipped presets (`relm/presets/*.yaml`) and the strict loader that turns any preset file into a `Preset`.

`load_preset(name_or_path, overrides)` applies dotted overrides (`{"train.max_steps": 5}`) and
rejects unknown keys, values of the wrong type, non-positive sizes and empty prompts, each as one
error naming the file and the key. `help_text()` is `relm bench --help-preset`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from relm.config import Preset, field_default
from relm.config_history import CHOICES
from relm.docstrings import attribute_docs
from relm.errors import RelmError
from relm.registry import Registry

REQUIRED_PROMPTS = ("system", "instruction", "ser_system", "ser_instruction", "ser_instruction_text")


def _section_type(cls: type, name: str) -> type | None:
    hint = typing.get_type_hints(cls)[name]
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def preset_from_dict(data: dict, where: str, cls: type = Preset) -> Any:
    """Build a (nested) config dataclass from a mapping; unknown keys are an error naming `where`."""
    if not isinstance(data, dict):
        raise RelmError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise RelmError(f"{where}: unknown key(s) {unknown}; known: {sorted(fields)}")
    kwargs = {}
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        section = _section_type(cls, name)
        if section is None and not _type_ok(value, hints[name]):
            raise RelmError(f"{where}.{name}: expected {_type_name(hints[name])}, got {value!r}")
        kwargs[name] = preset_from_dict(value, f"{where}.{name}", section) if section else value
    return cls(**kwargs)


def _type_ok(value: object, hint: Any) -> bool:
    """Does a YAML value fit a field's annotation (int, float, bool, str, list[...], dict, unions, Any)?"""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in args)
    if hint is type(None):
        return value is None
    if origin is list or hint is list:
        return isinstance(value, list) and all(_type_ok(v, args[0]) for v in value) if args else isinstance(value, list)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


# Fields that must be positive (a negative or zero value would silently train something else).
POSITIVE = {
    "train": ("lr", "batch_size", "accumulate", "epochs", "max_passes"),
    "generate": ("max_new_tokens", "ser_max_new_tokens", "batch_size"),
    "teacher": ("max_new_tokens", "batch_size"),
    "lora": ("r", "alpha"),
    "emotion_encoder": ("dim", "epochs"),
}


# Lightning's precision names relm accepts, plus auto (bf16 only where this machine runs it natively).
PRECISIONS = ("auto", "32-true", "bf16-mixed", "bf16-true", "16-mixed", "16-true", "64-true")


def _check(preset: Preset, where: str) -> Preset:
    for section, names in POSITIVE.items():
        for name in names:
            if getattr(getattr(preset, section), name) <= 0:
                raise RelmError(
                    f"{where}: {section}.{name} must be positive, got {getattr(getattr(preset, section), name)}"
                )
    if preset.scorer_seeds < 1:
        raise RelmError(f"{where}: scorer_seeds must be at least 1, got {preset.scorer_seeds}")
    if preset.train.max_steps != -1 and preset.train.max_steps <= 0:
        raise RelmError(
            f"{where}: train.max_steps must be positive (or -1 to count epochs), got {preset.train.max_steps}"
        )
    if preset.train.precision not in PRECISIONS:
        raise RelmError(f"{where}: train.precision must be one of {list(PRECISIONS)}, got {preset.train.precision!r}")
    if not preset.scorer.strip() or "," in preset.scorer:
        raise RelmError(f"{where}: scorer must name one scorer kind (`relm ls scorers`), got {preset.scorer!r}")
    if preset.scorer_cv_folds < 0 or preset.scorer_cv_folds == 1:
        raise RelmError(f"{where}: scorer_cv_folds must be 0 (none) or at least 2, got {preset.scorer_cv_folds}")
    empty = [k for k in REQUIRED_PROMPTS if not getattr(preset.prompts, k).strip()]
    if empty:
        raise RelmError(f"{where}: prompts.{empty[0]} is empty; a preset states every prompt it uses")
    for (section, name), allowed in CHOICES.items():
        value = getattr(getattr(preset, section), name)
        if value not in allowed:
            raise RelmError(f"{where}: {section}.{name} must be one of {list(allowed)}, got {value!r}")
    heads = {"ser_head", "avd_head"}
    if set(preset.train.freeze) - heads:
        raise RelmError(f"{where}: train.freeze may name {sorted(heads)}, got {preset.train.freeze}")
    if preset.train.val_per_epoch < 1 or preset.train.val_every_steps < 0:
        raise RelmError(f"{where}: train.val_per_epoch must be at least 1 and train.val_every_steps at least 0")
    if preset.train.loss_group_size < 0 or preset.train.pad_to_multiple < 0:
        raise RelmError(f"{where}: train.loss_group_size and train.pad_to_multiple must be at least 0")
    if preset.train.compile_layers and not preset.train.lean_lora:
        # peft's forward with its output hooks gave NaN losses when compiled (torch 2.11, CPU); the lean one does not
        raise RelmError(f"{where}: train.compile_layers needs train.lean_lora")
    t = preset.teacher
    if t.prompt == "template" and not t.templates:
        raise RelmError(f"{where}: teacher.prompt is template but teacher.templates is empty")
    if t.prompt != "template" and not (t.system.strip() and "{text}" in t.user):
        raise RelmError(f"{where}: teacher.system must be set and teacher.user must contain {{text}}")
    return preset


# ---- shipped presets ----------------------------------------------------------------------------

PRESETS: Registry[Path] = Registry("preset")
for _file in sorted(resources.files(__name__).iterdir(), key=lambda f: f.name):
    if _file.name.endswith(".yaml"):
        PRESETS.register(_file.name[: -len(".yaml")], Path(str(_file)))


def preset_path(name_or_path: str) -> Path:
    """A shipped preset's file by name, or a user's own YAML file by path."""
    if name_or_path.endswith((".yaml", ".yml")):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise RelmError(f"{path}: preset file not found")
        return path
    return PRESETS.get(name_or_path)


def _set_dotted(data: dict, key: str, value) -> None:
    node = data
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise RelmError(f"--set {key}: {p!r} is not a section")
    node[parts[-1]] = value


def _merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _read(path: Path, seen: tuple[str, ...] = ()) -> dict:
    """A preset file's mapping; `extends: NAME` lays it over the shipped (or named file's) preset NAME."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise RelmError(f"{path}: invalid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise RelmError(f"{path}: a preset is a mapping of sections, got {type(data).__name__}")
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str) or base in seen:
        raise RelmError(f"{path}: extends must name one other preset, without cycles; got {base!r}")
    return _merged(_read(preset_path(base), (*seen, base)), data)


def load_preset(name_or_path: str, overrides: dict | None = None) -> Preset:
    path = preset_path(name_or_path)
    data = _read(path, (name_or_path,))
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    return _check(preset_from_dict(data, path.name), path.name)


def help_text(cls: type = Preset, prefix: str = "") -> str:
    """Every preset field with its default and docstring, as `relm bench --help-preset` prints it."""
    lines = []
    docs = attribute_docs(cls)
    for f in dataclasses.fields(cls):
        section = _section_type(cls, f.name)
        if section:
            lines.append(f"{prefix}{f.name}:")
            lines.append(help_text(section, prefix + "  "))
            continue
        default = field_default(cls, f.name)
        text = docs.get(f.name, "")
        lines.append(f"{prefix}{f.name} (default {default!r}): {text}")
    return "\n".join(lines)
