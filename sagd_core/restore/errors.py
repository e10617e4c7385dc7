"""Errors raised by :mod:`sagd_core.restore` for bad input (all ``ValueError`` subclasses).

Messages are written for the person who sent the image: they say what is wrong and what to do.
Whatever a ``progress`` callback raises (cancellation) is *not* wrapped: it propagates unchanged.
"""

from __future__ import annotations


class RestoreError(ValueError):
    """The image, band spec, request or models cannot be used for this restoration."""


class BandError(RestoreError):
    """The band spec is ill-posed at this image size (covers DC, more than half the spectrum,
    or a region holds no frequency bin)."""


class ModelMismatchError(RestoreError):
    """A model does not fit the image or the request (channels, role, band support)."""


__all__ = ["BandError", "ModelMismatchError", "RestoreError"]
