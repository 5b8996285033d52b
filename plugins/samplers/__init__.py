"""The generic samplers: ``reference`` (re-run everything) and ``cached`` (incremental state)."""
