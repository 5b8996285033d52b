"""melforge core: typed registries filled by pluggy hooks, base classes of every kind of part,
the data pipeline, the training runner and shared maths."""
