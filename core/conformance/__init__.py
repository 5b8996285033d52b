"""The conformance kit behind :mod:`melforge.testing`: checks that any plugin's parts keep
melforge's contracts. Plain functions raising ``AssertionError`` with a clear message; no test
framework needed.

One concept per module: :mod:`.causality` (a backbone's features depend only on earlier
elements), :mod:`.samplers` (log-probability = teacher forcing; same draws as ``reference``),
:mod:`.heads` (a head against ``torch.distributions``), :mod:`.padding` (padded batches), :mod:`.registry` (a registered name
builds and is listed), :mod:`.suite` (causality and every sampler in one call), :mod:`.inputs`
(float64 copies and the inputs fed to a backbone), :mod:`.inverters` (an inverter's waveform,
declared input, refusals and statelessness), :mod:`.representations` (features, image and the
round trip of a representation), :mod:`.learners` (a learner under the one training loop: one
step, exact resume, pure draws), :mod:`.expect` (expected ``ValueError``), :mod:`.compare`
(bit-for-bit comparison of nested state).
"""

from .causality import check_causality, row_major_order
from .compare import first_difference
from .heads import check_head_log_prob, check_head_sampling, check_samples_finite
from .inverters import InverterReport, check_inverter
from .learners import LearnerReport, check_draw, check_learner, check_one_step, check_resume
from .padding import check_padding
from .representations import RepresentationReport, check_representation
from .registry import check_registered
from .samplers import check_sampler_log_prob, check_sampler_matches_reference
from .suite import ConformanceReport, check_backbone_and_samplers

__all__ = [
    "ConformanceReport",
    "InverterReport",
    "LearnerReport",
    "RepresentationReport",
    "check_draw",
    "check_inverter",
    "check_learner",
    "check_one_step",
    "check_representation",
    "check_resume",
    "first_difference",
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
