"""Data for sagd: built-in datasets, image folders, patches, synthetic corruptions and the
on-disk dataset format. Images are float32 ``(N, C, H, W)`` numpy arrays in ``[-1, 1]``
(DESIGN.md §1); callers make torch tensors from them.
"""

from sagd_core.data.builtin import (
    BUILTIN_DATASETS,
    NATURAL_TEST_IMAGES,
    NATURAL_TRAIN_IMAGES,
    load_builtin,
    split_indices,
)
from sagd_core.data.corruptions import (
    BandNoise,
    Corruption,
    CorruptionError,
    OrientedStripes,
    PeriodicStripes,
    apply_corruption,
    corruption_band_spec,
    corruption_spec,
    parse_corruption,
    sample_corruption,
)
from sagd_core.data.dataset_hash import dataset_hash
from sagd_core.data.folders import IMAGE_SUFFIXES, list_image_files, load_image_folder
from sagd_core.data.image_files import (
    ImageReadError,
    decode_image,
    encode_image,
    read_image,
    write_image,
)
from sagd_core.data.patches import random_patches
from sagd_core.data.ranges import from_model_range, to_model_range
from sagd_core.data.store import DatasetFormatError, StoredDataset, load_dataset, save_dataset

__all__ = [
    "BUILTIN_DATASETS",
    "IMAGE_SUFFIXES",
    "NATURAL_TEST_IMAGES",
    "NATURAL_TRAIN_IMAGES",
    "BandNoise",
    "Corruption",
    "CorruptionError",
    "DatasetFormatError",
    "ImageReadError",
    "OrientedStripes",
    "PeriodicStripes",
    "StoredDataset",
    "apply_corruption",
    "corruption_band_spec",
    "corruption_spec",
    "dataset_hash",
    "decode_image",
    "encode_image",
    "from_model_range",
    "list_image_files",
    "load_builtin",
    "load_dataset",
    "load_image_folder",
    "parse_corruption",
    "random_patches",
    "read_image",
    "sample_corruption",
    "save_dataset",
    "split_indices",
    "to_model_range",
    "write_image",
]
