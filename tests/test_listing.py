"""``melforge-plugins`` as a newcomer reads it (issue 20, items 4 and 7): every part with the
overrides that select it, the experiments with their purpose, whole sentences, no reST markup."""

from __future__ import annotations

from pathlib import Path

import pytest

import melforge.configs
from melforge.core.cli.plugins import main as plugins_main
from melforge.core.registry import first_sentence


@pytest.fixture(scope="module")
def listing() -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert plugins_main([]) == 0
    return out.getvalue()


def _block(listing: str, name: str) -> list[str]:
    """The entry row of ``name`` and its indented lines."""
    lines = listing.splitlines()
    start = next(i for i, l in enumerate(lines) if l.split()[:1] == [name] and l.startswith("  ") and not l.startswith("   "))
    block = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith("    "):
            break
        block.append(line)
    return block


def test_each_part_shows_the_overrides_that_select_it(listing):
    assert "select: dataset=asterisk_en, dataset=asterisk_speakers" in "\n".join(_block(listing, "asterisk_prompts"))
    assert "dataset=gm_music_shifted" in "\n".join(_block(listing, "gm_music"))  # the config the listing did not show
    assert "select: backbone=melnet" in "\n".join(_block(listing, "melnet"))
    assert "select: sampler=melnet_compiled" in "\n".join(_block(listing, "melnet_compiled"))


def test_every_experiment_is_listed_with_its_purpose(listing):
    experiments = sorted(p.stem for p in (Path(melforge.configs.__file__).parent / "experiment").glob("*.yaml"))
    assert f"experiment ({len(experiments)}): melforge-train experiment=NAME" in listing
    for name in experiments:
        block = _block(listing, name)
        assert len(block) >= 2 and block[1].strip(), (name, block)  # a purpose under each
    assert "CPU twin of speech (Table 2, Blizzard column)" in "\n".join(_block(listing, "speech_tiers_tiny"))


def test_descriptions_are_whole_sentences_without_backticks_and_lines_fit_100_columns(listing):
    assert "`" not in listing and ":class:" not in listing
    assert all(len(line) <= 100 for line in listing.splitlines()), max(listing.splitlines(), key=len)
    reference = " ".join(l.strip() for l in _block(listing, "reference")[1:] if not l.strip().startswith(("select:", "supports:")))
    assert reference.endswith("for any causal backbone with any head."), reference  # was cut at "drawn so"


def test_first_sentence_keeps_abbreviations_and_parentheses_whole():
    doc = "Fast GL (Perraudin et al. 2013. See eq. 3) on\n``x``, e.g. a mel. Second sentence.\n\nMore."
    assert first_sentence(doc) == "Fast GL (Perraudin et al. 2013. See eq. 3) on x, e.g. a mel."
    assert first_sentence("Uses :class:`~melforge.core.backbone.Backbone` here.") == "Uses Backbone here."


def test_the_cached_listing_is_the_fresh_one_and_follows_installs_and_edits(tmp_path, monkeypatch):
    from melforge.core.listing_cache import cached_listing, listing_key
    from melforge.core.plugin_listing import format_table
    from melforge.core.plugins import load_registries

    monkeypatch.setenv("MELFORGE_CACHE", str(tmp_path / "cache"))
    first, hit = cached_listing()
    again, hit_again = cached_listing()
    assert (hit, hit_again) == (False, True) and again == first == format_table(load_registries())
    # a plugin is installed: a new distribution with a melforge entry point
    site = tmp_path / "site"
    (site / "mf_extra").mkdir(parents=True)
    (site / "mf_extra" / "__init__.py").write_text(
        "from melforge.core.hookspecs import hookimpl\nfrom melforge.plugins.gmm.head import GMMHead\n\n"
        "class ExtraHead(GMMHead):\n    '''An extra head.'''\n\n"
        "@hookimpl\ndef melforge_register_head(registry):\n    registry.register('extra_head', ExtraHead)\n")
    info = site / "mf_extra-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mf-extra\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[melforge]\nmain = mf_extra\n")
    key = listing_key()
    monkeypatch.syspath_prepend(str(site))
    assert listing_key() != key
    installed, hit = cached_listing()
    assert not hit and "extra_head" in installed and "An extra head." in installed
    # the plugin is edited: its docstring changes, and so does the listing
    text = (site / "mf_extra" / "__init__.py").read_text().replace("An extra head.", "A better head.")
    (site / "mf_extra" / "__init__.py").write_text(text + "\n")
    import sys

    sys.modules.pop("mf_extra", None)
    edited, hit = cached_listing()
    assert not hit and "A better head." in edited
