"""Registries and plugin loading: typed entries, clear errors, third-party entry points."""

from __future__ import annotations

import textwrap

import pytest
import torch

from melforge.core.cli.plugins import main as plugins_main
from melforge.core.plugin_listing import format_table
from melforge.core.head import Head
from melforge.core.hookspecs import hookimpl
from melforge.core.plugins import BUILTIN_PLUGINS, KINDS, PluginLoadError, load_registries
from melforge.core.registry import DuplicateEntryError, EntryConfigError, Registry, UnknownEntryError


class _Head(Head):
    def __init__(self, in_features: int, width: int = 2):
        super().__init__()
        self.in_features, self.num_params = in_features, width

    def forward(self, h):
        return h[..., : self.num_params]

    def log_prob(self, params, x):
        return -(x**2)

    def draw_noise(self, shape, generator=None, dtype=None, device=None):
        return torch.zeros(*shape, 1)

    def sample_from_noise(self, params, temperature, noise):
        return params[..., 0]


def test_builtins_register_every_named_part_with_their_plugin():
    regs = load_registries(strict=True, entry_points=[])
    expected = {
        "representation": ("log_mel", "melforge.plugins.representations.plugin"),
        "backbone": ("melnet", "melforge.plugins.melnet.plugin"),
        "head": ("gmm", "melforge.plugins.gmm.plugin"),
        "sampler": ("cached", "melforge.plugins.samplers.plugin"),
        "inverter": ("griffin_lim", "melforge.inverters.plugin"),
        "dataset": ("audio_folder", "melforge.datasets.plugin"),
    }
    for kind, (name, plugin) in expected.items():
        assert regs.of(kind).get(name).plugin == plugin
    assert regs.plugins == list(BUILTIN_PLUGINS) and regs.failures == []


def test_unknown_name_lists_the_known_ones():
    regs = load_registries(entry_points=[])
    with pytest.raises(UnknownEntryError) as err:
        regs.backbone.get("melnett")
    assert "unknown backbone 'melnett'" in str(err.value) and "melnet" in str(err.value)


def test_duplicate_name_is_listed_once_and_refused_on_use_naming_both_registrants():
    class _Other(_Head):
        pass

    reg = Registry("head", Head)
    first = reg.register("h", _Head, plugin="first_pkg")
    assert reg.register("h", _Other, plugin="second_pkg") is first  # the first entry stays
    reg.register("ok", _Head, plugin="second_pkg")
    assert reg.names() == ["h", "ok"] and "h" in reg and reg.entries()[0] is first
    assert reg.collisions == {"h": ["first_pkg", "second_pkg"]}
    for use in (
        lambda: reg.get("h"),
        lambda: reg.create("h", in_features=2),
        lambda: reg.build({"name": "h"}, in_features=2),
        lambda: reg.check_config({"name": "h"}),
    ):
        with pytest.raises(DuplicateEntryError, match="by first_pkg and by second_pkg"):
            use()
    assert reg.create("ok", in_features=2).num_params == 2  # the other names still work


def test_registry_is_typed_and_checks_config_keys():
    reg = Registry("head", Head)
    with pytest.raises(TypeError, match="does not subclass"):
        reg.register("bad", dict, plugin="p")  # type: ignore[arg-type]
    reg.register("h", _Head, plugin="p")
    head = reg.build({"name": "h", "width": 3}, in_features=5)
    assert head.num_params == 3 and head(torch.ones(2, 5)).shape == (2, 3)
    with pytest.raises(EntryConfigError, match="'widht'"):
        reg.build({"name": "h", "widht": 3}, in_features=5)
    with pytest.raises(EntryConfigError, match="'in_features'"):
        reg.build({"name": "h"})
    with pytest.raises(EntryConfigError, match="needs a 'name' key"):
        reg.build({"width": 3})


def _fake_distribution(root, dist: str, module: str, source: str, ep_name: str = "main") -> None:
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[melforge]\n{ep_name} = {module}\n")
    (root / f"{module}.py").write_text(textwrap.dedent(source))


GOOD_PLUGIN = """
    from melforge.core.hookspecs import hookimpl
    from melforge.plugins.gmm.head import GMMHead

    class WideGMM(GMMHead):
        '''A third-party head.'''

    @hookimpl
    def melforge_register_head(registry):
        registry.register("wide_gmm", WideGMM)
"""


