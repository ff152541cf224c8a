"""A small name -> constructor registry with loud errors and rebuildable build specs."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, List, Mapping, Tuple


class Registry:
    """Maps short names to constructors that take keyword arguments.

    ``build(name, **kwargs)`` constructs the object and records ``{"name": ..., "kwargs": ...}``
    on it as ``build_spec``, so a checkpoint can store how to rebuild exactly the same object.

    A constructor may declare keyword parameters that no configuration feeds, with their defaults
    kept, as a class (or function) attribute ``library_only = ("name", ...)``; ``register`` may
    attach other facts about an entry as metadata (e.g. a dataset's ``kind``).
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._constructors: Dict[str, Callable[..., Any]] = {}
        self._metadata: Dict[str, Dict[str, Any]] = {}

    def register(self, name: str, **metadata: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorator(constructor: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._constructors:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._constructors[name] = constructor
            self._metadata[name] = dict(metadata)
            return constructor

        return decorator

    def names(self) -> List[str]:
        return sorted(self._constructors)

    def get(self, name: str) -> Callable[..., Any]:
        if name not in self._constructors:
            raise ValueError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._constructors[name]

    def metadata(self, name: str) -> Mapping[str, Any]:
        """What ``register(name, **metadata)`` attached to the entry."""
        self.get(name)
        return self._metadata[name]

    def parameters(self, name: str) -> Dict[str, inspect.Parameter]:
        """The keyword parameters of ``name``'s constructor, by name, in declaration order."""
        keyword = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        signature = inspect.signature(self.get(name))
        return {key: p for key, p in signature.parameters.items() if p.kind in keyword}

    def library_only(self, name: str) -> Tuple[str, ...]:
        """The parameters ``name``'s constructor declares library-only (never fed from a configuration)."""
        return tuple(getattr(self.get(name), "library_only", ()))

    def build(self, name: str, **kwargs: Any) -> Any:
        obj = self.get(name)(**kwargs)
        obj.build_spec = {"name": name, "kwargs": dict(kwargs)}
        return obj

    def __contains__(self, name: str) -> bool:
        return name in self._constructors
