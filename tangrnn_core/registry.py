"""Discovery of architecture plugins through the entry-point group ``tangrnn.architectures``.

Built-in architectures are found exactly like third-party ones: the ``tangrnn`` distribution registers them in
its own ``pyproject.toml``. A plugin is imported only when it is used or listed, so a broken plugin never stops
the others from working; using it gives an error that names its entry point, module and distribution. Two
distributions that register one name are both refused under that name (neither silently wins).

Set ``TANGRNN_DISABLE_PLUGIN_AUTOLOAD=1`` to ignore every plugin that is not part of the ``tangrnn``
distribution itself (like pytest's ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from tangrnn_core.api import CAUSAL, INFILL, KNOWN_CAPABILITIES, SUPPORTED_PLUGIN_APIS, Architecture
from tangrnn_core.errors import PluginError

ENTRY_POINT_GROUP = "tangrnn.architectures"
DISABLE_AUTOLOAD_ENV = "TANGRNN_DISABLE_PLUGIN_AUTOLOAD"
BUILTIN_DISTRIBUTION = "tangrnn"


@dataclass(frozen=True)
class PluginSource:
    """Where an architecture comes from.

    Args:
        name: the name used in configs (``model.architecture``).
        target: ``module:attribute`` of the class.
        distribution: the installed distribution that registers it (``"(registered in code)"`` otherwise).
        version: that distribution's version.
    """

    name: str
    target: str
    distribution: str
    version: str

    @property
    def builtin(self) -> bool:
        return self.distribution == BUILTIN_DISTRIBUTION

    def describe(self) -> str:
        return f"{self.target} from {self.distribution} {self.version}".rstrip()


@dataclass(frozen=True)
class PluginStatus:
    """A plugin as ``tangrnn plugins`` reports it: its source, and its class or the reason it is unusable."""

    source: PluginSource
    cls: type[Architecture] | None
    problem: str | None


class ArchitectureRegistry:
    """Architectures by name: from entry points, or registered in code (tests, notebooks).

    Args:
        autoload: read the entry points of ``tangrnn.architectures`` on first use.
    """

    def __init__(self, autoload: bool = True) -> None:
        self._autoload = autoload
        self._loaded_entry_points = False
        self._sources: dict[str, list[PluginSource]] = {}
        self._entry_points: dict[PluginSource, EntryPoint] = {}
        self._classes: dict[PluginSource, type[Architecture]] = {}

    def register(self, name: str, cls: type[Architecture], distribution: str = "(registered in code)") -> None:
        """Registers a class under ``name``; refuses a name that is already taken."""
        self._discover()
        if name in self._sources:
            taken = self._sources[name][0]
            raise PluginError(
                f"architecture name '{name}' is already registered by {taken.describe()}; choose another name"
            )
        source = PluginSource(name, f"{cls.__module__}:{cls.__qualname__}", distribution, "")
        self._sources[name] = [source]
        self._classes[source] = check_architecture_class(cls, source)

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._sources)

    def get(self, name: str) -> type[Architecture]:
        """The class registered as ``name``.

        Raises:
            PluginError: unknown name (listing the available ones), a name two distributions claim, or a plugin
                that fails to import or breaks the API contract.
        """
        self._discover()
        sources = self._sources.get(name)
        if not sources:
            usable = [other for other in self.names() if len(self._sources[other]) == 1]
            available = ", ".join(usable) or "none"
            hint = ""
            if os.environ.get(DISABLE_AUTOLOAD_ENV):
                hint = f" ({DISABLE_AUTOLOAD_ENV} is set, so third-party plugins are off)"
            raise PluginError(
                f"unknown architecture '{name}'; available: {available}{hint}. "
                "Run `tangrnn plugins` to list them, or give a class path such as mypackage.MyNet"
            )
        if len(sources) > 1:
            both = " and ".join(source.describe() for source in sources)
            raise PluginError(
                f"architecture name '{name}' is registered twice, by {both}; uninstall one of these distributions, "
                "or name the class by its path instead (--model.architecture package.module.Class)"
            )
        return self._load(sources[0])

    def statuses(self) -> list[PluginStatus]:
        """Every registered plugin, loaded, with its class or the problem that makes it unusable."""
        self._discover()
        result = []
        for name in sorted(self._sources):
            for source in self._sources[name]:
                if len(self._sources[name]) > 1:
                    others = [s.distribution for s in self._sources[name] if s is not source]
                    result.append(PluginStatus(source, None, f"name also registered by {', '.join(others)}"))
                    continue
                try:
                    result.append(PluginStatus(source, self._load(source), None))
                except PluginError as error:
                    result.append(PluginStatus(source, None, str(error)))
        return result

    def _discover(self) -> None:
        if not self._autoload or self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        third_party_off = os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip() not in ("", "0")
        seen: set[tuple[str, str, str]] = set()
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            distribution = entry_point.dist.name if entry_point.dist is not None else "(unknown distribution)"
            version = entry_point.dist.version if entry_point.dist is not None else ""
            # An editable install can expose the same distribution twice on sys.path; that is no clash.
            key = (entry_point.name, entry_point.value, distribution)
            if key in seen:
                continue
            seen.add(key)
            source = PluginSource(entry_point.name, entry_point.value, distribution, version)
            if third_party_off and not source.builtin:
                continue
            self._sources.setdefault(entry_point.name, []).append(source)
            self._entry_points[source] = entry_point

    def _load(self, source: PluginSource) -> type[Architecture]:
        if source in self._classes:
            return self._classes[source]
        entry_point = self._entry_points[source]
        try:
            cls = entry_point.load()
        except Exception as error:  # a plugin's own bug must not take the host down
            raise PluginError(
                f"architecture plugin '{source.name}' ({source.describe()}) failed to import: "
                f"{type(error).__name__}: {error}. Fix or uninstall {source.distribution}"
            ) from error
        self._classes[source] = check_architecture_class(cls, source)
        return self._classes[source]


def check_architecture_class(cls: object, source: PluginSource) -> type[Architecture]:
    """Checks what can be checked without building the network: the base class and the API version."""
    if not (isinstance(cls, type) and issubclass(cls, Architecture)):
        raise PluginError(
            f"architecture plugin '{source.name}' ({source.describe()}) is not a subclass of "
            "tangrnn_core.api.Architecture; point its entry point at an Architecture class"
        )
    version = getattr(cls, "plugin_api", None)
    if version is None:
        raise PluginError(
            f"architecture plugin '{source.name}' ({source.describe()}) declares no plugin_api; "
            f"set `plugin_api = {max(SUPPORTED_PLUGIN_APIS)}` on the class"
        )
    if isinstance(version, bool) or not isinstance(version, int):
        raise PluginError(
            f"architecture plugin '{source.name}' ({source.describe()}) declares plugin_api = {version!r}, which "
            f"is no version number; set `plugin_api = {max(SUPPORTED_PLUGIN_APIS)}` (an int) on the class"
        )
    if version not in SUPPORTED_PLUGIN_APIS:
        supported = ", ".join(str(v) for v in sorted(SUPPORTED_PLUGIN_APIS))
        raise PluginError(
            f"architecture plugin '{source.name}' ({source.describe()}) needs plugin API {version}, but this "
            f"tangrnn supports {supported}; upgrade tangrnn or install a matching version of {source.distribution}"
        )
    capabilities = set(getattr(cls, "capabilities", ()))
    unknown = sorted(capabilities - KNOWN_CAPABILITIES)
    if unknown or not capabilities & {CAUSAL, INFILL}:
        what = f"unknown capabilities {', '.join(unknown)}" if unknown else "neither 'causal' nor 'infill'"
        raise PluginError(
            f"architecture plugin '{source.name}' ({source.describe()}) declares {what}; its capabilities must "
            f"include 'causal' or 'infill' and come from: {', '.join(sorted(KNOWN_CAPABILITIES))}"
        )
    return cls


def resolve_architecture(name: str, registry: ArchitectureRegistry | None = None) -> type[Architecture]:
    """A class from a plugin name (``lstm``) or a class path (``mypackage.MyNet`` or ``mypackage:MyNet``)."""
    registry = registry or default_registry()
    if "." not in name and ":" not in name:
        return registry.get(name)
    module_name, _, attribute = name.replace(":", ".").rpartition(".")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, attribute)
    except (ImportError, AttributeError) as error:
        raise PluginError(
            f"cannot import architecture class '{name}': {error}; check the class path, or use a plugin name "
            f"from `tangrnn plugins` ({', '.join(registry.names())})"
        ) from error
    return check_architecture_class(cls, PluginSource(name, name, "(class path)", ""))


_DEFAULT: ArchitectureRegistry | None = None


def default_registry() -> ArchitectureRegistry:
    """The process-wide registry, filled from the entry points on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = ArchitectureRegistry()
    return _DEFAULT
