"""The ``reference`` sampler: the whole network re-run for every element."""

from __future__ import annotations

import torch

from melforge.core.model import SpectrogramModel
from melforge.core.sampler import SampleRequest, SampleResult, Sampler

from .frames import sample_frames


class ReferenceSampler(Sampler):
    """Re-runs ``backbone.forward`` on the whole ``(batch, frames, bins)`` spectrogram drawn so
    far (zeros after the current element) for every element: O((frames·bins)²), for any causal
    backbone with any head. Slow by design: it is the ground truth the conformance kit
    (:mod:`melforge.testing`) compares the fast samplers against, and what the public MelNet
    implementations do (see REFERENCE.md)."""

    speed = 0

    @torch.no_grad()
    def sample(self, model: SpectrogramModel, request: SampleRequest) -> SampleResult:
        """See :meth:`melforge.core.sampler.Sampler.sample`."""
        self.check(model)

        def start_frame(i, x, prev_frame):
            def features_of(i, j, prev_value):
                return model.backbone(x, request.cond, request.context)[:, i, j]  # (B, H)

            return features_of

        return sample_frames(model, request, start_frame)
