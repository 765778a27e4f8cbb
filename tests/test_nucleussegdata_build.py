"""NucleusSegData built from fake lab zips in the published layout, and its text-matrix parser."""

import logging
import re
import shutil
import zipfile

import datasets
import numpy as np
import pytest
from datasets import Image, load_dataset

from builders import REGISTRY, core_view, schema, staging
from builders.errors import BuildError
from builders.fakes import nucleussegdata as fake
from builders.fakes import write_zip
from builders.nucleussegdata import OFFICIAL_COUNTS, NucleusSegData, annotated_stem, parse_matrix

SPLITS = ("train", "test_hepg2", "test_huh7")


def build(upstream, out, **kwargs):
    return staging.build(NucleusSegData, out=out, data_dir=upstream, **{"verify": False, **kwargs})


def rows_of(staged, config):
    ds = load_dataset(str(staged), config)
    return {split: {row["image_id"]: row for row in ds[split]} for split in ds}, ds


# --- the parser ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    (b"1 2 3 \n4 x 6 \n", r"f: line 2, column 2: 'x' is not a non-negative integer"),
    (b"1 2 3 \n4 5 -6 \n", r"f: line 2, column 3: '-6' is not a non-negative integer"),
    (b"1 2.5 3 \n4 5 6 \n", r"f: line 1, column 2: '2.5' is not a non-negative integer"),
    (b"1 2 3 \n4 5 \n", r"f: line 2 has 2 values, expected 3 .*column 3 is missing"),
    (b"1 2 3 4 \n4 5 6 \n", r"f: line 1 has 4 values, expected 3 .*column 4 is one too many"),
    (b"1 2 3 \n", r"f: 1 lines, expected 2"),
    (b"1 2 3 \n4 5 6 \n7 8 9 \n", r"f: 3 lines, expected 2"),
    (b"1 2 3 \n\n4 5 6 \n", r"f: 3 lines, expected 2"),  # a blank line is a line, not skipped
    (b"1 2 3 \n\n", r"f: line 2 has 0 values"),
    (b"1 2 3 \n4 1234567890 6 \n", r"f: line 2, column 2: '1234567890' is too large"),
    (b"", r"f: 1 lines, expected 2"),
])
def test_malformed_matrices_name_the_file_line_and_column(text, message):
    with pytest.raises(BuildError, match=message):
        parse_matrix(text, "f", (2, 3))


@pytest.mark.parametrize("text", [
    b"1 2 3 \n4 5 6 \n",  # the lab's format: trailing space, LF
    b"1 2 3\n4 5 6",  # no trailing space, no final newline
    b"1  2\t3 \r\n4 5 6 \r\n",  # CRLF, tabs and double spaces
    b"001 2 3 \n4 5 123456789 \n",
])
def test_whitespace_variants_parse_to_the_same_values(text):
    expected = [[1, 2, 3], [4, 5, 123456789 if b"123456789" in text else 6]]
    assert parse_matrix(text, "f", (2, 3)).tolist() == expected


def test_a_real_sized_matrix_round_trips():
    labels = fake.annotation(np.random.default_rng(3), 120, (1024, 768))
    assert np.array_equal(parse_matrix(fake.matrix_text(labels), "f", (768, 1024)), labels)


@pytest.mark.parametrize("name, stem", [
    ("tr_ann1", "tr1"), ("hepg2_ts_ann12", "hepg2_ts12"), ("huh7_ts_ann3.txt", "huh7_ts3"),
    ("huh7_ts6_gold", "huh7_ts6"), ("huh7_ts6_gold.TXT", "huh7_ts6"), ("tr1_ann", "tr1"),
    ("tr1.jpg", None), ("readme", None), ("Thumbs.db", None),
])
def test_every_annotation_naming_maps_to_its_image(name, stem):
    assert annotated_stem(name) == stem


# --- builds from fake lab zips ---------------------------------------------------------------

