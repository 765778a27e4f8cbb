"""NucleusSegData on the four real image/annotation pairs of the first author's copy (samples)."""

import io

import numpy as np
import pytest
from datasets import Image, load_dataset
from PIL import Image as PILImage

from builders import staging
from builders.fakes import write_zip
from builders.masks import relabel_sequential
from builders.nucleussegdata import NucleusSegData, parse_matrix

NUCLEI = {"1": 10, "2": 7, "26": 41, "27": 27}  # specs: per-image counts (max label)
# Where each sample goes in a lab-layout zip: author number -> (set folder, stem, annotation name)
LAB_NAMES = {
    "1": ("TrainingSet", "tr1", "tr_ann1"),  # HepG2 training image
    "27": ("TrainingSet", "tr2", "tr_ann2"),  # Huh7 training image
    "2": ("HepG2TestSet", "hepg2_ts1", "hepg2_ts_ann1"),
    "26": ("Huh7TestSet", "huh7_ts1", "huh7_ts_ann1"),
}


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
    reference = np.loadtxt(io.BytesIO(text), dtype=np.int64)  # an independent reader of the same text
    assert matrix.shape == (768, 1024) and np.array_equal(matrix, reference)
    assert matrix.max() == NUCLEI[number] and len(np.unique(matrix)) == NUCLEI[number] + 1
    labels = relabel_sequential(matrix)
    assert labels.max() == NUCLEI[number]
    assert touching_pairs(labels) == touching_pairs(matrix)


def test_touching_nuclei_in_image_27_stay_distinct(samples):
    _, text = sample(samples, "27")
    matrix = parse_matrix(text, "27", (768, 1024))
    assert touching_pairs(matrix) == 225  # specs: 225 horizontal pairs in image 27


@pytest.fixture(scope="module")
def real_staged(samples, tmp_path_factory):
    """The four real pairs in the lab zip's layout, built (counts are partial, so --no-verify)."""
    members = {}
    for number, (folder, stem, annotation) in LAB_NAMES.items():
        image_bytes, text = sample(samples, number)
        members[f"NucleusSegData/{folder}/{stem}.jpg"] = image_bytes
        members[f"NucleusSegData/{folder}/{annotation}"] = text
    upstream = tmp_path_factory.mktemp("nsd-real")
    write_zip(upstream / "NucleusSegData.zip", members)
    out = tmp_path_factory.mktemp("nsd-real-hub")
    return staging.build(NucleusSegData, out=out, data_dir=upstream, configs=["original"], verify=False)


def test_real_pairs_build_with_the_mask_equal_to_the_matrix(samples, real_staged):
    ds = load_dataset(str(real_staged), "original")
    assert {split: ds[split]["image_id"] for split in ds} == {
        "train": ["tr1", "tr2"], "test_hepg2": ["hepg2_ts1"], "test_huh7": ["huh7_ts1"]}
    by_stem = {stem: number for number, (_, stem, _) in LAB_NAMES.items()}
    cell_line = ds["train"].features["cell_line"]
    for split in ds:
        raw = ds[split].cast_column("image", Image(decode=False))
        for i, row in enumerate(ds[split]):
            number = by_stem[row["image_id"]]
            image_bytes, text = sample(samples, number)
            assert raw[i]["image"]["bytes"] == image_bytes  # JPEG bytes as published
            matrix = np.loadtxt(io.BytesIO(text), dtype=np.int64)
            mask = np.asarray(row["instance_mask"])
            assert row["instance_mask"].mode == "I;16" and mask.shape == matrix.shape
            assert len(row["objects"]) == NUCLEI[number] == mask.max()
            # pixel for pixel the same partition: each upstream id maps to exactly one stored id, 0 to 0
            pairs = np.unique(np.stack([matrix.ravel(), mask.ravel().astype(np.int64)]), axis=1)
            assert pairs.shape[1] == NUCLEI[number] + 1
            assert len(set(pairs[0])) == len(set(pairs[1])) == pairs.shape[1]
            assert ((matrix == 0) == (mask == 0)).all()
            assert touching_pairs(mask) == touching_pairs(matrix)
            for k, obj in enumerate(row["objects"], start=1):
                ys, xs = np.nonzero(mask == k)
                assert obj["instance_id"] == k and obj["area"] == len(xs)
                assert obj["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            expected_line = {"1": "HepG2", "27": "Huh7", "2": "HepG2", "26": "Huh7"}[number]
            assert cell_line.int2str(row["cell_line"]) == expected_line  # training ones from their counts
