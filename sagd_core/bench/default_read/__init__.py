"""Build and evaluate the band reader that ships with sagd (:mod:`sagd_core.models.band_reader`)."""
