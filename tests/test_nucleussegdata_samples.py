"""NucleusSegData on the 41 real image/annotation pairs of the first author's repository (samples)."""

import io

import numpy as np
import pytest
from datasets import Image, load_dataset
from PIL import Image as PILImage

from builders.masks import relabel_sequential
from builders.nucleussegdata import parse_matrix

# Nuclei per image (max label) of all 41 pairs, from the samples README.
NUCLEI = dict(pair.split(":") for pair in """1:10 2:7 3:30 4:57 5:56 6:21 7:45 8:278 9:233 10:261 11:14 12:24 13:18 14:21
    15:37 16:40 17:25 18:21 19:26 20:69 21:189 22:293 23:176 24:190 25:207 26:41 27:27 28:52 29:21 30:84 31:117 32:79
    33:146 34:29 35:19 36:27 37:12 38:24 39:243 40:210 41:247""".split())


def reference_matrix(text: bytes) -> np.ndarray:
    """The matrix read independently of the builder's parser: whitespace-separated integers, 768 rows."""
    return np.array(text.split(), dtype=np.int64).reshape(768, -1)


def sample(samples, number):
    folder = samples / "nucleussegdata" / "dataset"
    return (folder / "images" / f"{number}.jpg").read_bytes(), (folder / "annotations" / number).read_bytes()


def touching_pairs(labels):
    """Horizontally adjacent pixel pairs that belong to two different nuclei."""
    left, right = labels[:, :-1], labels[:, 1:]
    return int(((left != right) & (left > 0) & (right > 0)).sum())


@pytest.mark.parametrize("number", sorted(NUCLEI))
def test_real_annotations_parse_exactly(samples, number):
    image_bytes, text = sample(samples, number)
    image = PILImage.open(io.BytesIO(image_bytes))
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (1024, 768))
    assert text.endswith(b" \n") and text.count(b"\n") == 768  # the trailing space on every line
    matrix = parse_matrix(text, f"annotations/{number}", (image.height, image.width))
    reference = reference_matrix(text)
    assert matrix.shape == (768, 1024) and np.array_equal(matrix, reference)
    assert matrix.max() == int(NUCLEI[number]) and len(np.unique(matrix)) == int(NUCLEI[number]) + 1
    labels = relabel_sequential(matrix)
    assert labels.max() == int(NUCLEI[number])
    assert touching_pairs(labels) == touching_pairs(matrix)


def test_touching_nuclei_in_image_27_stay_distinct(samples):
    _, text = sample(samples, "27")
    matrix = parse_matrix(text, "27", (768, 1024))
    assert touching_pairs(matrix) == 225  # specs: 225 horizontal pairs in image 27


EXPECTED = {"train": (10, 785), "test_hepg2": (16, 985), "test_huh7": (11, 891)}  # images, nuclei
HUH7 = range(26, 42)  # author numbers 1-25 are HepG2, 26-41 Huh7 (samples README)


def test_the_original_release_builds_exactly_from_the_37_real_pairs(samples, nsd_real, nsd_real_staged):
    """`upload.py build --config original` with verification on, on the real pairs in the lab's layout."""
    numbers = nsd_real[1]
    ds = load_dataset(str(nsd_real_staged), "original")
    assert {split: (len(ds[split]), sum(len(o) for o in ds[split]["objects"])) for split in ds} == EXPECTED
    cell_line = ds["train"].features["cell_line"]
    for split in ds:
        raw = ds[split].cast_column("image", Image(decode=False))
        for i, row in enumerate(ds[split]):
            number = numbers[row["image_id"]]
            image_bytes, text = sample(samples, str(number))
            assert raw[i]["image"]["bytes"] == image_bytes  # JPEG bytes as published
            matrix = reference_matrix(text)
            mask = np.asarray(row["instance_mask"])
            assert row["instance_mask"].mode == "I;16" and mask.shape == matrix.shape
            assert len(row["objects"]) == matrix.max() == mask.max()
            # pixel for pixel the same partition: each upstream id maps to exactly one stored id, 0 to 0
            pairs = np.unique((matrix << 16) | mask.astype(np.int64))
            assert len(pairs) == len(np.unique(pairs >> 16)) == len(np.unique(pairs & 0xFFFF)) == matrix.max() + 1
            assert ((matrix == 0) == (mask == 0)).all()
            assert touching_pairs(mask) == touching_pairs(matrix)
            areas = np.bincount(mask.ravel())[1:]
            assert [(o["instance_id"], o["area"]) for o in row["objects"]] == list(enumerate(areas.tolist(), start=1))
            expected_line = "Huh7" if number in HUH7 else "HepG2"
            assert cell_line.int2str(row["cell_line"]) == expected_line, row["image_id"]  # training: from the counts
