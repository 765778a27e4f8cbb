"""The cards' and the README's "Train with PyTorch", "COCO" and several-sources code, run as written (only the
repo id, and for other configs the config and split, substituted) against the loopback Hub, on every config."""

import contextlib
import io
import json
import math
import os
import itertools
import re
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pytest
from datasets import load_dataset
from huggingface_hub import DatasetCard
from PIL import Image as PILImage

from builders import CORE_FEATURES, publish
from conftest import PUBLISHED

WHY = "the PyTorch and COCO recipe tests need the torch extra: pip install -e '.[test,torch]'"
torch = pytest.importorskip("torch", reason=WHY)
pytest.importorskip("torchvision", reason=WHY)
pytest.importorskip("pycocotools", reason=WHY)
from pycocotools import mask as mask_utils  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402
from torchvision import tv_tensors  # noqa: E402

README = Path(__file__).resolve().parent.parent / "README.md"
ORG = "recipes-org"
TARGET_LINE = re.compile(r'^REPO, CONFIG, SPLIT = "ORG/[^"]+", "[^"]+", "[^"]+"$', re.M)


@pytest.fixture(autouse=True)
def _no_shutdown_sleep(monkeypatch):
    # datasets sleeps 5 s after every shuffled or interleaved stream (apache/arrow#45214); not what is tested here
    monkeypatch.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0)


def blocks(markdown: str, heading: str) -> list[str]:
    section = markdown.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def pushed(staged: Path) -> tuple[str, str, list[str]]:
    """(Hub repo id, card text, config names) of a staged repo pushed to the loopback Hub."""
    repo_id = f"{ORG}/{staged.name}"
    publish.push(staged, repo_id, allow_unverified=True)
    card = DatasetCard.load(staged / "README.md")
    return repo_id, card.text, [c["config_name"] for c in card.data.to_dict()["configs"]]


def retarget(code: str, repo_id: str, config: str, split: str) -> str:
    assert len(TARGET_LINE.findall(code)) == 1
    return TARGET_LINE.sub(f'REPO, CONFIG, SPLIT = "{repo_id}", "{config}", "{split}"', code)


def run(code: str, namespace: dict | None = None) -> dict:
    namespace = {} if namespace is None else namespace
    exec(compile(code, "recipe", "exec"), namespace)
    return namespace


def pixel_sum(image) -> float:
    """The sum of an image as the recipe should see it: grey to three channels, no alpha, scaled to [0, 1]."""
    array = np.asarray(image)
    channels = np.stack([array] * 3, axis=-1) if array.ndim == 2 else array[..., :3]
    return float(channels.astype(np.float64).sum() / np.iinfo(array.dtype).max)


def expected_label(obj, label) -> int:
    return obj[label] + 1 if label else 1


def check_target(image, target, classes: int) -> None:
    """Masks, boxes and labels agree with each other and with the image."""
    h, w = image.shape[-2:]
    masks, boxes, labels = target["masks"], target["boxes"], target["labels"]
    assert isinstance(masks, tv_tensors.Mask) and masks.dtype == torch.bool and tuple(masks.shape[1:]) == (h, w)
    assert isinstance(boxes, tv_tensors.BoundingBoxes) and boxes.format.name == "XYXY"
    assert tuple(boxes.canvas_size) == (h, w) and len(masks) == len(boxes) == len(labels)
    assert labels.dtype == torch.int64 and all(1 <= int(v) <= classes for v in labels)
    for mask, box in zip(masks, boxes):
        rows, cols = np.nonzero(mask.numpy())
        assert rows.size, "an object without pixels"
        assert box.tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]  # the mask's pixel-edge box
        assert 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h


def check_batches(batches, local, namespace) -> None:
    """Two batches of up to 4: labelled rows as targets that keep every object when the image fits the tile (the
    crop then only pads), unlabelled rows as None."""
    label, classes = namespace["LABEL"], len(namespace["CLASSES"])
    sizes = [len(images) for images, _ in batches]  # each worker batches the rows of its own Parquet files
    assert all(len(images) == len(targets) for images, targets in batches)
    assert all(1 <= size <= 4 for size in sizes) and (len(batches) == 2 or sum(sizes) == len(local))
    by_id = {row["image_id"]: row for row in local}
    unlabelled = {row["instance_mask"] is None for row in local}
    seen = []
    for images, targets in batches:
        assert len({tuple(image.shape) for image in images}) == 1  # one tile size
        for image, target in zip(images, targets):
            assert isinstance(image, tv_tensors.Image) and image.dtype == torch.float32 and image.shape[0] == 3
            assert 0 <= float(image.min()) and float(image.max()) <= 1
            assert (target is None) in unlabelled  # (these splits are all labelled or all unlabelled)
            if target is None:
                continue
            check_target(image, target, classes)
            row = by_id[target["image_id"]]
            seen.append(target["image_id"])
            height, width = np.asarray(row["image"]).shape[:2]
            if height <= image.shape[-2] and width <= image.shape[-1]:  # nothing cut: every object kept
                assert math.isclose(float(image.double().sum()), pixel_sum(row["image"]), rel_tol=1e-5)
                got = sorted(zip(target["masks"].flatten(1).sum(1).tolist(), target["labels"].tolist()))
                assert got == sorted((o["area"], expected_label(o, label)) for o in row["objects"] if o["area"])
    assert len(seen) == len(set(seen))


