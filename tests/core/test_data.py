"""Built-in datasets, image files and folders, patches, the dataset store and the data hash."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.signal

from sagd_core.data import (
    BUILTIN_DATASETS,
    NATURAL_TEST_IMAGES,
    NATURAL_TRAIN_IMAGES,
    BandNoise,
    DatasetFormatError,
    ImageReadError,
    PeriodicStripes,
    apply_corruption,
    dataset_hash,
    from_model_range,
    list_image_files,
    load_builtin,
    load_dataset,
    load_image_folder,
    random_patches,
    read_image,
    save_dataset,
    split_indices,
    to_model_range,
    write_image,
)
from sagd_core.data.builtin import _photo

RNG = np.random.default_rng(1234)


def write_encoded(path: Path, pixels: np.ndarray) -> Path:
    """Write a file with OpenCV directly (BGR order), independently of the code under test."""
    ok, buf = cv2.imencode(path.suffix, pixels)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


# --- ranges -----------------------------------------------------------------------------------


def test_model_range_conversions() -> None:
    u8 = np.array([0, 128, 255], dtype=np.uint8)
    np.testing.assert_allclose(to_model_range(u8), [-1.0, 2 * 128 / 255 - 1, 1.0], rtol=1e-6)
    u16 = np.array([0, 65535], dtype=np.uint16)
    np.testing.assert_array_equal(to_model_range(u16), [-1.0, 1.0])
    unit = RNG.random((3, 4)).astype(np.float32)
    np.testing.assert_allclose(from_model_range(to_model_range(unit)), unit, atol=1e-7)
    assert from_model_range(np.array([-3.0, 3.0]), clip=True).tolist() == [0.0, 1.0]
    assert from_model_range(np.array([3.0])).tolist() == [2.0]  # no hidden clipping
    with pytest.raises(ValueError, match="dtype"):
        to_model_range(np.array([1], dtype=np.int64))


# --- built-in datasets ------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILTIN_DATASETS)
@pytest.mark.parametrize("size", [16, 32])
def test_builtin_shapes_and_ranges(name: str, size: int) -> None:
    count = 64 if name == "natural" else None
    x = load_builtin(name, image_size=size, split="test", count=count)
    assert x.dtype == np.float32 and x.ndim == 4
    assert x.shape[1:] == (1, size, size)
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert x.std() > 0.1  # not blank
    assert len({img.tobytes() for img in x}) == len(x)  # no repeated image


def test_builtin_sizes() -> None:
    assert len(load_builtin("digits", image_size=16, split="all")) == 1797
    assert len(load_builtin("lfw", image_size=16, split="all")) == 100  # the faces only
    train = load_builtin("digits", image_size=16, split="train")
    test = load_builtin("digits", image_size=16, split="test")
    assert len(train) + len(test) == 1797
    assert len(test) == round(0.2 * 1797)
    assert len(load_builtin("natural", image_size=16, count=50)) == 50


@pytest.mark.parametrize("name", BUILTIN_DATASETS)
def test_builtin_rgb_repeats_or_keeps_colour(name: str) -> None:
    gray = load_builtin(name, image_size=16, split="test", count=20)
    rgb = load_builtin(name, image_size=16, split="test", count=20, channels=3)
    assert rgb.shape == (20, 3, 16, 16)
    if name != "natural":  # gray sources: the channels repeat the gray image
        np.testing.assert_array_equal(rgb[:, 0], gray[:, 0])
        np.testing.assert_array_equal(rgb[:, 2], gray[:, 0])


@pytest.mark.parametrize("n", [10, 100, 1797])
def test_fixed_split_indices_are_disjoint_and_cover_everything(n: int) -> None:
    train, test = split_indices(n, "train"), split_indices(n, "test")
    assert set(train).isdisjoint(test)
    assert sorted({*train, *test}) == list(range(n))


@pytest.mark.parametrize("name", ["digits", "lfw"])
def test_split_does_not_depend_on_seed(name: str) -> None:
    a = load_builtin(name, image_size=16, split="test", seed=0)
    b = load_builtin(name, image_size=16, split="test", seed=7)
    assert sorted(img.tobytes() for img in a) == sorted(img.tobytes() for img in b)
    assert not np.array_equal(a, b)  # the seed only changes the order
    np.testing.assert_array_equal(a, load_builtin(name, image_size=16, split="test", seed=0))


@pytest.mark.parametrize("name", ["digits", "lfw"])
def test_train_and_test_share_no_image(name: str) -> None:
    train = {img.tobytes() for img in load_builtin(name, image_size=16, split="train")}
    test = {img.tobytes() for img in load_builtin(name, image_size=16, split="test")}
    assert train.isdisjoint(test)


def test_natural_is_deterministic_and_prefix_stable() -> None:
    a = load_builtin("natural", image_size=16, count=40, seed=3)
    np.testing.assert_array_equal(a, load_builtin("natural", image_size=16, count=40, seed=3))
    np.testing.assert_array_equal(a[:10], load_builtin("natural", image_size=16, count=10, seed=3))
    assert not np.array_equal(a, load_builtin("natural", image_size=16, count=40, seed=4))


def occurs_exactly(patch: np.ndarray, photo: np.ndarray) -> bool:
    """Whether ``patch`` is, bit for bit, some same-size window of ``photo`` (both ``(C, H, W)``).

    Exact: candidate positions are those where the first pixel matches, each then compared
    whole, so no floating-point kernel (and no version of one) can blur the answer."""
    size = patch.shape[-1]
    corners = photo[0, : photo.shape[1] - size + 1, : photo.shape[2] - size + 1]
    return any(
        np.array_equal(photo[:, y : y + size, x : x + size], patch)
        for y, x in np.argwhere(corners == patch[0, 0, 0])
    )


def nearest_squared_distance(patch: np.ndarray, photo: np.ndarray) -> float:
    """Smallest ``Σ (window − patch)²`` over every same-size window of ``photo``, in float64.

    ``Σw² − 2 Σw·p + Σp²`` with the correlation by FFT and the window sums by cumulative
    sums: rounding error ~1e-12 of the terms, far below the 1e-3 margin the test asks for
    (float32 template matching was off by ~2e-6 and changed with library versions)."""
    size = patch.shape[-1]
    total = np.zeros((photo.shape[1] - size + 1, photo.shape[2] - size + 1))
    for image, template in zip(photo.astype(np.float64), patch.astype(np.float64), strict=True):
        squares = np.pad(image**2, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        window_sums = (
            squares[size:, size:]
            - squares[:-size, size:]
            - squares[size:, :-size]
            + squares[:-size, :-size]
        )
        cross = scipy.signal.correlate(image, template, mode="valid", method="fft")
        total += window_sums - 2 * cross + float((template**2).sum())
    return float(total.min())


def test_natural_test_patches_come_from_held_out_photos() -> None:
    assert set(NATURAL_TRAIN_IMAGES).isdisjoint(NATURAL_TEST_IMAGES)
    train_photos = [_photo(n, 1) for n in NATURAL_TRAIN_IMAGES]
    test_photos = [_photo(n, 1) for n in NATURAL_TEST_IMAGES]
    test = load_builtin("natural", image_size=24, split="test", count=6)
    train = load_builtin("natural", image_size=24, split="train", count=6)
    for patch in test:
        assert any(occurs_exactly(patch, p) for p in test_photos)  # control: it is found
        assert min(nearest_squared_distance(patch, p) for p in train_photos) > 1e-3
    for patch in train:
        assert any(occurs_exactly(patch, p) for p in train_photos)  # control: it is found
        assert min(nearest_squared_distance(patch, p) for p in test_photos) > 1e-3


def test_builtin_errors() -> None:
    with pytest.raises(ValueError, match="digits, lfw, natural"):
        load_builtin("mnist", image_size=32)
    with pytest.raises(ValueError, match="image_size"):
        load_builtin("digits", image_size=4)
    with pytest.raises(ValueError, match="channels"):
        load_builtin("digits", image_size=16, channels=2)
    with pytest.raises(ValueError, match="split"):
        load_builtin("digits", image_size=16, split="val")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="holds 20 images"):
        load_builtin("lfw", image_size=16, split="test", count=21)


# --- patches ----------------------------------------------------------------------------------


def test_random_patches_are_windows_of_their_sources() -> None:
    sources = [
        RNG.random((2, 20, 30)).astype(np.float32),
        RNG.random((2, 40, 17)).astype(np.float32),
    ]
    patches = random_patches(sources, 8, 12, seed=0)
    assert patches.shape == (12, 2, 8, 8) and patches.dtype == np.float32
    for patch in patches:
        found = any(
            np.array_equal(src[:, y : y + 8, x : x + 8], patch)
            for src in sources
            for y in range(src.shape[1] - 7)
            for x in range(src.shape[2] - 7)
        )
        assert found
    np.testing.assert_array_equal(patches[:5], random_patches(sources, 8, 5, seed=0))
    with pytest.raises(ValueError, match="smaller than"):
        random_patches(sources, 18, 1)
    with pytest.raises(ValueError, match="same number of channels"):
        random_patches([np.zeros((1, 9, 9)), np.zeros((3, 9, 9))], 4, 1)


# --- image files ------------------------------------------------------------------------------


def test_read_gray_rgb_rgba_16bit_png(tmp_path: Path) -> None:
    gray = RNG.integers(0, 256, (9, 7), dtype=np.uint8)
    rgb = RNG.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    rgba = RNG.integers(0, 256, (9, 7, 4), dtype=np.uint8)
    deep = RNG.integers(0, 65536, (9, 7), dtype=np.uint16)
    deep_rgb = RNG.integers(0, 65536, (9, 7, 3), dtype=np.uint16)

    out = read_image(write_encoded(tmp_path / "gray.png", gray))
    assert out.shape == (9, 7, 1) and out.dtype == np.float32
    np.testing.assert_allclose(out[..., 0], gray / 255.0, atol=1e-7)

    out = read_image(write_encoded(tmp_path / "rgb.png", rgb))  # stored BGR by OpenCV
    np.testing.assert_allclose(out, rgb[..., ::-1] / 255.0, atol=1e-7)

    out = read_image(write_encoded(tmp_path / "rgba.png", rgba))
    assert out.shape == (9, 7, 3)  # alpha dropped
    np.testing.assert_allclose(out, rgba[..., 2::-1] / 255.0, atol=1e-7)

    out = read_image(write_encoded(tmp_path / "deep.png", deep))
    np.testing.assert_allclose(out[..., 0], deep / 65535.0, atol=1e-7)  # 16 bits kept
    out = read_image(write_encoded(tmp_path / "deep_rgb.tif", deep_rgb))
    np.testing.assert_allclose(out, deep_rgb[..., ::-1] / 65535.0, atol=1e-7)


def test_read_jpeg(tmp_path: Path) -> None:
    smooth = np.tile(np.linspace(0, 255, 32)[None, :, None], (24, 1, 3)).astype(np.uint8)
    smooth[..., 0] //= 2  # a colour image: blue (BGR index 0) differs from red
    out = read_image(write_encoded(tmp_path / "photo.jpg", smooth))
    assert out.shape == (24, 32, 3)
    np.testing.assert_allclose(out, smooth[..., ::-1] / 255.0, atol=0.06)


def test_write_image_round_trip_and_atomic(tmp_path: Path) -> None:
    img = RNG.random((10, 12, 3)).astype(np.float32)
    write_image(tmp_path / "a.png", img)
    np.testing.assert_allclose(read_image(tmp_path / "a.png"), img, atol=0.5 / 255 + 1e-6)
    write_image(tmp_path / "b.png", img[..., :1], bit_depth=16)
    np.testing.assert_allclose(read_image(tmp_path / "b.png"), img[..., :1], atol=0.5 / 65535)
    write_image(tmp_path / "c.png", np.array([[-2.0, 3.0]]))  # clipped
    assert read_image(tmp_path / "c.png")[..., 0].tolist() == [[0.0, 1.0]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "c.png"]
    with pytest.raises(ValueError, match="bit depths"):
        write_image(tmp_path / "d.jpg", img, bit_depth=16)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and IHDR claiming a size, with no pixel data."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"this is not an image at all", "magic bytes"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "IHDR"),
        (png_header_only(20, 20), "could not decode"),
        (png_header_only(100_000, 100_000), "exceeds the limit"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 3, "JPEG"),
    ],
    ids=["empty", "text", "bad-ihdr", "no-pixels", "bomb-header", "truncated-jpeg"],
)
def test_unreadable_files_raise_naming_the_file(
    tmp_path: Path, content: bytes, fragment: str
) -> None:
    file = tmp_path / "bäd ïmage.png"
    file.write_bytes(content)
    with pytest.raises(ImageReadError) as info:
        read_image(file)
    assert str(file) in str(info.value)
    assert fragment in str(info.value)


def test_truncated_png_and_byte_limit(tmp_path: Path) -> None:
    good = write_encoded(tmp_path / "good.png", RNG.integers(0, 256, (64, 64), dtype=np.uint8))
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:100])
    with pytest.raises(ImageReadError, match=r"cut\.png"):
        read_image(cut)
    with pytest.raises(ImageReadError, match="bytes exceeds"):
        read_image(good, max_bytes=50)
    with pytest.raises(ImageReadError, match="pixels exceeds"):
        read_image(good, max_pixels=64 * 64 - 1)
    with pytest.raises(ImageReadError, match=r"missing\.png"):
        read_image(tmp_path / "missing.png")


# --- folders ----------------------------------------------------------------------------------


def test_load_gray_folder_in_sorted_order(tmp_path: Path) -> None:
    imgs = [RNG.integers(0, 256, (8, 8), dtype=np.uint8) for _ in range(3)]
    for name, img in zip(["b.png", "a.PNG", "ç-unicode.png"], imgs, strict=True):
        write_encoded(tmp_path / name, img)
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / ".hidden.png").write_bytes(b"junk that would fail")
    x = load_image_folder(tmp_path)
    assert x.shape == (3, 1, 8, 8) and x.dtype == np.float32
    order = [imgs[1], imgs[0], imgs[2]]  # a.PNG, b.png, ç-unicode.png
    np.testing.assert_allclose(x[:, 0], to_model_range(np.stack(order)), atol=1e-6)
    assert load_image_folder(tmp_path, max_images=2).shape[0] == 2


def test_folder_channels_and_resizing(tmp_path: Path) -> None:
    write_encoded(tmp_path / "0.png", RNG.integers(0, 256, (20, 30), dtype=np.uint8))
    write_encoded(tmp_path / "1.png", RNG.integers(0, 256, (40, 24, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="image_size"):
        load_image_folder(tmp_path)  # sizes differ
    x = load_image_folder(tmp_path, image_size=16)
    assert x.shape == (2, 3, 16, 16)  # any colour image makes the set RGB
    np.testing.assert_array_equal(x[0, 0], x[0, 1])  # the gray one is repeated
    assert load_image_folder(tmp_path, image_size=16, channels=1).shape == (2, 1, 16, 16)
    assert x.min() >= -1.0 and x.max() <= 1.0


def test_folder_recursion_and_errors(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write_encoded(tmp_path / "sub" / "x.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="no images"):
        load_image_folder(tmp_path)
    assert load_image_folder(tmp_path, recursive=True).shape == (1, 1, 8, 8)
    assert [p.name for p in list_image_files(tmp_path, recursive=True)] == ["x.png"]
    (tmp_path / "sub" / "y.png").write_bytes(b"garbage")
    with pytest.raises(ImageReadError, match=r"y\.png"):
        load_image_folder(tmp_path, recursive=True)
    with pytest.raises(ValueError, match="not a folder"):
        load_image_folder(tmp_path / "nope")


# --- dataset hash -----------------------------------------------------------------------------


def test_dataset_hash() -> None:
    a = RNG.random((4, 1, 8, 8)).astype(np.float32)
    h = dataset_hash(a)
    assert h.startswith("sha256:") and len(h) == len("sha256:") + 64
    assert dataset_hash(np.asfortranarray(a)) == h  # layout does not matter
    assert dataset_hash(a.astype(">f4")) == h  # nor byte order
    assert dataset_hash(a.reshape(4, 8, 8)) != h  # shape does
    assert dataset_hash(a.view(np.int32)) != h  # dtype does
    b = a.copy()
    b[3, 0, 7, 7] = np.nextafter(b[3, 0, 7, 7], 2)
    assert dataset_hash(b) != h


# --- dataset store ----------------------------------------------------------------------------


def test_save_and_load_dataset_round_trip(tmp_path: Path) -> None:
    clean = load_builtin("digits", image_size=16, split="test", count=10)
    corruption = BandNoise(low=0.1, high=0.3, gamma=1.0)
    corrupted = apply_corruption(clean, corruption, seed=5)
    target = tmp_path / "set"
    save_dataset(target, clean, corrupted, corruption, seed=5, max_previews=4)
    loaded = load_dataset(target)
    np.testing.assert_array_equal(loaded.corrupted, corrupted)
    assert loaded.clean is not None
    np.testing.assert_array_equal(loaded.clean, clean)
    assert loaded.corruption == corruption
    assert loaded.manifest["seed"] == 5
    assert loaded.manifest["band_spec"]["regions"][0]["kind"] == "annulus"
    previews = sorted((target / "previews").iterdir())
    assert len(previews) == 4
    assert read_image(previews[0]).shape == (16, 16, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["set"]  # no temporary leftovers


def test_dataset_without_clean_or_corruption(tmp_path: Path) -> None:
    corrupted = RNG.normal(size=(3, 3, 8, 8)).astype(np.float32)
    save_dataset(tmp_path / "real", None, corrupted, None)
    loaded = load_dataset(tmp_path / "real")
    assert loaded.clean is None and loaded.corruption is None
    np.testing.assert_array_equal(loaded.corrupted, corrupted)


def test_dataset_store_refuses_tampering_and_overwrites(tmp_path: Path) -> None:
    x = RNG.normal(size=(2, 1, 8, 8)).astype(np.float32)
    corruption = PeriodicStripes(frequencies=((0.25, 0.0),), amplitude=0.1)
    target = save_dataset(tmp_path / "d", x, x + 1, corruption)
    with pytest.raises(FileExistsError):
        save_dataset(target, x, x, corruption)
    np.save(target / "corrupted.npy", x, allow_pickle=False)
    with pytest.raises(DatasetFormatError, match="does not match"):
        load_dataset(target)
    np.save(target / "corrupted.npy", x[:1], allow_pickle=False)
    with pytest.raises(DatasetFormatError, match="manifest says"):
        load_dataset(target)
    np.save(target / "corrupted.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DatasetFormatError, match="not a readable"):
        load_dataset(target)  # pickles are never loaded
    (target / "manifest.json").write_text("[]")
    with pytest.raises(DatasetFormatError, match="JSON object"):
        load_dataset(target)
    with pytest.raises(DatasetFormatError, match="missing"):
        load_dataset(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="differ"):
        save_dataset(tmp_path / "e", x, x[:1], None)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    import PIL.Image as image_module

    pixels = np.zeros((10, 20, 3), np.uint8)
    pixels[:, :5] = 255  # white on the left of a landscape image
    img = image_module.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    img.save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    out = read_image(tmp_path / "rotated.jpg")
    assert out.shape == (20, 10, 3)  # portrait once displayed
    assert out[:4].mean() > 0.9 and out[-4:].mean() < 0.1  # the white band is now on top
