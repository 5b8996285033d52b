"""Built-in representations: ``log_mel`` (log-mel power spectrogram)."""
