"""One small registry for everything pluggable: systems, datasets, scorers, models, emotion encoders, presets.

A `Registry` maps a name to an object, or to a `"module:attribute"` string that is imported
on first use (so `relm ls` and the CLI never import torch for a scorer kind nobody asked for).
An unknown name is a `RelmError` that lists the known names and suggests the closest one.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from relm.errors import RelmError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> object, in registration order, with did-you-mean errors."""

    def __init__(self, what: str) -> None:
        self.what = what  # "system", "dataset", ...: used in error messages
        self._entries: dict[str, T | str] = {}

    def register(self, name: str, obj: T | None = None, *, lazy: str | None = None) -> Callable[[T], T] | T:
        """`reg.register(name, obj)`, `@reg.register(name)`, or `reg.register(name, lazy="pkg.mod:attr")`."""
        if name in self._entries:
            raise RelmError(f"{self.what} {name!r} is registered twice")
        if lazy is not None:
            self._entries[name] = lazy
            return lazy  # type: ignore[return-value]
        if obj is not None:
            self._entries[name] = obj
            return obj

        def decorate(target: T) -> T:
            self._entries[name] = target
            return target

        return decorate

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise RelmError(self.unknown_message(name))
        entry = self._entries[name]
        if isinstance(entry, str):  # a lazy "module:attribute" reference
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module), attr)
            self._entries[name] = entry
        return entry  # type: ignore[return-value]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._entries), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.what} {name!r}{hint} (known: {', '.join(self._entries)})"

    def target(self, name: str) -> str:
        """Where `name`'s object lives (`module:attribute`), without importing a lazy entry."""
        entry = self._entries[name] if name in self._entries else self.get(name)
        if isinstance(entry, str):
            return entry
        return f"{getattr(entry, '__module__', '?')}:{getattr(entry, '__qualname__', type(entry).__name__)}"

    def names(self) -> list[str]:
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return [(name, self.get(name)) for name in self._entries]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
