"""Commands imported only when they run: :class:`LazyCommand`.

``physkan --help`` lists a lazy command by its name and one-line help without importing
its module, so heavy modules (torch, Lightning, a plugin's implementation) stay out of
every other command's start-up. physkan attaches its own heavy commands this way, and a
plugin may do the same in its ``physkan_register_commands`` hook::

    from physkan.plugins import LazyCommand, hookimpl

    @hookimpl
    def physkan_register_commands(cli):
        cli.add_command(LazyCommand("orbit", "my_plugin.cli:orbit_command",
                                    "Fit an orbit (my-plugin)."))

A plugin that adds a real click command keeps working; it is just imported earlier.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

__all__ = ["LazyCommand"]


class LazyCommand(click.Command):
    """A command (or group) imported from ``target`` (``"module:attribute"``) when it runs.

    Args:
        name: the command's name on the command line.
        target: ``"package.module:attribute"`` of the real :class:`click.Command`.
        short_help: the one line ``--help`` of the parent group shows.
    """

    def __init__(self, name: str, target: str, short_help: str) -> None:
        super().__init__(name, short_help=short_help, help=short_help, add_help_option=False)
        if target.count(":") != 1:
            raise ValueError(f"LazyCommand {name!r}: target must be 'module:attribute', got {target!r}")
        self.target = target

    def load(self) -> click.Command:
        """The real command, ``module:attribute`` of :attr:`target`.

        Raises:
            click.ClickException: the module or attribute is missing, or not a command.
        """
        module, attr = self.target.split(":")
        try:
            command = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise click.ClickException(f"command {self.name!r}: cannot load {self.target} ({exc})") from None
        if not isinstance(command, click.Command):
            raise click.ClickException(f"command {self.name!r}: {self.target} is not a click command")
        return command

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:  # fmt: skip
        """The real command's context: click then invokes the real command."""
        return self.load().make_context(info_name, args, parent=parent, **extra)
