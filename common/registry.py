"""A name -> factory registry: the plug-in point for schedulers, forecasters and workloads.

Kept small, like simpy's and optuna's plug-ins: register a factory under a name, build
it by name with keyword parameters, list the names for errors. Two additions:

- **lazy entries**: `register_lazy("lstm", "forecasters.lstm:LSTMForecaster")` records a
  `"module:attr"` string that is imported only when the name is first used, so listing
  or importing a room does not load torch;
- **entry points**: third-party packages add names through the Python entry-point group
  given to the registry (e.g. `piop.schedulers`), so a user adds a policy without
  editing piop. Entry points are read once, on the first lookup that needs them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownName(KeyError):
    """Raised for a name nobody registered; its message lists the known names."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


def load_target(target: str) -> Any:
    """Import `"package.module:attr"` and return the attribute."""
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    def __init__(self, what: str, group: str | None = None):
        self.what = what
        self.group = group  # entry-point group third-party plug-ins register under
        self._factories: dict[str, Callable[..., T] | str] = {}
        self._plugins_loaded = group is None

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: register a class or factory under `name`."""

        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            existing = self._factories.get(name)
            if existing is not None and not _same(existing, factory):
                raise ValueError(f"{self.what} {name!r} registered twice")
            self._factories[name] = factory
            return factory

        return deco

    def register_lazy(self, name: str, target: str) -> None:
        """Register `name` as `"module:attr"`, imported on first use."""
        if name in self._factories:
            raise ValueError(f"{self.what} {name!r} registered twice")
        self._factories[name] = target

    def unregister(self, name: str) -> None:
        """Forget `name` (a test's temporary policy, say); unknown names are ignored."""
        self._factories.pop(name, None)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.group):
            if ep.name not in self._factories:
                self._factories[ep.name] = ep.value

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._factories)

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._factories

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._factories:
            self._load_plugins()
        try:
            entry = self._factories[name]
        except KeyError:
            raise UnknownName(f"unknown {self.what} {name!r}; known: {', '.join(self.names())}") from None
        if isinstance(entry, str):
            loaded = load_target(entry)
            # importing the module may have registered the real factory under the name
            current = self._factories.get(name)
            entry = current if current is not None and not isinstance(current, str) else loaded
            self._factories[name] = entry
        return entry

    def create(self, name: str, **params: Any) -> T:
        return self.get(name)(**params)


def _same(entry: Callable[..., Any] | str, factory: Callable[..., Any]) -> bool:
    """A lazy entry is replaced by the factory its module registers on import."""
    if isinstance(entry, str):
        return True
    return entry is factory
