"""The paper's configs (seed 000 Table 2) start on our real corpora (issue 10 §2).

Table 2's "max sample duration" is a maximum: clips shorter than it are used whole, in
length buckets, padded and masked. Each config is built on its real corpus (the Asterisk
prompts, the rendered chorales, the four Asterisk speakers) with its full Table 2 shape —
tiers, layers per tier, mels, hop, window, crop length — and a narrow width (Table 2's 512
would take minutes per step on a CPU), then takes one optimiser step on a batch of
full-length crops; ``speech`` also runs through ``train()`` end to end.
"""

from __future__ import annotations

import math

import pytest
import torch

from melforge.core.experiment import build_experiment
from melforge.core.optim import make_optimizer
from melforge.core.learners import train
from melforge.core.model_learner import TrainingData

NARROW = ("backbone.hidden_size=8", "backbone.checkpoint=false", "data.valid_crops=2", "train.batch_size=2",
          "sample.count=0", "threads=1")


@pytest.mark.parametrize(
    "experiment,extra,crop,mostly_shorter",
    [
        ("speech", (), 860, True),  # prompts of a few seconds: only 22 of 532 reach 10 s
        # 24 of the 304 chorales (rendering all takes minutes), 3 held out; chorales outlast 6 s
        ("piano", ("dataset.chorales=24", "data.valid_fraction=0.2"), 516, False),
        ("speakers", (), 532, True),
    ],
)
def test_table_2_config_takes_a_full_shape_step_on_its_real_corpus(compose_train, experiment, extra, crop, mostly_shorter):
    cfg = compose_train(f"experiment={experiment}", *NARROW, *extra)
    exp = build_experiment(cfg)
    data = TrainingData.from_experiment(exp)
    corpus = exp.load_corpus()
    lengths = sorted(len(f) for f in corpus.train)
    # every clip takes part, whether shorter than the maximum (used whole) or longer (cropped)
    assert (sum(n < crop for n in lengths) > len(lengths) // 2) == mostly_shorter
    assert len(data.train.features) == sum(n >= exp.model.schedule.time_factor for n in lengths)
    # validation covers every validation clip
    assert len(set(data.valid.sources)) == min(2, len(corpus.valid))
    # the top bucket holds full-length crops: one optimiser step at Table 2's full shape
    top = data.train.buckets[-1]
    assert int(data.train.usable[top].max()) == crop
    generator = torch.Generator().manual_seed(0)
    while True:
        x, lens, labels = data.train.draw(2, generator)
        if x.shape[1] == crop:
            break
    cond = exp.speakers.one_hot(labels) if exp.speakers else None
    optimizer = make_optimizer(exp.model.parameters(), cfg["optimizer"])
    nlls = exp.model.tier_nlls(x, cond, None, lens)
    assert len(nlls) == len(cfg["tiers"]["layers"])
    loss = sum(nlls.values())
    loss.backward()
    optimizer.step()
    assert math.isfinite(float(loss))
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in exp.model.parameters() if p.requires_grad)


def test_speech_starts_and_trains_a_step_through_the_runner(tmp_path, compose_train):
    cfg = compose_train("experiment=speech", *NARROW, "train.max_steps=1")
    metrics = train(cfg, tmp_path)
    assert metrics["steps"] == 1 and metrics["tiers"] == 6
    assert metrics["tier_shapes"][-1] == [860, 128] and metrics["tier_shapes"][0] == [215, 32]
    assert math.isfinite(metrics["valid_nll"]) and metrics["valid_nll"] < metrics["valid_nll_step0"] + 1.0
    assert (tmp_path / "checkpoints/last.pt").exists()
