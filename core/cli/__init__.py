"""Command-line entry points (Hydra apps): melforge-train, melforge-sample, melforge-plugins."""
