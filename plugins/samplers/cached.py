"""The ``cached`` sampler: drives a backbone's incremental-state protocol, any head."""

from __future__ import annotations

import torch

from melforge.core.model import SpectrogramModel
from melforge.core.sampler import SampleRequest, SampleResult, Sampler

from .frames import sample_frames


class CachedSampler(Sampler):
    """O(frames·bins) eager sampler for backbones that implement the incremental-state protocol
    (``start`` / ``next_frame`` / ``next_element`` / ``teacher_frame`` of
    :class:`~melforge.core.backbone.Backbone`): e.g. MelNet's time-delayed stack once per frame
    and one frequency-delayed LSTM cell step per element, or WaveNet's per-layer queues (Fast
    WaveNet). Works with any head, on any device, in the model's dtype."""

    speed = 10
    needs_incremental = True

    @torch.no_grad()
    def sample(self, model: SpectrogramModel, request: SampleRequest) -> SampleResult:
        """See :meth:`melforge.core.sampler.Sampler.sample`."""
        self.check(model)
        request.validate()
        backbone = model.backbone
        state = backbone.start(request)
        primed = 0 if request.prime is None else request.prime.shape[1]

        def start_frame(i, x, prev_frame):
            backbone.next_frame(state, i, prev_frame)
            if i < primed:
                backbone.teacher_frame(state, i, x[:, i])
                return None
            return lambda i, j, prev_value: backbone.next_element(state, i, j, prev_value)

        return sample_frames(model, request, start_frame)
