"""Band detection: the spectrum's power-law trend and the peaks, lines and rings above it."""
