"""The conformance kit behind :mod:`melforge.testing`: checks that any plugin's parts keep
melforge's contracts. Plain functions raising ``AssertionError`` with a clear message; no test
framework needed.

One concept per module: :mod:`.causality` (a backbone's features depend only on earlier
elements), :mod:`.samplers` (log-probability = teacher forcing; same draws as ``reference``),
:mod:`.heads` (a head against ``torch.distributions``), :mod:`.padding` (padded batches), :mod:`.registry` (a registered name
builds and is listed), :mod:`.suite` (causality and every sampler in one call), :mod:`.inputs`
(float64 copies and the inputs fed to a backbone).
"""

from .causality import check_causality, row_major_order
from .heads import check_head_log_prob, check_head_sampling, check_samples_finite
from .padding import check_padding
from .registry import check_registered
from .samplers import check_sampler_log_prob, check_sampler_matches_reference
from .suite import ConformanceReport, check_backbone_and_samplers

__all__ = [
    "ConformanceReport",
    "check_backbone_and_samplers",
    "check_causality",
    "check_head_log_prob",
    "check_head_sampling",
    "check_padding",
    "check_registered",
    "check_sampler_log_prob",
    "check_sampler_matches_reference",
    "check_samples_finite",
    "row_major_order",
]
