"""Hydra config groups of melforge-example-plugin (package data, on the search path via the plugin hook)."""
