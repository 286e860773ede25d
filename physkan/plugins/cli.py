"""``physkan plugins`` and the attachment of plugin-provided commands.

``physkan plugins`` lists the installed plugins from their entry-point metadata (nothing
imported, well under a second); ``--load`` imports them, registers their contributions
and lists what each contributed, what was refused and why, and what failed.

:func:`ensure_plugin_commands` attaches the plugins' commands to a group once; the root
``physkan`` group calls it only when it needs them (``--help`` lists the commands, or a
command name is not a built-in one), so ``physkan discover`` or ``physkan problems`` never
run a plugin's command hook. It never raises, so a broken plugin (or plugin system) leaves
the rest of the CLI usable.
"""

from __future__ import annotations

import json

import click

__all__ = ["attach_plugin_commands", "ensure_plugin_commands", "plugins_command"]


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.option("--load", is_flag=True,
              help="Import the plugins and register them: list contributions (commands included), "
                   "refused contributions with the reason, and failed plugins with their error.")  # fmt: skip
def plugins_command(as_json: bool, load: bool) -> None:
    """List installed plugins; --load imports them and checks what they contribute."""
    if not load:
        _print_installed(as_json)
        return
    from .manager import get_plugin_manager

    ctx = click.get_current_context()
    root = ctx.find_root().command
    if isinstance(root, click.Group):
        ensure_plugin_commands(root)
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


def _print_installed(as_json: bool) -> None:
    """The light listing: entry-point metadata only (:func:`~.listing.installed_plugins`)."""
    from .listing import installed_plugins

    rows = installed_plugins()
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        where = f"  {row['entry_point']}" if row["entry_point"] else ""
        click.echo(f"{row['name']} {row['version']} [{row['status']}]{where}")
        if row["error"]:
            click.echo(f"  error: {row['error']}")
        for warning in row["warnings"]:
            click.echo(f"  warning: {warning}")
    click.echo("(physkan plugins --load: import them and list contributions, refusals and errors)")


def ensure_plugin_commands(cli: click.Group) -> None:
    """Add every plugin's commands to ``cli``, once per plugin manager (never raises)."""
    try:
        from .manager import get_plugin_manager

        get_plugin_manager().register_commands(cli)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the host CLI must keep working
        click.echo(f"warning: plugin commands not loaded: {type(exc).__name__}: {exc}", err=True)


def attach_plugin_commands(cli: click.Group) -> None:
    """Add ``physkan plugins`` and every plugin's commands to ``cli`` now (never raises)."""
    cli.add_command(plugins_command, "plugins")
    ensure_plugin_commands(cli)
