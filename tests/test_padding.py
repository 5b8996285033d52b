"""Variable-length batches: bucketing, right padding and masks (issue 10 §2).

The padded batch's valid log-densities must equal each clip evaluated alone (exact, float64),
padding must be invisible to them (values and gradients), and the NLL accounting must count
valid elements only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from melforge.core.backbone import Backbone
from melforge.core.crops import CropSampler, ValidationSet, usable_frames
from melforge.core.experiment import build_model
from melforge.core.masking import frame_mask, scaled_lengths


def _model(tiers, centralized=False):
    cfg = {
        "representation": {"name": "log_mel", "sr": 16000, "n_fft": 256, "hop_length": 64, "n_mels": 16},
        "backbone": {"name": "melnet", "hidden_size": 8, "layers": 1, "centralized": centralized},
        "head": {"name": "gmm", "components": 2},
        "tiers": {"layers": tiers},
    }
    torch.manual_seed(0)
    return build_model(cfg, bins=16).double().eval()


@pytest.mark.parametrize("tiers", [[1], [1, 1, 1], [2, 1, 1, 1]])
@torch.no_grad()
def test_padded_batch_equals_each_clip_alone(tiers):
    model = _model(tiers)
    f = model.schedule.time_factor
    x = torch.randn(3, 4 * f, 16, dtype=torch.float64)
    lengths = torch.tensor([2 * f, 4 * f, f])
    padded = model.tier_log_probs(x, None, None, lengths)
    for b, n in enumerate(lengths.tolist()):
        alone = model.tier_log_probs(x[b : b + 1, :n])
        for g, lp in alone.items():
            n_g = lp.shape[1]
            torch.testing.assert_close(padded[g][b, :n_g], lp[0], rtol=0, atol=1e-12)
            assert float(padded[g][b, n_g:].abs().sum()) == 0.0  # padded elements carry nothing


def test_padding_is_invisible_to_valid_elements():
    """Values and gradients: the valid elements' NLL does not depend on the padded frames,
    in every tier (the feature-extraction network reads its context in both time directions)."""
    model = _model([1, 1, 1])
    x = torch.randn(2, 8, 16, dtype=torch.float64)
    lengths = torch.tensor([4, 8])
    other = x.clone()
    other[0, 4:] = 100.0 * torch.randn(4, 16, dtype=torch.float64)
    a, b = model.tier_nlls(x, None, None, lengths), model.tier_nlls(other, None, None, lengths)
    for g in a:
        torch.testing.assert_close(a[g], b[g], rtol=0, atol=1e-12)
    x.requires_grad_(True)
    sum(model.tier_nlls(x, None, None, lengths).values()).backward()
    assert float(x.grad[0, 4:].abs().sum()) == 0.0
    assert float(x.grad[0, :4].abs().sum()) > 0.0 and float(x.grad[1, 4:].abs().sum()) > 0.0


@torch.no_grad()
def test_generic_forward_padded_matches_melnet_override():
    """The base class's per-length fallback (for any backbone with a context) agrees with
    MelNet's one-pass packed version."""
    model = _model([1, 1])
    tier = model.tiers[1]
    x = torch.randn(3, 6, 8, dtype=torch.float64)
    context = torch.randn(3, 6, 8, dtype=torch.float64)
    lengths = torch.tensor([2, 6, 4])
    fast = tier.backbone.forward_padded(x, None, context, lengths)
    generic = Backbone.forward_padded(tier.backbone, x, None, context, lengths)
    mask = frame_mask(lengths, 6)
    torch.testing.assert_close(fast[mask], generic[mask], rtol=0, atol=1e-12)


@torch.no_grad()
def test_nll_accounting_counts_valid_elements_only():
    model = _model([1, 1, 1])
    x = torch.randn(2, 8, 16, dtype=torch.float64)
    lengths = torch.tensor([4, 8])
    sums = model.tier_nll_sums(x, None, None, lengths)
    for g, (total, count) in sums.items():
        lp = [model.tier_log_probs(x[b : b + 1, :n])[g] for b, n in enumerate(lengths.tolist())]
        assert count == sum(t.numel() for t in lp)
        torch.testing.assert_close(total, -sum(t.sum() for t in lp), rtol=0, atol=1e-10)
    assert model.tier_nlls(x, None, None, lengths)[2] == pytest.approx(float(sums[2][0]) / sums[2][1])


