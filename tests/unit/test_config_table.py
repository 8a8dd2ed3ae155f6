"""The README's configuration table against what the code reads: every variable of every
settings class (and every `cloudemy` option read from a variable) has a row, every row
names a variable something reads, and each row's default is the class's, so neither side
can drift from the other."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Any

import click
import pytest

import cloudemy_dev.settings
import runner_image.settings
import tasks.settings
import webapp.settings
from runner_image.settings import EnvSettings, RunnerSettings
from tasks.launchers.local import LocalLauncher
from tasks.settings import SchedulerSettings
from webapp.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"
SETTINGS_MODULES = {
    module.__name__
    for module in (runner_image.settings, tasks.settings, webapp.settings, cloudemy_dev.settings)
}
VARIABLE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def settings_classes() -> list[type[EnvSettings]]:
    found: list[type[EnvSettings]] = []
    pending = [EnvSettings]
    while pending:
        for subclass in pending.pop().__subclasses__():
            pending.append(subclass)
            if subclass.__module__ in SETTINGS_MODULES and subclass not in found:
                found.append(subclass)
    return found


def fields_by_variable() -> dict[str, list[tuple[type[EnvSettings], str]]]:
    """Every variable a settings class reads, with the (class, field) pairs that read it."""
    fields: dict[str, list[tuple[type[EnvSettings], str]]] = {}
    for cls in settings_classes():
        for name in cls.model_fields:
            fields.setdefault(cls.variable(name), []).append((cls, name))
    return fields


def command_line_variables() -> set[str]:
    """Variables the `cloudemy` commands read through click (`envvar=`)."""
    found = set()
    for command in main.commands.values():
        for param in command.params:
            if isinstance(param, click.Option) and param.envvar:
                envvars = [param.envvar] if isinstance(param.envvar, str) else param.envvar
                found.update(envvars)
    return found


def readme_rows() -> list[tuple[list[str], str]]:
    """(variables, default cell) of each row of the README's configuration table."""
    text = README.read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        names = [name for name in re.findall(r"`([^`]+)`", cells[0]) if VARIABLE.match(name)]
        rows.append((names, cells[1]))
    return rows


def rendered(default: Any) -> str | None:
    """A default as the README writes it."""
    if default is None:
        return None
    if isinstance(default, Enum):
        return str(default.value)
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    if isinstance(default, tuple):
        return ",".join(default)
    return str(default)


def documented() -> dict[str, str]:
    """Variable -> its part of the default cell (`a`, `b` for two names, in order)."""
    parts: dict[str, str] = {}
    for names, cell in readme_rows():
        assert names, f"a configuration row names no variable: {cell}"
        defaults = [cell] if len(names) == 1 else cell.split(", ")
        assert len(defaults) == len(names), f"{names}: one default per variable, got {cell!r}"
        for name, default in zip(names, defaults, strict=True):
            assert name not in parts, f"{name} has two rows"
            parts[name] = default
    return parts


def test_the_catalogue_sees_every_component() -> None:
    """The checks below are only as good as this list: each component's settings are in it."""
    names = {cls.__name__ for cls in settings_classes()}
    assert {
        "RunnerSettings",
        "BrokerSettings",
        "SchedulerSettings",
        "FlowerSettings",
        "WebappSettings",
        "ServeSettings",
        "DevSettings",
    } <= names
    variables = set(fields_by_variable()) | command_line_variables()
    for issue_13 in (
        "LAUNCH_DEFER_SECONDS",
        "KUBE_REQUEST_TIMEOUT_SECONDS",
        "FLOWER_PORT",
        "FLOWER_ADDRESS",
        "KUBECONFIG",
        "CLOUDEMY_PASSWORD",
        "CLOUDEMY_DEMO_SEED",
    ):
        assert issue_13 in variables


def test_every_variable_read_has_a_row() -> None:
    read = set(fields_by_variable()) | command_line_variables()

    assert sorted(read - set(documented())) == []


def test_every_row_names_a_variable_that_is_read() -> None:
    read = set(fields_by_variable()) | command_line_variables()

    assert sorted(set(documented()) - read) == []


@pytest.mark.parametrize("variable", sorted(fields_by_variable()))
def test_the_documented_default_is_the_settings_default(variable: str) -> None:
    cell = documented()[variable]
    fields = [
        cls.model_fields[name]
        for cls, name in fields_by_variable()[variable]
        # What a runner must be told, the launcher tells it (next test), whatever the default.
        if not (cls is RunnerSettings and cls.model_fields[name].is_required())
    ] or [RunnerSettings.model_fields[variable.lower()]]
    if "required" in cell:
        assert any(info.is_required() for info in fields), f"{variable} is not required"
        return
    assert not any(info.is_required() for info in fields), f"{variable} is required: {cell!r}"
    defaults = {rendered(info.default) for info in fields}
    assert len(defaults) == 1, f"{variable} has different defaults: {defaults}"
    [default] = defaults
    if cell == "-":
        assert default is None, f"{variable}: the README says none, the code {default!r}"
        return
    shown = re.match(r"`([^`]*)`", cell)
    if shown is None:  # prose, e.g. "all five": what None means there
        assert default is None, f"{variable}: {cell!r} describes no default of {default!r}"
        return
    assert shown.group(1) == default


def test_the_launcher_tells_a_runner_everything_it_requires() -> None:
    settings = SchedulerSettings.from_env(
        {}, internal_result_token="t" * 32, redis_url="redis://redis:6379/0"
    )
    env = LocalLauncher(settings, redis_client=object()).runner_env("65a0000000000000000000aa")
    required = {
        RunnerSettings.variable(name)
        for name, info in RunnerSettings.model_fields.items()
        if info.is_required()
    }

    assert required <= set(env)


def test_the_demo_seed_row_says_it_is_dev_only_and_why() -> None:
    row = next(line for line in README.read_text().splitlines() if "`CLOUDEMY_DEMO_SEED`" in line)

    assert "dev only" in row
    assert "passwords" in row
