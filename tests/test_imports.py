"""The house's shape: every module of inbox/ imports, and no import goes round in a circle.

import-linter (`make test` runs `lint-imports`) keeps the layers of docs/architecture.md;
these tests are what a newcomer trips over first when that shape breaks: a module that
cannot be imported, or two modules that each need the other before they are done.
"""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import grimp

import inbox

ROOT = Path(__file__).resolve().parents[1]


def inbox_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(inbox.__path__, "inbox."))


def test_it_imports_every_module_of_inbox_in_a_fresh_interpreter() -> None:
    # A fresh interpreter: in this one, everything is imported already. Django is set up
    # first (models need the app registry); each module not imported by then is imported
    # for the first time, on its own.
    script = (
        "import importlib, sys, django\n"
        "django.setup()\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {exc!r}')\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_ENV": "test"}
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script, *inbox_modules()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_has_no_import_cycle() -> None:
    # Every import, wherever it stands (inside a function, under TYPE_CHECKING), counts: an
    # import that closes a circle is a cycle waiting for the wrong import order.
    graph = grimp.build_graph("inbox")
    cycles = [
        (importer, imported, chain)
        for importer in sorted(graph.modules)
        for imported in sorted(graph.find_modules_directly_imported_by(importer))
        if (chain := graph.find_shortest_chain(importer=imported, imported=importer))
    ]
    assert not cycles, "\n".join(f"{a} -> {b}, and back: {' -> '.join(chain)}" for a, b, chain in cycles)


def test_it_names_every_module_in_the_architecture_document() -> None:
    # docs/architecture.md names every module of inbox/ by its path (a package by its
    # directory), so a newcomer finds each one there. Migrations are named as a whole.
    text = (ROOT / "docs" / "architecture.md").read_text()
    packages = {m.name for m in pkgutil.walk_packages(inbox.__path__, "inbox.") if m.ispkg}
    paths = [
        name.replace(".", "/") + ("/" if name in packages else ".py")
        for name in inbox_modules()
        if not name.startswith("inbox.migrations.")
    ]
    missing = [path for path in paths if f"`{path}`" not in text]
    assert not missing, f"not named in docs/architecture.md: {missing}"
