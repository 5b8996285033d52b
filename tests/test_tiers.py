"""split / interleave (seed 000 eq. 11–12) and the tier schedule (§5, Figures 4–5)."""

from __future__ import annotations

import pytest
import torch

from melforge.core.tiers import TierSchedule, interleave, split, tier_axis


@pytest.mark.parametrize("axis", ["time", "freq"])
@pytest.mark.parametrize("frames,bins", [(8, 6), (7, 6), (8, 5), (7, 5), (3, 3), (4, 3)])
def test_interleave_inverts_split_exactly_for_every_axis_and_odd_sizes(axis, frames, bins):
    x = torch.randn(2, frames, bins)
    even, odd = split(x, axis)
    n = frames if axis == "time" else bins
    assert even.shape[-2 if axis == "time" else -1] == (n + 1) // 2
    assert odd.shape[-2 if axis == "time" else -1] == n // 2
    assert torch.equal(interleave(even, odd, axis), x)
    # even rows go to the tier, odd rows to the context (eq. 11)
    if axis == "time":
        assert torch.equal(even[:, 1], x[:, 2]) and torch.equal(odd[:, 0], x[:, 1])
    else:
        assert torch.equal(even[..., 1], x[..., 2]) and torch.equal(odd[..., 0], x[..., 1])


def test_split_and_interleave_reject_what_no_split_produces():
    with pytest.raises(ValueError, match="at least 2 rows"):
        split(torch.randn(1, 1, 4), "time")
    with pytest.raises(ValueError, match="axis"):
        split(torch.randn(1, 4, 4), "channel")
    with pytest.raises(ValueError, match="do not come from one split"):
        interleave(torch.randn(1, 2, 4), torch.randn(1, 4, 4), "time")
    with pytest.raises(ValueError, match="do not come from one split"):
        interleave(torch.randn(1, 2, 4), torch.randn(1, 2, 3), "time")


def test_axes_alternate_as_in_figures_4_and_5():
    assert [tier_axis(g) for g in range(2, 7)] == ["freq", "time", "freq", "time", "freq"]
    # Figure 4 (Blizzard, 6 tiers): tier 1 is 32 mels × 50 frames, tiers 1–3 64 × 100, all 256 × 200.
    shapes = TierSchedule(6).shapes(200, 256)
    assert shapes[0] == (50, 32)
    assert TierSchedule(3).shapes(100, 64)[0] == (50, 32)
    assert shapes[-1] == (200, 128) and sum(f * b for f, b in shapes) == 200 * 256


@pytest.mark.parametrize("tiers", [1, 2, 3, 4, 5, 6])
def test_schedule_split_and_assemble_are_exact_inverses_for_every_tier_count(tiers):
    schedule = TierSchedule(tiers)
    frames, bins = 3 * schedule.time_factor, 5 * schedule.freq_factor
    x = torch.randn(2, frames, bins)
    parts = schedule.split(x)
    assert [tuple(p[0].shape[1:]) for p in parts] == schedule.shapes(frames, bins)
    for g, (x_g, context) in enumerate(parts, start=1):
        assert (context is None) == (g == 1)
        if context is not None:
            assert context.shape == x_g.shape  # features of x_<g condition x_g element by element
    assert torch.equal(schedule.assemble([p[0] for p in parts]), x)
    # the context of tier g is exactly tiers 1..g-1 assembled
    if tiers > 1:
        assert torch.equal(TierSchedule(tiers - 1).assemble([p[0] for p in parts[:-1]]), parts[-1][1])


def test_schedule_rejects_shapes_that_do_not_divide_with_a_clear_error():
    schedule = TierSchedule(4)  # two frequency splits, one time split
    assert (schedule.time_factor, schedule.freq_factor) == (2, 4)
    with pytest.raises(ValueError, match="frames must be a positive multiple of 2 and bins a multiple of 4"):
        schedule.split(torch.randn(1, 7, 8))
    with pytest.raises(ValueError, match="data.crop_frames"):
        schedule.check(8, 6, what="data.crop_frames")
    with pytest.raises(ValueError, match="tiers"):
        TierSchedule(0)
