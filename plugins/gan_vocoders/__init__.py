"""GAN vocoders as trainable inverters (issue 18): HiFi-GAN (Kong et al. 2020), MelGAN (Kumar
et al. 2019) and iSTFTNet (Kaneko et al. 2022), trained by one :class:`.learner.GanVocoderLearner`
on the one training loop."""
