"""Registers the source-filter vocoders (DDSP, hn-NSF, NSF-HiFiGAN) through the hook a third-party plugin uses."""

import inspect

from melforge.core.hookspecs import hookimpl

#: ``{registered name: the first line of its description}``; all build through
#: :func:`.inverter.build_source_filter_vocoder`, whose keys their config files set.
NAMES = {
    "ddsp": "DDSP harmonic-plus-noise vocoder (Engel et al. 2020) with a mel → F0 / voicing estimator.",
    "nsf": "hn-NSF neural source-filter vocoder (Wang et al. 2019) with a mel → F0 / voicing estimator.",
    "nsf_hifigan": "NSF-HiFiGAN: HiFi-GAN's generator and discriminators with hn-NSF's sine source at every "
                   "upsampling stage, F0 / voicing from a mel estimator.",
}


def _factory(name: str, doc: str):
    """:func:`.inverter.build_source_filter_vocoder` with the defaults of ``name`` (:data:`.setup.PRESETS`)."""
    from .inverter import build_source_filter_vocoder  # deferred: registration must not import torch models
    from .setup import PRESETS

    preset = PRESETS[name]

    def build(**keys):
        return build_source_filter_vocoder(**{**preset, **keys})

    signature = inspect.signature(build_source_filter_vocoder)
    build.__signature__ = signature.replace(parameters=[
        p.replace(default=preset.get(p.name, p.default)) for p in signature.parameters.values()])
    build.__doc__ = f"{doc}\n\n{build_source_filter_vocoder.__doc__}"
    return build


@hookimpl
def melforge_register_inverter(registry):
    for name, doc in NAMES.items():
        registry.register(name, _factory(name, doc))