def test_both_configs_build_with_official_counts_and_cell_lines(nsd_fake, nsd_staged):
    _, manifest = nsd_fake
    files = sorted(str(p.relative_to(nsd_staged)) for p in nsd_staged.rglob("*.parquet"))
    assert files == [f"{c}/{s}-00000-of-00001.parquet" for c in ("extended", "original")
                     for s in ("test_hepg2", "test_huh7", "train")]
    for config in ("original", "extended"):
        rows, ds = rows_of(nsd_staged, config)
        assert ds["train"].features == NucleusSegData.features()
        cell_line = ds["train"].features["cell_line"]
        for split in SPLITS:
            expected = manifest["objects"][config][split]
            assert list(rows[split]) == sorted(expected, key=lambda stem: int(re.search(r"\d+$", stem)[0]))
            assert (len(rows[split]), sum(expected.values())) == OFFICIAL_COUNTS[config].splits[split]
            raw = ds[split].cast_column("image", Image(decode=False))
            archive = zipfile.ZipFile(manifest["archives"][config])
            for i, (stem, row) in enumerate(rows[split].items()):
                folder = fake.FOLDERS[split][0]
                assert raw[i]["image"]["bytes"] == archive.read(f"{NucleusSegData.ARCHIVES[config].folder}/{folder}/{stem}.jpg")
                mask = np.asarray(row["instance_mask"])
                assert mask.shape == (192, 256) and len(row["objects"]) == expected[stem] == mask.max()
                assert sorted(np.unique(mask)[1:].tolist()) == list(range(1, expected[stem] + 1))
                line = manifest["cell_line"][config][split][stem]
                assert (None if row["cell_line"] is None else cell_line.int2str(row["cell_line"])) == line
        lines = [row["cell_line"] for row in rows["train"].values()]
        if config == "original":  # 5 + 5 from the per-image counts, whatever the order in TrainingSet
            assert sorted(cell_line.int2str(v) for v in lines) == ["HepG2"] * 5 + ["Huh7"] * 5
        else:
            assert lines == [None] * 25
        ids = [set(rows[split]) for split in SPLITS]
        assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])  # no image in two splits


def test_touching_nuclei_stay_distinct_instances(nsd_staged):
    rows, _ = rows_of(nsd_staged, "original")
    for row in rows["test_huh7"].values():
        mask = np.asarray(row["instance_mask"])
        left, right = mask[:, :-1], mask[:, 1:]
        assert ((left != right) & (left > 0) & (right > 0)).any()  # the fake's first two nuclei touch


@pytest.mark.parametrize("naming, txt", [("gold", False), ("gold", True), ("stem_ann", False), ("ann", True)])
def test_other_annotation_namings_build_the_same_rows(tmp_path, nsd_fake, nsd_staged, naming, txt):
    manifest = fake.write_archives(tmp_path / "up", naming=naming, txt=txt)
    names = zipfile.ZipFile(manifest["archives"]["original"]).namelist()
    assert f"NucleusSegData/Huh7TestSet/{fake.annotation_name('huh7_ts', 6, naming, txt)}" in names
    staged = build(tmp_path / "up", tmp_path / "hub")
    for config in ("original", "extended"):
        assert load_dataset(str(staged), config).data == load_dataset(str(nsd_staged), config).data


@pytest.mark.parametrize("where", ["no top folder", "nested", "extracted, other name", "zip, other name"])
def test_the_set_folders_are_found_wherever_they_sit(tmp_path, nsd_staged, where):
    up = tmp_path / "up"
    if where == "no top folder":
        fake.write_archives(up, configs=("original",), top=None)
    elif where == "nested":
        fake.write_archives(up, configs=("original",), top="downloads/NucleusSegData")
    else:
        manifest = fake.write_archives(tmp_path / "zips", configs=("original",))
        if where == "zip, other name":
            (up / "lab").mkdir(parents=True)
            shutil.copy(manifest["archives"]["original"], up / "lab" / "nucleus_seg_data_v1.zip")
        else:
            with zipfile.ZipFile(manifest["archives"]["original"]) as archive:
                archive.extractall(tmp_path / "x")
            shutil.move(tmp_path / "x" / "NucleusSegData", up / "my copy")
    staged = build(up, tmp_path / "hub", configs=["original"])
    assert load_dataset(str(staged), "original").data == load_dataset(str(nsd_staged), "original").data


def test_the_extended_copy_is_never_taken_for_the_original(tmp_path):
    fake.write_archives(tmp_path / "up", configs=("extended",))
    with pytest.raises(BuildError, match="neither NucleusSegData.zip nor an extracted NucleusSegData/ folder"):
        build(tmp_path / "up", tmp_path / "hub", configs=["original"])


