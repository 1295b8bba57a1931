"""Attribute docstrings (a string literal right after a field, as litgpt writes them) read from the source.

They document config dataclasses (`relm bench --help-preset`) and the results schema
(`docs/results-schema.md` is generated from `relm.results`), so each fact is written once.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from functools import cache


@cache
def attribute_fields(cls: type) -> dict[str, tuple[str, str]]:
    """{field name: (its annotation as written, the docstring under it or "")}, in source order."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    fields: dict[str, tuple[str, str]] = {}
    for k, node in enumerate(body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        after = body[k + 1] if k + 1 < len(body) else None
        doc = ""
        if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
            doc = " ".join(after.value.value.split())
        fields[node.target.id] = (ast.unparse(node.annotation), doc)
    return fields


def attribute_docs(cls: type) -> dict[str, str]:
    """{field name: the docstring written under it} for a class's annotated fields that have one."""
    return {name: doc for name, (_, doc) in attribute_fields(cls).items() if doc}
