"""A small name -> constructor registry with loud errors and rebuildable build specs."""

from __future__ import annotations

from typing import Any, Callable, Dict, List


class Registry:
    """Maps short names to constructors.

    ``build(name, **kwargs)`` constructs the object and records ``{"name": ..., "kwargs": ...}``
    on it as ``build_spec``, so a checkpoint can store how to rebuild exactly the same object.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._constructors: Dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorator(constructor: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._constructors:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._constructors[name] = constructor
            return constructor

        return decorator

    def names(self) -> List[str]:
        return sorted(self._constructors)

    def get(self, name: str) -> Callable[..., Any]:
        if name not in self._constructors:
            raise ValueError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._constructors[name]

    def build(self, name: str, **kwargs: Any) -> Any:
        obj = self.get(name)(**kwargs)
        obj.build_spec = {"name": name, "kwargs": dict(kwargs)}
        return obj

    def __contains__(self, name: str) -> bool:
        return name in self._constructors
