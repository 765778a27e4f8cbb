"""The README's "Training at scale" example, run as written against the loopback Hub for two ranks."""

import re
from pathlib import Path

import numpy as np
from datasets import load_dataset

from builders import publish

README = Path(__file__).resolve().parent.parent / "README.md"


def _example() -> str:
    section = README.read_text().split("## Training at scale", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_training_example_streams_disjoint_complete_ranks_from_the_hub(hub, fluocells_staged, monkeypatch):
    publish.push(fluocells_staged, "train-org/fluocells")
    code = _example().replace("ORG/fluocells", "train-org/fluocells")
    assert "train-org/fluocells" in code
    local = load_dataset(str(fluocells_staged), "v1", split="train")
    by_id = {image_id: i for i, image_id in enumerate(local["image_id"])}
    seen = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        namespace = {}
        exec(compile(code, "README.md", "exec"), namespace)
        ids = [row["image_id"] for row in namespace["ds"]]  # the rank's dataset as the example built it
        assert namespace["step"] + 1 == len(ids) > 0
        seen.append(ids)
        row, image, mask = namespace["row"], namespace["image"], namespace["mask"]
        expected = local[by_id[str(row["image_id"])]]
        assert image.dtype == np.uint8 and image.ndim == 3
        assert np.array_equal(image, np.asarray(expected["image"]))
        assert mask.dtype == np.uint16 and np.array_equal(mask, np.asarray(expected["instance_mask"]))
        assert int(mask.max()) == len(row["objects"]) == len(expected["objects"])
        assert [list(b) for b in namespace["boxes"]] == [o["bbox"] for o in expected["objects"]]
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted(local["image_id"])
    # One file, several row groups: reshard() gives the ranks row groups of their own to read.
    streamed = load_dataset("train-org/fluocells", "v1", split="train", streaming=True)
    assert streamed.num_shards == 1 and streamed.reshard().num_shards >= 2
