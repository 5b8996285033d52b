"""Audio corpora, prepared by melforge itself on first use."""
