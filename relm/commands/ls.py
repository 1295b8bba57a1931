"""`relm ls`: what can be named on the command line and in presets, from the registries."""

from __future__ import annotations

import argparse
import json

WHAT = ("systems", "datasets", "presets", "scorers", "models", "encoders", "metrics", "plugins")


def _rows(what: str) -> list[dict]:
    if what == "systems":
        from relm.models.system_table import SYSTEMS

        return [
            {
                "name": n,
                "role": s.role,
                "hears_speech": s.speech,
                "emotion_input": s.emotion_input,
                "avd_loss": s.avd_loss,
                "trains": s.trains,
                "default": s.in_default_sweep,
                "colour": s.colour,
                "description": s.description,
            }
            for n, s in SYSTEMS.items()
        ]
    if what == "datasets":
        from relm.data.corpora import DATASETS

        return [
            {
                "name": n,
                "protocols": ", ".join(d.adapter.protocols),
                "root": f"{d.default_root} or ${d.env_var}",
                "description": d.description,
            }
            for n, d in DATASETS.items()
        ]
    if what == "presets":
        from relm.presets import PRESETS

        return [
            {"name": n, "file": str(p), "description": p.read_text().splitlines()[0].lstrip("# ")}
            for n, p in PRESETS.items()
        ]
    if what == "scorers":
        from relm.scoring.empathy import SCORERS

        return [{"name": n, "implementation": SCORERS.target(n)} for n in SCORERS]
    if what == "models":
        from relm.models.sources import MODELS

        return [
            {
                "name": n,
                "kind": s.kind,
                "presets": ", ".join(s.presets),
                "hub_id": s.hub_id or "-",
                "licence": s.licence,
            }
            for n, s in MODELS.items()
        ]
    if what == "encoders":
        from relm.models.emotion_encoder import EMOTION_ENCODERS

        return [
            {"name": n, "stage0": s.trained_in_stage0, "description": s.description}
            for n, s in EMOTION_ENCODERS.items()
        ]
    if what == "plugins":
        import relm.data.corpora  # noqa: F401  # each registry loads its plugins when first imported
        import relm.metrics.table  # noqa: F401
        import relm.models.system_table  # noqa: F401
        from relm.plugins import GROUPS, LOADED

        found = [{"group": g, "plugin": p} for g in GROUPS for p in LOADED.get(g, [])]
        return found or [{"group": "-", "plugin": "none installed (docs/extending.md)"}]
    from relm.metrics.table import METRICS

    return [
        {
            "name": n,
            "family": m.family,
            "higher_is_better": m.higher_is_better,
            "primary_test": m.primary_test or "-",
            "gated": m.gated,
            "tolerance": m.tolerance if m.tolerance is not None else "-",
            "computed_by": "relm" if m.row is None else getattr(m.row, "__module__", "?"),
            "description": m.description,
        }
        for n, m in METRICS.items()
    ]


def cmd_ls(args: argparse.Namespace) -> int:
    """List the registered systems, datasets, presets, scorer kinds, models, emotion encoders, metrics or the
    plugins other packages registered them from."""
    rows = _rows(args.what)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols[:-1]}
    print("  ".join(c.ljust(widths.get(c, 0)) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths.get(c, 0)) for c in cols))
    return 0


def register(sub) -> None:
    p = sub.add_parser("ls", help=cmd_ls.__doc__, description=cmd_ls.__doc__)
    p.add_argument("what", choices=WHAT, help="what to list")
    p.add_argument("--json", action="store_true", help="print a JSON list of objects")
    p.set_defaults(func=cmd_ls)