def check_small_tiles(namespace, rows, seed: int) -> int:
    """A tile smaller than every image, so the crop cuts objects: the transform moves image, masks and stored
    boxes together, and the targets keep what is left inside. Returns how many objects the crop cut."""
    namespace["augment"] = namespace["augmentation"](tile=24)
    classes, cut = len(namespace["CLASSES"]), 0
    for i, row in enumerate(r for r in rows if r["instance_mask"] is not None):
        label_image = np.asarray(row["instance_mask"])
        # the image replaced by its own foreground: afterwards it must show exactly the union of the masks
        probe = {**row, "image": PILImage.fromarray(np.where(label_image > 0, 255, 0).astype(np.uint8))}
        torch.manual_seed(seed + i)
        image, target = namespace["augment"](*namespace["to_sample"](probe))
        assert tuple(image.shape[-2:]) == (24, 24)
        assert torch.equal(image[0] > 0.5, target["masks"].any(0))
        areas = [obj["area"] for obj in row["objects"]]
        for area, mask, box in zip(areas, target["masks"], target["boxes"]):
            if area and int(mask.sum()) == area:  # entirely inside the tile: the stored box moved with it
                rows_, cols = np.nonzero(mask.numpy())
                assert box.tolist() == [cols.min(), rows_.min(), cols.max() + 1, rows_.max() + 1]
            cut += int(mask.sum()) < area
        check_target(image, namespace["fit_boxes"](target), classes)
    images, targets = namespace["collate"](rows)
    assert len(images) == len(targets) == len(rows)
    for image, target in zip(images, targets):
        assert tuple(image.shape[-2:]) == (24, 24)
        if target is not None:
            check_target(image, target, classes)
    return cut


def test_card_pytorch_recipe_batches_every_split_of_every_config(source, staged, hub):
    repo_id, card, configs = pushed(staged(source))
    code = blocks(card, "Train with PyTorch")[0]
    cut = 0
    for config in configs:
        for split, local in load_dataset(str(staged(source)), config).items():
            namespace = run(retarget(code, repo_id, config, split))
            assert namespace["loader"].num_workers == 2 and namespace["loader"].batch_size == 4
            check_batches(list(itertools.islice(namespace["loader"], 2)), local, namespace)
            if any(len(objects) for objects in local["objects"]):
                cut += check_small_tiles(namespace, list(itertools.islice(namespace["ds"], 8)), seed=len(split))
    assert cut, "the small tiles cut no object"


def test_card_training_step_trains_mask_rcnn(nucls_staged, hub):
    """The card's Mask R-CNN step, on the smallest labelled split (one batch: a CPU step takes seconds)."""
    repo_id, card, configs = pushed(nucls_staged)
    splits = [(len(ds), config, split) for config in configs
              for split, ds in load_dataset(str(nucls_staged), config).items() if sum(map(len, ds["objects"]))]
    _, config, split = min(splits)
    data, step = blocks(card, "Train with PyTorch")
    namespace = run(retarget(data, repo_id, config, split))
    torch.manual_seed(0)
    run(step, namespace)
    assert torch.isfinite(namespace["loss"]) and namespace["loss"].requires_grad
    assert namespace["model"].roi_heads.box_predictor.cls_score.out_features == len(namespace["CLASSES"]) + 1


def self_ap(coco: COCO, iou_type: str) -> float:
    """COCOeval AP@[.5:.95] of the ground truth against itself (every annotation a detection with score 1)."""
    annotations = coco.dataset["annotations"]
    detections = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0,
                   **({"bbox": a["bbox"]} if iou_type == "bbox" else {"segmentation": coco.annToRLE(a)})}
                  for a in annotations]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = COCOeval(coco, coco.loadRes(detections), iou_type)
        evaluation.params.maxDets = [max(Counter(a["image_id"] for a in annotations).values())]  # every object
        evaluation.params.areaRng, evaluation.params.areaRngLbl = [[0, 1e10]], ["all"]
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"][:, :, :, 0, 0]  # IoU thresholds x recall x categories; all areas
    return float(precision[precision > -1].mean())  # summarize()'s AP, without its cap of 100 objects an image


