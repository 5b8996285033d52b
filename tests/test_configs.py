"""Config ownership (issue 8): each part's keys live in its own group; an experiment sets keys
only of the parts it selects; swapping a part under the default experiment inherits no keys of
the part it replaced; every experiment composes and passes the apps' up-front checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from melforge.core.app import check_train_config
from melforge.core.config_schema import PART_SECTIONS

EXPERIMENTS = Path(__file__).resolve().parents[1] / "configs" / "experiment"
NAMES = sorted(p.stem for p in EXPERIMENTS.glob("*.yaml"))


def _selected(name: str) -> set[str]:
    """Part groups an experiment selects with ``override /<group>: …``, its own or inherited
    from the experiments in its defaults list."""
    doc = yaml.safe_load((EXPERIMENTS / f"{name}.yaml").read_text()) or {}
    chosen: set[str] = set()
    for item in doc.get("defaults", []):
        if isinstance(item, dict):
            for key in item:
                if key.startswith("override /"):
                    chosen.add(key.removeprefix("override /"))
        elif isinstance(item, str) and item != "_self_":
            chosen |= _selected(item)
    return chosen


@pytest.mark.parametrize("name", NAMES)
def test_an_experiment_sets_keys_only_of_the_parts_it_selects(name):
    doc = yaml.safe_load((EXPERIMENTS / f"{name}.yaml").read_text()) or {}
    selected = _selected(name)
    for part in PART_SECTIONS:
        if part in doc:
            assert part in selected, f"experiment {name} sets {part} keys but does not select /{part}"


@pytest.mark.parametrize("name", NAMES)
def test_every_experiment_composes_and_passes_the_up_front_checks(compose_train, name):
    check_train_config(compose_train(f"experiment={name}"))


def test_swapping_a_part_under_the_default_experiment_inherits_none_of_melnets_keys(compose_train):
    cfg = compose_train("backbone=wavenet", "representation=mu_law", "head=categorical")
    wavenet = yaml.safe_load((EXPERIMENTS.parent / "backbone" / "wavenet.yaml").read_text())
    assert cfg["backbone"] == wavenet  # exactly the group's own keys
    check_train_config(cfg)
    assert compose_train()["backbone"]["name"] == "melnet"  # the default run is still speech_tiny's MelNet


def test_the_twins_are_a_few_lines_on_top_of_their_full_configs():
    for twin, full in [("speech_tiers_tiny", "speech"), ("piano_tiny", "piano"), ("speakers_tiny", "speakers"),
                       ("wavenet_speech_tiny", "wavenet_speech"), ("wavenet_speakers_tiny", "wavenet_speakers")]:
        doc = yaml.safe_load((EXPERIMENTS / f"{twin}.yaml").read_text())
        assert doc["defaults"][0] == full, twin
        body = [l for l in (EXPERIMENTS / f"{twin}.yaml").read_text().splitlines() if l and not l.startswith("#")]
        assert len(body) <= 12, f"{twin} is {len(body)} lines, not a few on top of {full}"