def test_lengths_must_divide_into_tiers():
    with pytest.raises(ValueError, match="multiples of the tiers' time factor 2"):
        scaled_lengths(torch.tensor([3, 8]), 8, 4)


def _clips(lengths, bins=4, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, bins)).astype(np.float32) for n in lengths]


def test_crop_sampler_crops_long_clips_keeps_short_ones_whole_and_buckets():
    lengths = [5, 9, 12, 17, 30, 41, 64, 100, 250, 7]
    clips = _clips(lengths)
    sampler = CropSampler(clips, 32, multiple=4, min_frames=8, buckets=3, speakers=list("abcdefghij"))
    usable = sorted(usable_frames(n, 32, 4) for n in lengths if usable_frames(n, 32, 4) >= 8)
    assert sorted(sampler.usable.tolist()) == usable  # the 5- and 7-frame clips are skipped
    ranges = [(int(sampler.usable[b].min()), int(sampler.usable[b].max())) for b in sampler.buckets]
    by_label = dict(zip("abcdefghij", clips))
    for step in range(40):
        x, lens, labels = sampler.draw(6, torch.Generator().manual_seed(step))
        assert x.shape[1] == int(lens.max()) <= 32 and x.shape[0] == 6
        assert all(int(n) % 4 == 0 for n in lens)
        assert any(lo <= int(lens.min()) and int(lens.max()) <= hi for lo, hi in ranges)  # one bucket
        for row, n, label in zip(x, lens.tolist(), labels):
            clip = torch.from_numpy(by_label[label])
            assert float(row[n:].abs().sum()) == 0.0
            # a short clip is used whole (rounded down to the multiple), a long one cropped to 32
            assert n == usable_frames(len(clip), 32, 4)
            starts = [s for s in range(len(clip) - n + 1) if torch.equal(clip[s : s + n], row[:n])]
            assert starts  # a contiguous window of the clip
    a = sampler.draw(6, torch.Generator().manual_seed(3))
    b = sampler.draw(6, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]


def test_validation_set_covers_every_clip():
    lengths = [5, 9, 12, 17, 30, 41, 64, 100]
    clips = _clips(lengths, seed=1)
    valid = ValidationSet.build(clips, 32, multiple=4, min_frames=8)
    expected = 0
    for k, n in enumerate(lengths):
        covered = sum(len(p) for p, s in zip(valid.pieces, valid.sources) if s == k)
        want = sum(m for s in range(0, n, 32) if (m := usable_frames(n - s, 32, 4)) >= 8)
        assert covered == want
        expected += want
    assert valid.frames == expected
    assert set(valid.sources) == {k for k, n in enumerate(lengths) if usable_frames(n, 32, 4) >= 8}
    seen = sum(int(lens.sum()) for _, lens, _ in valid.batches(3))
    assert seen == expected
    capped = ValidationSet.build(clips, 32, multiple=4, min_frames=8, max_pieces=7)
    assert len(capped) == 7 and len(set(capped.sources)) == 7  # round-robin: one piece per clip first


def test_no_usable_clip_is_an_error_naming_the_key():
    with pytest.raises(ValueError, match="data.min_frames=16"):
        CropSampler(_clips([5, 9, 12]), 32, multiple=4, min_frames=16)
    with pytest.raises(ValueError, match="data.crop_frames=30"):
        CropSampler(_clips([50]), 30, multiple=4)


def test_conformance_kit_checks_padding_and_catches_a_leak():
    from melforge.testing import check_padding

    tier = _model([1, 1]).tiers[1].backbone.float()
    check_padding(tier, frames=6, bins=8)  # MelNet's packed feature-extraction network passes

    class Leaky(type(tier)):
        def forward_padded(self, x, cond, context, lengths):  # ignores the lengths
            return self.forward(x, cond, context)

    leaky = _model([1, 1]).tiers[1].backbone.float()
    leaky.__class__ = Leaky
    with pytest.raises(AssertionError, match="padding reaches valid elements"):
        check_padding(leaky, frames=6, bins=8)
