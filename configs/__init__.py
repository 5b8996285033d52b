"""melforge's Hydra configs (``train.yaml``, ``sample.yaml``, ``invert.yaml`` and the part groups).

Importing the package registers the apps' typed schemas in Hydra's ``ConfigStore``
(:func:`melforge.core.config_schema.store_schemas`): they are the first entry of the primary
configs' defaults, so Hydra must find them wherever it loads these configs (the apps, a test's
``compose``, a notebook). This registration is the package's one side effect.
"""

from melforge.core.config_schema import store_schemas

store_schemas()
