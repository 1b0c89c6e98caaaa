"""MkDocs hook: the options page's table, generated at build time from the plugin's own option definitions.

Every ``pytest_addoption`` of the package's pytest entry points (``pytest11`` in pyproject.toml) runs on a
fresh ``pytest.Parser``; the page's ``<!-- options-table -->`` becomes a table of each option, its ini key,
the ini default and the help text. So the manual has no hand-kept copy of the option list to go stale.

An option and an ini key belong together by name: ``--dummy-seed``, ``--real-weights`` and ``--dummy-weights`` read
``dummyweights_seed``, ``dummyweights_real_weights`` and ``dummyweights_dummy_weights``; an ini key no option claims
gets a row of its own.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any

import pytest

DISTRIBUTION = "pytest-dummyweights"
GROUP = "dummyweights"
PLACEHOLDER = "<!-- options-table -->"


def plugin_parser() -> pytest.Parser:
    parser = pytest.Parser(_ispytest=True)
    for entry_point in importlib.metadata.distribution(DISTRIBUTION).entry_points.select(group="pytest11"):
        plugin = importlib.import_module(entry_point.value)
        for module in (plugin, *map(importlib.import_module, getattr(plugin, "pytest_plugins", ()))):
            if hasattr(module, "pytest_addoption"):  # the plugins it registers (pytest_plugins) add theirs
                module.pytest_addoption(parser)
    return parser


def ini_key_of(option: str, ini: dict[str, Any]) -> str:
    """``--dummy-seed`` -> ``dummyweights_seed``; ``--dummy-weights`` -> ``dummyweights_dummy_weights`` (its whole name)."""
    whole = "dummyweights_" + option.removeprefix("--").replace("-", "_")
    return whole if whole in ini else "dummyweights_" + option.removeprefix("--").removeprefix("dummy-").replace("-", "_")


def usage(names: list[str], attrs: dict[str, Any]) -> str:
    """How ``pytest --help`` spells the option's value: its choices, its metavar, else none for a flag."""
    if attrs.get("nargs") == 0 or attrs.get("action") in ("store_true", "store_false"):  # pytest 9 and pytest 8 say it so
        return names[0]
    if attrs.get("choices"):
        return f"{names[0]} {{{','.join(attrs['choices'])}}}"
    return f"{names[0]} {attrs.get('metavar') or names[0].lstrip('-').replace('-', '_').upper()}"


def cell(text: object) -> str:
    return str(text).replace("%%", "%").replace("|", "\\|").replace("\n", " ")


def shown_default(default: object) -> str:
    if default in ("", None):
        return "unset"
    return str(default).lower() if isinstance(default, bool) else str(default)


def options_table() -> str:
    parser = plugin_parser()
    ini = parser._inidict  # no public accessor: name -> (help, type, default)
    rows = []
    claimed = set()
    for option in parser.getgroup(GROUP).options:
        names, attrs = list(option.names()), option.attrs()
        key = ini_key_of(names[0], ini)
        if key in ini:
            claimed.add(key)
            rows.append((f"`{usage(names, attrs)}`", f"`{key}`", f"`{shown_default(ini[key][2])}`", attrs.get("help", "")))
        else:
            rows.append((f"`{usage(names, attrs)}`", "", "", attrs.get("help", "")))
    for key, (text, _, default) in ini.items():
        if key.startswith("dummyweights_") and key not in claimed:
            rows.append(("", f"`{key}`", f"`{shown_default(default)}`", text))
    lines = ["| option | ini key | ini default | meaning |", "| --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if PLACEHOLDER not in markdown:
        return markdown
    return markdown.replace(PLACEHOLDER, options_table())
