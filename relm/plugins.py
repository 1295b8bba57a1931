"""Systems, metrics and corpora from other packages, registered through Python entry points (no fork of relm).

A package declares in its `pyproject.toml`:

    [project.entry-points."relm.systems"]
    my-systems = "my_pkg.relm_plugin:register_systems"

Each entry point names a function (or a module) that relm loads once, when the registry it extends is first
imported (`relm.systems`: `relm.models.system_table`; `relm.metrics`: `relm.metrics.table`; `relm.corpora`:
`relm.data.corpora`). The function registers with `SYSTEMS.register`, `register_metric` or `DATASETS.register`
exactly as relm's own entries do. A plugin that fails to load is one error line naming it. `docs/extending.md`.
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoints, SelectableGroups, entry_points

from relm.errors import RelmError

GROUPS = ("relm.systems", "relm.metrics", "relm.corpora")
LOADED: dict[str, list[str]] = {}  # group -> "name = module:attribute" of each plugin loaded


@functools.cache
def _installed() -> EntryPoints | SelectableGroups:  # Python 3.11 returns SelectableGroups
    """Every installed entry point, read once per process (each registry's import selects its group)."""
    return entry_points()


def load_plugins(group: str) -> list[str]:
    """Load every entry point of `group` (calling it when it is a function); returns what was loaded."""
    if group not in GROUPS:
        raise RelmError(f"unknown plugin group {group!r} (known: {', '.join(GROUPS)})")
    loaded = []
    for ep in sorted(_installed().select(group=group), key=lambda ep: ep.name):
        try:
            target = ep.load()
            if callable(target):
                target()
        except RelmError as exc:
            raise RelmError(f"plugin {ep.name!r} ({ep.value}, group {group}): {exc}") from None
        except Exception as exc:  # a third party's bug: one line, not a traceback from inside relm
            raise RelmError(
                f"plugin {ep.name!r} ({ep.value}, group {group}) failed: {type(exc).__name__}: {exc}"
            ) from None
        loaded.append(f"{ep.name} = {ep.value}")
    LOADED[group] = loaded
    return loaded
