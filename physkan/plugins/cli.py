"""``physkan plugins`` and the attachment of plugin-provided commands.

:func:`attach_plugin_commands` is called by :mod:`physkan.cli` at import time; it must
never raise, so a broken plugin (or plugin system) leaves the rest of the CLI usable.
"""

from __future__ import annotations

import json

import click

__all__ = ["attach_plugin_commands", "plugins_command"]


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def plugins_command(as_json: bool) -> None:
    """List plugins with version and accepted contributions (commands included), refused
    contributions with the reason, and failed plugins with their error."""
    from .manager import get_plugin_manager

    manager = get_plugin_manager()
    manager.apply()
    infos = manager.plugins()
    if as_json:
        click.echo(json.dumps([info.to_json() for info in infos]))
        return
    for info in infos:
        click.echo(f"{info.name} {info.version} [{info.status}]")
        if info.error:
            click.echo(f"  error: {info.error}")
        for kind, names in info.contributions.items():
            click.echo(f"  {kind}: {', '.join(names)}")
        for item in info.refused:
            click.echo(f"  refused {item['kind']} {item['name']!r}: {item['reason']}")
        for warning in info.warnings:
            click.echo(f"  warning: {warning}")


def attach_plugin_commands(cli: click.Group) -> None:
    """Add ``physkan plugins`` and every plugin's commands to ``cli`` (never raises)."""
    cli.add_command(plugins_command, "plugins")
    try:
        from .manager import get_plugin_manager

        get_plugin_manager().register_commands(cli)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the host CLI must keep working
        click.echo(f"warning: plugin commands not loaded: {type(exc).__name__}: {exc}", err=True)
