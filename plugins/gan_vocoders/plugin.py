"""Registers the GAN vocoders (HiFi-GAN, MelGAN, iSTFTNet) through the hook a third-party plugin uses."""

import inspect

from melforge.core.hookspecs import hookimpl

#: ``{registered name: the first line of its description}``; all build through
#: :func:`.inverter.build_gan_vocoder`, whose keys their config files set.
NAMES = {
    "hifigan": "HiFi-GAN (Kong et al. 2020): MRF generator V1/V2/V3, multi-period + multi-scale discriminators.",
    "melgan": "MelGAN (Kumar et al. 2019): residual-stack generator, 3-scale window discriminator, hinge loss.",
    "istftnet": "iSTFTNet C8C8I (Kaneko et al. 2022): HiFi-GAN V1 with two upsampling stages and an inverse STFT.",
}


def _factory(name: str, doc: str):
    """:func:`.inverter.build_gan_vocoder` with the defaults of ``name`` (:data:`.setup.PRESETS`)."""
    from .inverter import (
        build_gan_vocoder,  # deferred: melforge.plugins.gan_vocoders.inverter loads torch; start-up does not pay for it
    )
    from .setup import (
        PRESETS,  # deferred: melforge.plugins.gan_vocoders.setup loads torch; start-up does not pay for it
    )

    preset = PRESETS[name]

    def build(**keys):
        return build_gan_vocoder(**{**preset, **keys})

    signature = inspect.signature(build_gan_vocoder)
    build.__signature__ = signature.replace(parameters=[
        p.replace(default=preset.get(p.name, p.default)) for p in signature.parameters.values()])
    build.__doc__ = f"{doc}\n\n{build_gan_vocoder.__doc__}"
    return build


@hookimpl
def melforge_register_inverter(registry):
    for name, doc in NAMES.items():
        registry.register(name, _factory(name, doc))
