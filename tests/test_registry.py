"""Entry-point discovery: isolation of broken plugins, refused duplicates, unknown names, API versions, kill switch."""

from __future__ import annotations

import sys

import pytest
from conftest import make_distribution

from tangrnn_core.api import Architecture
from tangrnn_core.errors import PluginError
from tangrnn_core.registry import ArchitectureRegistry, resolve_architecture

GOOD_MODULE = '''
from tangrnn_recurrent import GRU

class Tiny(GRU):
    """A GRU under another name."""
'''


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for module in [m for m in sys.modules if m.startswith("fake_")]:
        del sys.modules[module]


def test_builtin_plugins_are_found_through_entry_points():
    registry = ArchitectureRegistry()
    assert {"rnn", "lstm", "gru"} <= set(registry.names())
    statuses = {s.source.name: s for s in registry.statuses()}
    assert statuses["lstm"].source.distribution == "tangrnn"
    assert statuses["lstm"].cls.__name__ == "LSTM"


def test_third_party_plugin_is_found(site):
    make_distribution(site, "fake-good", {"tiny": "fake_good:Tiny"}, {"fake_good": GOOD_MODULE})
    registry = ArchitectureRegistry()
    cls = registry.get("tiny")
    assert issubclass(cls, Architecture) and cls.__name__ == "Tiny"


def test_broken_plugin_is_isolated_and_named(site):
    make_distribution(site, "fake-broken", {"broken": "fake_broken:Net"}, {"fake_broken": "import no_such_module\n"})
    registry = ArchitectureRegistry()
    assert registry.get("lstm").__name__ == "LSTM"  # the others still work
    with pytest.raises(PluginError) as caught:
        registry.get("broken")
    message = str(caught.value)
    for fragment in ("broken", "fake_broken:Net", "fake-broken", "no_such_module"):
        assert fragment in message
    status = {s.source.name: s for s in registry.statuses()}["broken"]
    assert status.cls is None and "failed to import" in status.problem


def test_duplicate_names_are_refused_naming_both(site):
    make_distribution(site, "fake-one", {"twin": "fake_one:Tiny"}, {"fake_one": GOOD_MODULE})
    make_distribution(site / "other", "fake-two", {"twin": "fake_two:Tiny"}, {"fake_two": GOOD_MODULE})
    sys.path.insert(0, str(site / "other"))
    try:
        registry = ArchitectureRegistry()
        with pytest.raises(PluginError, match="registered twice") as caught:
            registry.get("twin")
        assert "fake-one" in str(caught.value) and "fake-two" in str(caught.value)
    finally:
        sys.path.remove(str(site / "other"))


def test_duplicate_of_a_builtin_is_refused(site):
    make_distribution(site, "fake-clash", {"lstm": "fake_clash:Tiny"}, {"fake_clash": GOOD_MODULE})
    with pytest.raises(PluginError, match="registered twice.*or name the class by its path"):
        ArchitectureRegistry().get("lstm")


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(PluginError) as caught:
        ArchitectureRegistry().get("lstmm")
    assert "unknown architecture 'lstmm'" in str(caught.value)
    listed = str(caught.value).split("available: ")[1].split(".")[0].split(", ")
    assert {"gru", "lstm", "rnn"} <= set(listed) and listed == sorted(listed)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("from tangrnn_core.api import Architecture\nclass Net(Architecture):\n    pass\n", "declares no plugin_api"),
        (
            "from tangrnn_core.api import Architecture\nclass Net(Architecture):\n    plugin_api = 99\n",
            "needs plugin API 99",
        ),
        ("class Net:\n    plugin_api = 1\n", "not a subclass"),
        (
            "from tangrnn_core.api import Architecture\nclass Net(Architecture):\n    plugin_api = '1'\n",
            r"declares plugin_api = '1', which is no version number; set `plugin_api = 1` \(an int\)",
        ),
    ],
)
def test_contract_is_checked(site, body, expected):
    make_distribution(site, "fake-contract", {"net": "fake_contract:Net"}, {"fake_contract": body})
    with pytest.raises(PluginError, match=expected):
        ArchitectureRegistry().get("net")


def test_kill_switch_ignores_third_party_plugins(site, monkeypatch):
    make_distribution(site, "fake-good", {"tiny": "fake_good:Tiny"}, {"fake_good": GOOD_MODULE})
    monkeypatch.setenv("TANGRNN_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = ArchitectureRegistry()
    assert "tiny" not in registry.names() and "lstm" in registry.names()
    with pytest.raises(PluginError, match="TANGRNN_DISABLE_PLUGIN_AUTOLOAD"):
        registry.get("tiny")


def test_register_in_code_refuses_a_taken_name():
    registry = ArchitectureRegistry()
    registry.register("mine", resolve_architecture("gru"))
    assert registry.get("mine").__name__ == "GRU"
    with pytest.raises(PluginError, match="already registered"):
        registry.register("lstm", resolve_architecture("gru"))


def test_class_paths_resolve():
    assert resolve_architecture("tangrnn_recurrent.LSTM").__name__ == "LSTM"
    assert resolve_architecture("tangrnn_recurrent:GRU").__name__ == "GRU"
    with pytest.raises(PluginError, match="cannot import"):
        resolve_architecture("tangrnn_recurrent.Nope")


@pytest.mark.parametrize(
    ("capabilities", "fragment"),
    [(frozenset({"causal", "telepathy"}), "unknown capabilities telepathy"), (frozenset({"conditional"}), "neither")],
)
def test_capabilities_the_core_cannot_drive_are_refused(capabilities, fragment):
    from tangrnn_core.api import Architecture
    from tangrnn_core.registry import PluginSource, check_architecture_class

    odd = type("Odd", (Architecture,), {"plugin_api": 1, "capabilities": capabilities})
    with pytest.raises(PluginError, match=fragment):
        check_architecture_class(odd, PluginSource("odd", "odd_pkg:Odd", "odd-dist", "1.0"))
