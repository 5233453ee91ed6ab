"""The README documents every setting and every command (issue 15): a new one cannot go undocumented."""

from __future__ import annotations

import re
from typing import Any

import typer

from alphaloom.cli import app
from alphaloom.ops.config_reference import render_readme
from alphaloom.settings import PROJECT_ROOT, all_variables

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def _commands(group: Any, prefix: str = "alphaloom") -> list[str]:
    names = []
    for name, command in sorted(group.commands.items()):
        if command.hidden:
            continue
        if hasattr(command, "commands"):
            names += _commands(command, f"{prefix} {name}")
        else:
            names.append(f"{prefix} {name}")
    return names


def test_the_settings_reference_is_the_generated_one() -> None:
    assert render_readme(README) == README, (
        "run `python -m alphaloom.ops.config_reference` to regenerate the README table"
    )
    for _, _, variable in all_variables():
        assert f"`{variable}`" in README, variable


def test_every_command_is_documented() -> None:
    commands = _commands(typer.main.get_command(app))
    assert "alphaloom keys remove" in commands and "alphaloom decide" in commands
    documented = README.replace("\\|", "|")
    missing = []
    for command in commands:
        *parents, leaf = command.split()
        # `alphaloom db start|stop|status` documents each of its alternatives
        pattern = re.escape(" ".join(parents)) + r" (?:[\w-]+\|)*" + re.escape(leaf) + r"(?![\w-])"
        if not re.search(pattern, documented):
            missing.append(command)
    assert not missing, f"commands missing from README.md: {missing}"