def check_coco(path: Path, local, label, rle: bool = False) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    raw = local.cast_column("image", datasets.Image(decode=False))
    by_id = {row["image_id"]: (i, row) for i, row in enumerate(local)}
    assert len(coco.imgs) == len(local)
    names = local.features["objects"].feature[label].names if label else None
    assert len(coco.cats) == (len(names) if label else 1)
    annotations = 0
    for image in coco.imgs.values():
        i, row = by_id[os.path.splitext(image["file_name"])[0]]
        assert (path.parent / "images" / image["file_name"]).read_bytes() == raw[i]["image"]["bytes"]
        assert (image["width"], image["height"]) == row["image"].size
        anns = sorted(coco.imgToAnns[image["id"]], key=lambda a: a["id"])
        assert len(anns) == len(row["objects"])
        annotations += len(anns)
        for ann, obj in zip(anns, row["objects"]):
            assert ann["bbox"] == obj["bbox"] and ann["area"] == obj["area"] and ann["iscrowd"] == 0
            category = coco.cats[ann["category_id"]]["name"]
            assert category == (names[obj[label]] if label else coco.cats[1]["name"])
            if not rle:
                assert ann["segmentation"] == obj["polygons"]
            else:
                exact = np.asarray(row["instance_mask"]) == obj["instance_id"]
                assert np.array_equal(mask_utils.decode(ann["segmentation"]).astype(bool), exact)
    assert annotations == len(coco.anns) == sum(len(objects) for objects in local["objects"])
    if annotations and not rle:
        assert self_ap(coco, "bbox") == pytest.approx(1.0), path
        assert self_ap(coco, "segm") == pytest.approx(1.0), path


def test_card_coco_export_of_every_split_evaluates_to_itself(source, staged, hub, tmp_path, monkeypatch):
    staged = staged(source)
    repo_id, card, configs = pushed(staged)
    code = blocks(card, "COCO")[0]
    for config in configs:
        for split, local in load_dataset(str(staged), config).items():
            folder = tmp_path / config / split
            folder.mkdir(parents=True)
            monkeypatch.chdir(folder)
            namespace = run(retarget(code, repo_id, config, split))
            check_coco(folder / f"instances_{split}.json", local, namespace["LABEL"])
            if any(len(objects) for objects in local["objects"]):  # the RLE form, exact with holes
                rle_folder = folder / "rle"
                rle_folder.mkdir()
                coco = namespace["to_coco"](repo_id, config, split, namespace["LABEL"],
                                            image_dir=str(rle_folder / "images"), rle=True)
                (rle_folder / "instances.json").write_text(json.dumps(coco))
                check_coco(rle_folder / "instances.json", local, namespace["LABEL"], rle=True)


def test_readme_recipes_are_the_nucls_cards_code(nucls_staged):
    card = DatasetCard.load(nucls_staged / "README.md").text
    readme = README.read_text()
    for heading in ("Train with PyTorch", "COCO"):
        assert blocks(readme, heading) == blocks(card, heading)
        assert len(blocks(readme, heading)) >= 1


def test_readme_several_sources_stream_as_one_and_batch(staged, hub):
    staged = {source: staged(source) for source in PUBLISHED}  # the README's code names the published sources
    for path in staged.values():
        pushed(path)
    readme = README.read_text()
    train = blocks(readme, "Train with PyTorch")[0].replace("ORG/", f"{ORG}/")
    several = blocks(readme, "Training on several sources")[0]
    repos = sorted(set(re.findall(r'core\("ORG/([^"]+)", "([^"]+)", "([^"]+)"\)', several)))
    assert {repo for repo, _, _ in repos} == {path.name for path in staged.values()}
    namespace = run(several.replace("ORG/", f"{ORG}/"), run(train))
    mixed = namespace["mixed"]
    core = {name: feature for name, feature in CORE_FEATURES.items() if name != "preview"}
    assert mixed.features == datasets.Features({**core, "image": datasets.Image(mode="RGB"), "source": datasets.Value("string")})
    rows = list(itertools.islice(mixed, 24))
    for repo, config, split in repos:
        path = next(p for p in staged.values() if p.name == repo)
        local = {row["image_id"]: row for row in load_dataset(str(path), config, split=split)}
        mine = [row for row in rows if row["source"] == f"{ORG}/{repo}"]
        assert mine and len({row["image_id"] for row in mine}) == min(len(mine), len(local))
        for row in mine:
            expected = local[row["image_id"]]
            assert row["image"].mode == "RGB"
            assert np.array_equal(np.asarray(row["image"]), np.asarray(expected["image"].convert("RGB")))
            assert row["objects"] == [{k: o[k] for k in ("instance_id", "bbox", "area", "polygons")}
                                      for o in expected["objects"]]
    batches = list(itertools.islice(namespace["loader"], 2))
    assert [len(images) for images, _ in batches] == [4, 4]
    for images, targets in batches:
        for image, target in zip(images, targets):
            check_target(image, target, classes=1)
