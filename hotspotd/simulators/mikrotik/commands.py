"""The RouterOS menus the simulator answers over the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .api_server import CommandTrap, Result
from .firewall import NatTable
from .hotspot import Session
from .query import row_matches
from .setup import Menu, SetupMenus
from .wire import Command

NO_SUCH_COMMAND = "no such command"
NO_SUCH_PREFIX = "no such command prefix"
CATEGORY_MISSING = 0  # "missing item or command"
CATEGORY_ARGUMENT = 1  # "argument value failure"

_MENUS = ("/ip/hotspot/active", "/ip/hotspot/host", "/ip/firewall/nat", "/system/identity",
          "/system/resource", "/radius", "/radius/incoming", "/ip/hotspot",
          "/ip/hotspot/profile", "/ip/hotspot/walled-garden/ip", "/ip/dhcp-server/option")


class Router(Protocol):
    """What the menus need from the simulated router."""

    identity: str
    nat: NatTable
    setup: SetupMenus

    @property
    def coa_address(self) -> tuple[str, int]: ...

    def active_hosts(self) -> list[dict[str, str]]: ...
    def seen_hosts(self) -> list[dict[str, str]]: ...
    def resource(self) -> dict[str, str]: ...
    def remove_session(self, session_id: str, cause: str) -> Session | None: ...
    def login_host(self, *, user: str, password: str, mac: str, ip: str) -> Session: ...


def _print(rows: list[dict[str, str]], command: Command) -> Result:
    """`print` with `?` queries, `=.proplist=` and `=count-only=`."""
    selected = [row for row in rows if row_matches(command.queries, row)]
    if "count-only" in command.attributes:
        return Result(done={"ret": str(len(selected))})
    proplist = command.api_attributes.get(".proplist")
    if proplist:
        names = [name for name in proplist.split(",") if name]
        selected = [{n: row[n] for n in names if n in row} for row in selected]
    return Result(rows=selected)


def _require(command: Command, *names: str) -> list[str]:
    missing = [name for name in names if not command.attributes.get(name)]
    if missing:
        raise CommandTrap(f"missing value(s) of argument(s) {' '.join(missing)}",
                          CATEGORY_ARGUMENT)
    return [command.attributes[name] for name in names]


class RouterCommands:
    """Maps a command path to the function that answers it."""

    def __init__(self, router: Router) -> None:
        self._router = router
        self._commands: dict[str, Callable[[Command], Result]] = {
            "/ip/hotspot/active/print": lambda c: _print(router.active_hosts(), c),
            "/ip/hotspot/active/getall": lambda c: _print(router.active_hosts(), c),
            "/ip/hotspot/active/remove": self._remove,
            "/ip/hotspot/active/login": self._login,
            "/ip/hotspot/host/print": lambda c: _print(router.seen_hosts(), c),
            "/ip/firewall/nat/print": lambda c: _print(router.nat.rows(), c),
            "/ip/firewall/nat/getall": lambda c: _print(router.nat.rows(), c),
            "/ip/firewall/nat/add": lambda c: Result(done={"ret": router.nat.add(c.attributes)}),
            "/ip/firewall/nat/remove": lambda c: on_items(c, router.nat.remove),
            "/ip/firewall/nat/set": lambda c: on_items(
                c, lambda ids: router.nat.set(ids, _without_ids(c))),
            "/system/identity/print": lambda c: _print([{"name": router.identity}], c),
            "/system/resource/print": lambda c: _print([router.resource()], c),
            "/radius/incoming/print": lambda c: _print(
                router.setup.incoming_rows(router.coa_address[1]), c),
            "/radius/incoming/set": lambda c: _set_incoming(router.setup, c),
        }
        setup = router.setup
        for path, menu in (("/radius", setup.radius), ("/ip/hotspot", setup.servers),
                           ("/ip/hotspot/profile", setup.profiles),
                           ("/ip/hotspot/walled-garden/ip", setup.walled_garden),
                           ("/ip/dhcp-server/option", setup.dhcp_options)):
            self._commands |= _menu_commands(path, menu)

    def __call__(self, command: Command) -> Result:
        answer = self._commands.get(command.path)
        if answer is None:
            menu = command.path.rpartition("/")[0]
            message = NO_SUCH_COMMAND if menu in _MENUS else NO_SUCH_PREFIX
            raise CommandTrap(message, CATEGORY_MISSING)
        return answer(command)

    def _remove(self, command: Command) -> Result:
        ids = command.api_attributes.get(".id") or command.attributes.get("numbers")
        if not ids:
            raise CommandTrap("missing value(s) of argument(s) .id", CATEGORY_ARGUMENT)
        for session_id in ids.split(","):
            if self._router.remove_session(session_id, "Admin-Reset") is None:
                raise CommandTrap("no such item")
        return Result()

    def _login(self, command: Command) -> Result:
        user, ip = _require(command, "user", "ip")
        mac = command.attributes.get("mac-address", "")
        password = command.attributes.get("password", "")
        self._router.login_host(user=user, password=password, mac=mac, ip=ip)
        return Result()


def _menu_commands(path: str, menu: Menu) -> dict[str, Callable[[Command], Result]]:
    """`print`/`getall`/`add`/`set`/`remove` of one configuration menu."""
    return {
        f"{path}/print": lambda c: _print(menu.rows(), c),
        f"{path}/getall": lambda c: _print(menu.rows(), c),
        f"{path}/add": lambda c: Result(done={"ret": menu.add(c.attributes)}),
        f"{path}/set": lambda c: on_items(
            c, lambda ids: menu.set(ids, _without_ids(c))),
        f"{path}/remove": lambda c: on_items(c, menu.remove),
    }


def _set_incoming(setup: SetupMenus, command: Command) -> Result:
    setup.incoming.set(command.attributes)
    return Result()


def _without_ids(command: Command) -> dict[str, str]:
    return {name: value for name, value in command.attributes.items() if name != "numbers"}


def on_items(command: Command, action: Callable[[str], None]) -> Result:
    """`remove`/`set` on the items named by `.id` (or `numbers`)."""
    ids = command.api_attributes.get(".id") or command.attributes.get("numbers")
    if not ids:
        raise CommandTrap("missing value(s) of argument(s) .id", CATEGORY_ARGUMENT)
    action(ids)
    return Result()
