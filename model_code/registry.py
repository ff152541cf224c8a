"""The one registry mechanism: short names -> constructors, entries discovered from their package.

Every registry of the project (operators, processes, priors, networks, datasets, feature networks) is a
``Registry`` that names the package holding its entries. The first time the registry is asked about its
entries, it imports every module of that package (sorted by name), and each module registers what it
defines with ``@REGISTRY.register("name")``. So a new entry is one new file in its package: nothing else
imports it.

``build(name, **kwargs)`` constructs the object and records ``{"name": ..., "kwargs": ...}`` on it as
``build_spec``, so a checkpoint can store how to rebuild exactly the same object. Registered classes derive
from ``Registered``, whose ``name`` is the name the object was built under.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple


class Registered:
    """Mixin of every registered class: ``name``, the registry name of the object.

    That is the name it was built under (``build_spec``), else the name its class was registered under
    (an object constructed directly), else the class name (a class that is not registered).
    """

    registered_name: Optional[str] = None

    @property
    def name(self) -> str:
        spec = getattr(self, "build_spec", None)
        if spec is not None:
            return spec["name"]
        return self.registered_name or type(self).__name__


class Registry:
    """Maps short names to constructors that take keyword arguments.

    ``package``: the dotted name of the package whose modules register the entries (discovered on first
    use); None for a registry whose entries are all registered by the module that defines it.

    A constructor may declare keyword parameters that no configuration feeds, with their defaults
    kept, as a class (or function) attribute ``library_only = ("name", ...)``; ``register`` may
    attach other facts about an entry as metadata (e.g. a dataset's ``kind``).
    """

    def __init__(self, kind: str, package: Optional[str] = None):
        self.kind = kind
        self.package = package
        self._discovered = package is None
        self._constructors: Dict[str, Callable[..., Any]] = {}
        self._metadata: Dict[str, Dict[str, Any]] = {}

    def register(self, name: str, **metadata: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: register a constructor (a class, or a function returning the object) under ``name``."""

        def decorator(constructor: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._constructors:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._constructors[name] = constructor
            self._metadata[name] = dict(metadata)
            if inspect.isclass(constructor) and "registered_name" not in vars(constructor):
                constructor.registered_name = name
            return constructor

        return decorator

    def discover(self) -> None:
        """Import every module of ``package`` once (sorted by name): each registers its entries."""
        if self._discovered:
            return
        self._discovered = True  # before importing: a module may ask the registry while it is imported
        package = importlib.import_module(self.package)
        for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            importlib.import_module(f"{self.package}.{module.name}")

    def names(self) -> List[str]:
        self.discover()
        return sorted(self._constructors)

    def get(self, name: str) -> Callable[..., Any]:
        self.discover()
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
        """The object ``name``'s constructor returns for ``kwargs``, with its ``build_spec`` recorded."""
        obj = self.get(name)(**kwargs)
        obj.build_spec = {"name": name, "kwargs": dict(kwargs)}
        return obj

    def __contains__(self, name: str) -> bool:
        self.discover()
        return name in self._constructors
