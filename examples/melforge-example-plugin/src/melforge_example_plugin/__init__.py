"""melforge-example-plugin: a third-party melforge plugin in one small package.

It registers one backbone, ``causal_conv`` (:mod:`melforge_example_plugin.backbone`), through
the entry point ``[project.entry-points.melforge] example = "melforge_example_plugin.plugin"``,
and ships Hydra configs (``backbone/causal_conv.yaml``, ``experiment/example_tiny.yaml``) that
melforge's apps find through the ``melforge_config_searchpath`` hook.
"""

__version__ = "0.1.0"
