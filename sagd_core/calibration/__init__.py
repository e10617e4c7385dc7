"""Calibration of a trained model's restoration on held-out corrupted images (fill, denoiser)."""
