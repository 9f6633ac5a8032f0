"""Models from installed plugins: the `proto_index.models` entry-point group (issue 10, item 7).

A plugin is "installed" by writing its dist-info (METADATA + entry_points.txt) and module into a
folder on sys.path, which is what importlib.metadata reads after `pip install`.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from suite_paths import TESTS

from proto_index.embed import registry
from proto_index.embed.registry import ModelInfo, available_models, load_encoder
from proto_index.errors import ModelError


PLUGIN = '''
from fakes import BandEncoder
from proto_index.embed.registry import ModelInfo

def build(**options):
    """Band encoder shipped by a plugin.

    More text that is not the description."""
    return BandEncoder()

INFO = ModelInfo("ep-info", "described by its ModelInfo", "nothing", lambda **options: BandEncoder())
'''
SELF_REGISTERING = '''
from fakes import BandEncoder
from proto_index.embed.registry import register_model
register_model("ep-module", lambda **options: BandEncoder(), "registered at import")
'''


def install(site: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> Path:
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{lines}")
    for module, code in modules.items():
        (site / f"{module}.py").write_text(code)
    return site


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_registered", {})
    monkeypatch.setattr(registry, "_entry_points_loaded", set())
    yield
    for module in ("ep_plugin", "ep_self_registering"):
        sys.modules.pop(module, None)


@pytest.fixture
def site(tmp_path, monkeypatch, clean_registry):
    site = install(tmp_path / "site", "ep-plugin", {
        "ep-bands": "ep_plugin:build", "ep-info": "ep_plugin:INFO", "ep-module": "ep_self_registering",
    }, {"ep_plugin": PLUGIN, "ep_self_registering": SELF_REGISTERING})
    monkeypatch.syspath_prepend(str(site))
    return site


def test_an_entry_point_factory_is_a_model(site):
    encoder = load_encoder("ep-bands")
    assert encoder.embed_texts(["siren"]).shape == (1, encoder.dim)
    assert registry._registered["ep-bands"].description == "Band encoder shipped by a plugin."
    # Only the plugin asked for was imported.
    assert "ep_self_registering" not in sys.modules


def test_model_info_and_self_registering_module_entry_points(site):
    models = {m.name: m for m in available_models()}
    assert list(models)[:len(registry.MODEL_NAMES)] == list(registry.MODEL_NAMES)
    assert models["ep-info"].description == "described by its ModelInfo"
    assert models["ep-module"].description == "registered at import"
    assert load_encoder("ep-module").dim == load_encoder("ep-info").dim


@pytest.mark.parametrize("target, message", [
    ("ep_missing_module:build", "cannot load model plugin 'ep-bad' = 'ep_missing_module:build'"),
    ("ep_plugin:NOT_THERE", "cannot load model plugin 'ep-bad'"),
    ("ep_plugin:INFO", "holds a ModelInfo called 'ep-info'"),
    ("json:__doc__", "is a str, not a factory, ModelInfo or module"),
])
def test_a_broken_plugin_is_one_model_error(tmp_path, monkeypatch, clean_registry, target, message):
    site = install(tmp_path / "site", "ep-bad", {"ep-bad": target}, {"ep_plugin": PLUGIN})
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ModelError, match=message.replace("(", r"\(")):
        load_encoder("ep-bad")


def test_a_plugin_cannot_replace_a_built_in_model(tmp_path, monkeypatch, clean_registry):
    site = install(tmp_path / "site", "ep-hijack", {"clap": "ep_plugin:build"}, {"ep_plugin": PLUGIN})
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ModelError, match="built-in"):
        available_models()


def test_the_environment_variable_still_loads_plugins(monkeypatch, clean_registry):
    monkeypatch.setenv(registry.PLUGINS_ENV, "ep_env_plugin")
    monkeypatch.setitem(sys.modules, "ep_env_plugin", None)  # importing it fails: the variable was read
    monkeypatch.setattr(registry, "_plugins_loaded", set())
    with pytest.raises(ModelError, match=r"cannot import model plugin 'ep_env_plugin' named in \$PROTO_INDEX_PLUGINS"):
        load_encoder("anything")


def test_cli_uses_an_installed_plugin_without_configuration(tmp_path):
    site = install(tmp_path / "site", "ep-plugin", {"ep-bands": "ep_plugin:build"}, {"ep_plugin": PLUGIN})
    env = {k: v for k, v in os.environ.items() if k != registry.PLUGINS_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(TESTS), env.get("PYTHONPATH", "")])
    store = tmp_path / "store"

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "proto_index.cli.app", *args, "--store", str(store)],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "bound to fake-bands" in cli("init", "--model", "ep-bands")
    assert json.loads(cli("info", "--json"))["model"]["name"] == "fake-bands"
