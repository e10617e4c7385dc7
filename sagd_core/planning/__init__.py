"""Sampling plans designed for a trained model (its data spectrum, forward noise and role)."""
