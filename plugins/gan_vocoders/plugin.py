"""Registers the GAN vocoders (HiFi-GAN, MelGAN, iSTFTNet) through the hook a third-party plugin uses."""

from melforge.core.hookspecs import hookimpl


@hookimpl
def melforge_register_inverter(registry):
    from .inverter import build_gan_vocoder

    for name in ("hifigan", "melgan", "istftnet"):
        registry.register(name, build_gan_vocoder)
