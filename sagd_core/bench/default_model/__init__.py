"""The default natural-image model that ships with the project (``sagd_core/models/default/``):
its training images (:mod:`.data`), how it is built (:mod:`.build`, ``make default-model``) and
its measurement against the classical tier (:mod:`.evaluate`; gray images go through the RGB
model by :mod:`sagd_core.restore.gray_via_rgb`). They sit under ``sagd_core/bench`` because
they span the layers (data, training, restoration); only ``make default-model``, ``sagd bench``
scripts and tests import them.
"""