def test_third_party_entry_point_registers_and_is_listed(tmp_path, monkeypatch, capsys):
    _fake_distribution(tmp_path, "melforge-widehead", "mf_widehead", GOOD_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    regs = load_registries(strict=True)
    entry = regs.head.get("wide_gmm")
    assert entry.plugin == "melforge-widehead:main"
    assert regs.head.create("wide_gmm", in_features=4).num_params == 30
    assert plugins_main([]) == 0
    out = capsys.readouterr().out
    assert "wide_gmm" in out and "melforge-widehead:main" in out and "A third-party head." in out
    for kind in KINDS:
        assert f"{kind} (" in out


def test_broken_plugin_is_reported_by_distribution_and_skipped(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "melforge-broken", "mf_broken", "raise ImportError('no such dependency: foo')\n")
    _fake_distribution(tmp_path, "melforge-widehead", "mf_widehead", GOOD_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(RuntimeWarning, match="melforge-broken:main failed to load.*no such dependency"):
        regs = load_registries()
    assert "wide_gmm" in regs.head  # the other plugin still loaded
    assert [f.plugin for f in regs.failures] == ["melforge-broken:main"]
    assert "skipped plugins" in format_table(regs)
    with pytest.raises(PluginLoadError, match="melforge-broken:main"):
        load_registries(strict=True)


def test_misspelled_hook_name_is_caught(tmp_path, monkeypatch):
    src = """
        from melforge.core.hookspecs import hookimpl

        @hookimpl
        def melforge_register_heads(registry):
            pass
    """
    _fake_distribution(tmp_path, "melforge-typo", "mf_typo", src)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginLoadError, match="melforge-typo:main.*melforge_register_heads"):
        load_registries(strict=True)


def test_plugin_clashing_with_a_builtin_is_listed_warned_and_refused_only_where_used(tmp_path, monkeypatch, capsys):
    src = """
        from melforge.core.hookspecs import hookimpl
        from melforge.plugins.gmm.head import GMMHead

        class OtherGMM(GMMHead):
            '''Another GMM.'''

        @hookimpl
        def melforge_register_head(registry):
            registry.register("gmm", OtherGMM)
            registry.register("other_gmm", OtherGMM)
    """
    _fake_distribution(tmp_path, "melforge-clash", "mf_clash", src)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(RuntimeWarning, match="head 'gmm' is registered by more than one plugin: "
                      "by melforge.plugins.gmm.plugin and by melforge-clash:main"):
        regs = load_registries()
    assert "melforge-clash:main" in regs.plugins and regs.failures == []
    assert regs.collisions() == [("head", "gmm", ["melforge.plugins.gmm.plugin", "melforge-clash:main"])]
    with pytest.raises(DuplicateEntryError, match="melforge.plugins.gmm.plugin and by melforge-clash:main"):
        regs.head.check_config({"name": "gmm"})
    assert regs.head.get("other_gmm").plugin == "melforge-clash:main"  # its other names work
    assert regs.backbone.get("melnet")  # and so does everything else
    table = format_table(regs)
    gmm_rows = [l for l in table.splitlines() if l.split()[:1] == ["gmm"]]
    assert len(gmm_rows) == 1 and "melforge.plugins.gmm.plugin" in gmm_rows[0]
    assert "COLLISION: also registered by melforge-clash:main" in table
    assert "head 'gmm': melforge.plugins.gmm.plugin, melforge-clash:main" in table
    with pytest.raises(PluginLoadError, match="head 'gmm' is registered by more than one plugin"):
        load_registries(strict=True)
    assert plugins_main(["--strict"]) == 1
    with pytest.warns(RuntimeWarning):
        assert plugins_main([]) == 0
    assert "COLLISION" in capsys.readouterr().out


def test_a_plugin_registering_one_name_twice_itself_is_skipped():
    class Twice:
        @staticmethod
        @hookimpl
        def melforge_register_head(registry):
            registry.register("twice", _Head)
            registry.register("twice", _Head)

    with pytest.warns(RuntimeWarning, match="twice_pkg failed to load.*registers head 'twice' twice"):
        regs = load_registries(entry_points=[], extra_plugins=[("twice_pkg", Twice)])
    assert "twice" not in regs.head and regs.collisions() == []


# --- lazy registration (issue 20, item 6) ---


def test_a_factory_registered_by_name_is_imported_on_first_use_and_checked(tmp_path, monkeypatch):
    import sys

    from melforge.core.head import Head
    from melforge.core.registry import LazyImportError, Registry

    (tmp_path / "lazy_heads.py").write_text(
        "from melforge.plugins.gmm.head import GMMHead\n\n"
        "class LazyHead(GMMHead):\n    '''A head imported on first use.'''\n\n"
        "class NotAHead:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("head", "melforge.core.head:Head")
    registry.register("lazy", "lazy_heads:LazyHead", plugin="p")
    registry.register("wrong", "lazy_heads:NotAHead", plugin="p")
    registry.register("missing", "no_such_module_xyz:Head", plugin="q")
    assert "lazy_heads" not in sys.modules and registry.names() == ["lazy", "missing", "wrong"]
    assert registry.get("lazy").description == "A head imported on first use."
    assert "lazy_heads" in sys.modules
    assert isinstance(registry.build({"name": "lazy", "components": 2}, in_features=4), Head)
    with pytest.raises(LazyImportError, match=r"head 'wrong' from p: cannot use 'lazy_heads:NotAHead': TypeError: "
                                              r".*NotAHead does not subclass melforge.core.head.Head"):
        registry.build({"name": "wrong"})
    with pytest.raises(LazyImportError, match=r"head 'missing' from q: cannot use 'no_such_module_xyz:Head': "
                                              r"ModuleNotFoundError"):
        registry.check_config({"name": "missing"})
    with pytest.raises(TypeError, match="is not 'package.module:attr'"):
        registry.register("bad", "no_colon", plugin="p")


def test_the_builtin_datasets_load_without_importing_their_modules():
    import subprocess
    import sys

    code = ("import sys\nfrom melforge.core.plugins import load_registries\nregs = load_registries(entry_points=[])\n"
            "assert regs.dataset.names() == ['asterisk_prompts', 'audio_folder', 'bach_piano', 'gm_music', 'gm_notes']\n"
            "print([m for m in ('melforge.datasets.asterisk', 'melforge.datasets.gm_music', 'melforge.datasets.gm_notes', "
            "'melforge.datasets.piano') "
            "if m in sys.modules])\n"
            "regs.dataset.check_config({'name': 'audio_folder', 'root': '/tmp'})\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
