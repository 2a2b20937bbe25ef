"""The root command group of `piop`: on/off flags shown as flags in `--help`.

Typer's rich help prints a type column for every option, flags included, so `--json`,
`--quiet` and even `--help` read `--json <bool>`, as if they took a value. A flag takes
none: `PlainFlagsGroup` blanks the type of every flag (an option with `is_flag`, the
built-in `--help` and the completion options too) of itself and of every command and
sub-group below it, before any help is printed. Parsing is untouched.
"""

from __future__ import annotations

from typer.core import TyperGroup


def plain_flags(command, ctx) -> None:
    """Blank the shown type of every flag of `command` and, for a group, of every command below."""
    for param in command.get_params(ctx):
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    for name in getattr(command, "commands", {}) or {}:
        plain_flags(command.commands[name], ctx)


class PlainFlagsGroup(TyperGroup):
    """A `TyperGroup` whose help, and its sub-commands' help, shows flags without a type."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params

    def get_command(self, ctx, cmd_name: str):
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            plain_flags(command, ctx)
        return command