def test_copies_under_other_names_are_told_apart_by_their_training_images(tmp_path, nsd_staged):
    manifest = fake.write_archives(tmp_path / "zips")
    up = tmp_path / "up"
    with zipfile.ZipFile(manifest["archives"]["original"]) as archive:  # extracted without its top folder
        for member in archive.namelist():
            if not member.endswith("/"):
                target = up / member.split("/", 1)[1]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
    shutil.copy(manifest["archives"]["extended"], up / "nsd_2020.zip")  # beside the set folders
    (up / "__MACOSX" / "TrainingSet").mkdir(parents=True)  # resource forks are not a copy
    (up / "__MACOSX" / "HepG2TestSet").mkdir()
    (up / "__MACOSX" / "Huh7TestSet").mkdir()
    staged = build(up, tmp_path / "hub")
    for config in ("original", "extended"):
        assert load_dataset(str(staged), config).data == load_dataset(str(nsd_staged), config).data


def test_one_unnamed_copy_is_never_taken_for_the_other_version(tmp_path):
    manifest = fake.write_archives(tmp_path / "zips", configs=("original",))
    (tmp_path / "up").mkdir()
    shutil.copy(manifest["archives"]["original"], tmp_path / "up" / "nucleussegdata.zip")
    staged = build(tmp_path / "up", tmp_path / "hub", configs=["original"])
    assert load_dataset(str(staged), "original", split="train").num_rows == 10
    with pytest.raises(BuildError, match=r"neither NucleusSegDataExtended.zip nor .*nor another folder or zip of it"):
        build(tmp_path / "up", tmp_path / "hub", configs=["extended"])


def test_two_unnamed_copies_of_one_version_are_ambiguous(tmp_path):
    manifest = fake.write_archives(tmp_path / "zips", configs=("original",))
    (tmp_path / "up").mkdir()
    shutil.copy(manifest["archives"]["original"], tmp_path / "up" / "a.zip")
    shutil.copy(manifest["archives"]["original"], tmp_path / "up" / "b.zip")
    with pytest.raises(BuildError, match=r"2 copies could be NucleusSegData.zip .*a\.zip.*b\.zip.*rename the right one"):
        build(tmp_path / "up", tmp_path / "hub", configs=["original"])


