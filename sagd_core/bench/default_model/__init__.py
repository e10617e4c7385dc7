"""The default natural-image model that ships with the project (``sagd_core/models/default/``):
its training images (:mod:`.data`), how it is built (:mod:`.build`, ``make default-model``), a gray
image through the RGB model (:mod:`.channels`) and its measurement against the classical tier
(:mod:`.evaluate`). They sit under ``sagd_core/bench`` because they span the layers (data,
training, restoration); only ``make default-model``, ``sagd bench`` scripts and tests import them.
"""
