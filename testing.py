"""``melforge.testing``: the public conformance kit a plugin's own tests call.

Plain functions that raise ``AssertionError`` with a message naming the part, the check and
the element (no test framework needed; pytest reports them as failures)::

    from melforge.testing import check_backbone_and_samplers, check_head_log_prob, check_registered

    def test_my_backbone_conforms():
        report = check_backbone_and_samplers(MyBackbone(hidden_size=8), GMMHead(8, 3), frames=4, bins=5)
        assert "cached" in report.samplers          # if it implements the incremental protocol

What is checked (float64, on copies; the caller's modules are untouched):

* :func:`check_causality` — by gradients, features at element ``(i, j)`` depend on no ``x`` at
  or after ``(i, j)`` in row-major order (seed 000 eq. 1) and on some earlier element;
  conditioning and an upsampling tier's context may be read in full.
* :func:`check_padding` — in a right-padded batch of clips of different lengths
  (``Backbone.forward_padded``), every valid element's features equal those of its clip alone
  and do not change with the padded values.
* :func:`check_sampler_log_prob` — a sampler's log-probability of its draws equals
  ``model.log_prob(x, cond, context)`` summed over the sampled, non-primed elements.
* :func:`check_sampler_matches_reference` — a sampler draws what ``reference`` draws for the
  same seed (same ``x``, same log-probability).
* :func:`check_samples_finite` — a head's draws are finite (float32 and float64, extreme
  parameters, several temperatures); every sampler also checks its own output and names the
  head, the sampler and the tier (:func:`melforge.core.sampler.check_finite_draw`).
* :func:`check_backbone_and_samplers` — the five above for a backbone + head, with every
  registered sampler that supports the pair (``Sampler.supports``).
* :func:`check_head_log_prob`, :func:`check_head_sampling` — a head against a
  ``torch.distributions`` reference built from its parameters.
* :func:`check_registered` — a registered name builds through ``Registry.build`` from a
  config, is an instance of the registry's base class, and ``melforge-plugins`` lists it.
"""

from melforge.core.conformance import *  # noqa: F403 - the kit's public names, listed once in its __all__
from melforge.core.conformance import __all__  # noqa: F401