def test_a_web_page_instead_of_the_zip_says_where_to_download_by_hand(tmp_path, monkeypatch):
    import dataclasses
    import functools
    import http.server
    import threading

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "NucleusSegData.zip").write_bytes(b"<html>Moved to the new lab page</html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "site"))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/NucleusSegData.zip"
        archives = {**NucleusSegData.ARCHIVES, "original": dataclasses.replace(NucleusSegData.ARCHIVES["original"], url=url)}
        monkeypatch.setattr(NucleusSegData, "ARCHIVES", archives)
        for _ in range(2):  # the bad download is not cached: the second run fails the same way
            with pytest.raises(BuildError, match=r"NucleusSegData.zip: the download from .* is not the archive .*"
                                                 r"by hand from https://mysite.ku.edu.tr/.*--data-dir"):
                staging.build(NucleusSegData, out=tmp_path / "hub", configs=["original"])
    finally:
        server.shutdown()
    assert not (tmp_path / "hub" / "nucleussegdata").exists()


def lab_zip(path, members):
    return write_zip(path / "NucleusSegData.zip", {f"NucleusSegData/{k}": v for k, v in members.items()})


def pair(stem, labels, annotation):
    return {f"{stem}.jpg": fake.image_for(labels, np.random.default_rng(0)), annotation: fake.matrix_text(labels)}


def test_a_matrix_of_the_wrong_shape_fails_with_the_file_and_line(tmp_path):
    labels = fake.annotation(np.random.default_rng(0), 5, (64, 48))
    members = {**pair("TrainingSet/tr1", labels, "TrainingSet/tr_ann1")}
    members["TrainingSet/tr_ann1"] = fake.matrix_text(labels[:, :-1])
    lab_zip(tmp_path, members)
    with pytest.raises(BuildError, match=r"NucleusSegData.zip:NucleusSegData/TrainingSet/tr_ann1: line 1 has 63 values, expected 64 .*column 64 is missing"):
        build(tmp_path, tmp_path / "hub", configs=["original"])
    assert not (tmp_path / "hub" / "nucleussegdata").exists()


def test_unpaired_files_are_errors_or_warnings_with_no_verify(tmp_path, caplog):
    labels = fake.annotation(np.random.default_rng(0), 5, (64, 48))
    members = {**pair("TrainingSet/tr1", labels, "TrainingSet/tr_ann1"), **pair("TrainingSet/tr2", labels, "TrainingSet/x"),
               "HepG2TestSet/hepg2_ts_ann1": fake.matrix_text(labels)}
    del members["TrainingSet/x"]
    lab_zip(tmp_path, members)
    with pytest.raises(BuildError, match=r"TrainingSet/tr2.jpg: image without annotation"):
        staging.build(NucleusSegData, out=tmp_path / "hub", data_dir=tmp_path, configs=["original"], verify=True)
    with caplog.at_level(logging.WARNING, logger="builders"):
        staged = build(tmp_path, tmp_path / "hub", configs=["original"])
    assert "annotation without image hepg2_ts1.jpg" in caplog.text and "Huh7TestSet: folder missing" in caplog.text
    assert load_dataset(str(staged), "original", split="train")["image_id"] == ["tr1"]


def test_two_annotations_for_one_image_are_an_error(tmp_path):
    labels = fake.annotation(np.random.default_rng(0), 5, (64, 48))
    lab_zip(tmp_path, {**pair("TrainingSet/tr1", labels, "TrainingSet/tr_ann1"), "TrainingSet/tr1_gold": fake.matrix_text(labels)})
    with pytest.raises(BuildError, match=r"two files for tr1: tr1_gold and tr_ann1|two files for tr1: tr_ann1 and tr1_gold"):
        build(tmp_path, tmp_path / "hub", configs=["original"])


def test_official_counts_are_verified(tmp_path, caplog):
    counts = {"original": {**fake.ORIGINAL, "test_huh7": fake.ORIGINAL["test_huh7"][:-1] + [246]}}
    fake.write_archives(tmp_path / "up", configs=("original",), counts=counts)
    with pytest.raises(BuildError, match=r"nucleussegdata original/test_huh7: 890 objects, the official count is 891"):
        staging.build(NucleusSegData, out=tmp_path / "hub", data_dir=tmp_path / "up", configs=["original"], verify=True)
    assert not (tmp_path / "hub" / "nucleussegdata").exists()
    with caplog.at_level(logging.WARNING, logger="builders"):
        build(tmp_path / "up", tmp_path / "hub", configs=["original"])
    assert "890 objects, the official count is 891" in caplog.text


def test_an_unmatched_training_count_leaves_cell_line_empty(tmp_path, caplog):
    counts = {"original": {"train": [10, 11]}}  # 11 is no published training count
    fake.write_archives(tmp_path / "up", configs=("original",), counts=counts, seed=1)
    with caplog.at_level(logging.WARNING, logger="builders"):
        staged = build(tmp_path / "up", tmp_path / "hub", configs=["original"])
    rows = {r["image_id"]: r for r in load_dataset(str(staged), "original", split="train")}
    assert sorted((len(r["objects"]), r["cell_line"]) for r in rows.values()) == [(10, 0), (11, None)]
    assert "11 nuclei matches no published training image count" in caplog.text


def test_failed_download_says_where_to_download_by_hand(tmp_path, monkeypatch):
    import dataclasses

    archives = {c: dataclasses.replace(a, url="http://127.0.0.1:9/" + a.name) for c, a in NucleusSegData.ARCHIVES.items()}
    monkeypatch.setattr(NucleusSegData, "ARCHIVES", archives)
    with pytest.raises(BuildError, match=r"NucleusSegData.zip: download from .* failed .*by hand from "
                                         r"https://mysite.ku.edu.tr/cgunduz/downloads/nucleussegdata/ .*--data-dir"):
        staging.build(NucleusSegData, out=tmp_path / "hub", configs=["original"])
    assert not (tmp_path / "hub" / "nucleussegdata").exists()


def test_core_columns_match_aitslab_and_concatenate(nsd_staged, aitslab_staged):
    ours = load_dataset(str(nsd_staged), "original", split="test_huh7")
    theirs = load_dataset(str(aitslab_staged), split="train")
    core = {name: ours.features[name] for name in schema.CORE_COLUMNS}
    assert core == {name: theirs.features[name] for name in schema.CORE_COLUMNS} == dict(schema.CORE_FEATURES)
    joined = datasets.concatenate_datasets([core_view(ours), core_view(theirs)])
    assert joined.features == schema.CORE_FEATURES and len(joined) == len(ours) + len(theirs)
    assert list(joined["image_id"]) == list(ours["image_id"]) + list(theirs["image_id"])
    assert joined[0]["objects"] == ours[0]["objects"]
    assert REGISTRY["nucleussegdata"] is NucleusSegData
