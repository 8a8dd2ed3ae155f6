"""The dependency direction of docs/architecture.md, read from the import graph (the source
is parsed, not imported): webapp -> tasks -> runner_image, never back, and the shipped
packages never import the dev tooling except the CLI's `dev`/`demo` commands, lazily."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "runner_image": {"tasks", "webapp", "cloudemy_dev", "celeryconfig"},
    "tasks": {"webapp", "cloudemy_dev"},
    "webapp": {"cloudemy_dev"},
}
# The one place a shipped package reaches for the dev tooling: `cloudemy dev` and
# `cloudemy demo` load it when they run, and say which extra to install when it is missing.
ALLOWED = {("webapp/cli.py", "cloudemy_dev")}


def imported_packages(source: Path) -> set[str]:
    tree = ast.parse(source.read_text(), filename=str(source))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def modules_of(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_go_one_way(package: str) -> None:
    offending = []
    for module in modules_of(package):
        relative = str(module.relative_to(REPO))
        for target in imported_packages(module) & FORBIDDEN[package]:
            if (relative, target) not in ALLOWED:
                offending.append(f"{relative} imports {target}")
    assert not offending, "\n".join(offending)


def test_celeryconfig_reads_only_the_scheduler_side() -> None:
    assert imported_packages(REPO / "celeryconfig.py") <= {"tasks"}


def test_the_checker_sees_a_backward_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("import os\nfrom webapp.models import User\nimport tasks.worker as w\n")
    assert imported_packages(module) == {"os", "webapp", "tasks"}
