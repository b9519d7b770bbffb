"""One generic registry, reused for tasks, suites, trunks, vision towers, heads and metrics.

Usage::

    KINDS: Registry[type[TaskKind]] = Registry("kind")

    @KINDS.register("classification")
    class Classification(TaskKind): ...

    TASKS.add(TaskSpec(name="mnli", ...), "mnli", "multinli")

Objects are registered directly (:meth:`Registry.add`) or with the decorator, which stores the decorated
class or function as it is and returns it unchanged; :meth:`Registry.get` returns what was stored - the
caller instantiates or calls it. Duplicate names (or aliases) are an error; an unknown name raises
:class:`UnknownNameError` with close suggestions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from mmxfer.errors import UnknownNameError, suggest

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def add(self, obj: T, name: str, *aliases: str) -> T:
        for key in (name, *aliases):
            if key in self._items or key in self._aliases:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
        self._items[name] = obj
        for alias in aliases:
            self._aliases[alias] = name
        return obj

    def register(self, name: str, *aliases: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            return self.add(obj, name, *aliases)

        return decorator

    def canonical(self, name: str) -> str:
        """The registered name for ``name`` or one of its aliases."""
        if name in self._items:
            return name
        if name in self._aliases:
            return self._aliases[name]
        lowered = name.lower()
        if lowered != name and (lowered in self._items or lowered in self._aliases):
            return self.canonical(lowered)
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}{suggest(name, self.all_names())}; "
            f"run `mmxfer ls {self.kind}s` for the list"
        )

    def get(self, name: str) -> T:
        return self._items[self.canonical(name)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._items or name in self._aliases)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        return sorted(self._items)

    def all_names(self) -> list[str]:
        return sorted([*self._items, *self._aliases])

    def aliases_of(self, name: str) -> list[str]:
        canonical = self.canonical(name)
        return sorted(a for a, target in self._aliases.items() if target == canonical)

    def items(self) -> list[tuple[str, T]]:
        return [(name, self._items[name]) for name in self.names()]
