"""Console navigation. Each app registers the pages it really has in its AppConfig.ready()."""

from __future__ import annotations

from dataclasses import dataclass

from core.models import ROLE_RANK, Role


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    order: int
    min_role: str = Role.VIEWER
    section: str = "main"


_ITEMS: dict[str, NavItem] = {}


def register(
    label: str, url_name: str, *, order: int, min_role: str = Role.VIEWER, section: str = "main"
) -> None:
    _ITEMS[url_name] = NavItem(label, url_name, order, min_role, section)


def items_for(role: str) -> list[NavItem]:
    rank = ROLE_RANK[Role(role)]
    return sorted((i for i in _ITEMS.values() if ROLE_RANK[Role(i.min_role)] <= rank), key=lambda i: i.order)
