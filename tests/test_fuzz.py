"""Every upstream annotation parser and the image decoding, fuzzed with malformed input (hypothesis).

A parser either returns a well-formed result or raises `BuildError` (which names the file); any other
exception, or a call that does not return within `TIMEOUT` seconds, fails the test. Inputs are random
bytes, random text over each format's alphabet, and valid files mutated by truncation, byte flips,
deletions and insertions. Settings are derandomized, so CI sees the same examples every run.
"""

import contextlib
import io
import json
import signal

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from builders import REGISTRY, masks
from builders.aitslab_bioimaging1 import decode_annotation
from builders.errors import BuildError
from builders.fakes import png_bytes, write_fakes
from builders.fluocells import read_binary_mask, read_coco_dots
from builders.nucleussegdata import parse_matrix
from builders.nucls import CSV_COLUMNS, RAW_CLASSES, decode_mask, read_fold, read_nuclei

TIMEOUT = 5  # seconds per call: far above any legitimate parse of these small inputs
pytestmark = pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning",  # PIL on mutated TIFF tags
                                        "ignore:Tag data larger than file:UserWarning",
                                        "ignore:Truncated File Read:UserWarning")
FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=150,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


class Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds=TIMEOUT):
    def expire(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def parse(function, *args):
    """`function(*args)`, or None when it raised `BuildError` naming the file; anything else fails."""
    with time_limit():
        try:
            return function(*args)
        except BuildError as exc:
            assert "fuzzed" in str(exc), f"the error does not name the file: {exc}"
            return None


@st.composite
def mutated(draw, valid: bytes):
    """`valid` with a few random edits: truncation, byte flips, deletions, insertions of random bytes."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "flip", "delete", "insert"]))
        at = draw(st.integers(0, len(data)))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


def malformed(valid_files, alphabet: str):
    """Random bytes, random text over `alphabet`, or a valid file from `valid_files` mutated."""
    return st.one_of(st.binary(max_size=300), st.text(alphabet, max_size=300).map(str.encode),
                     valid_files.flatmap(mutated))


# --- NucleusSegData: text id matrices --------------------------------------------------------------

SHAPES = st.tuples(st.integers(1, 5), st.integers(1, 5))
matrices = SHAPES.flatmap(lambda shape: st.lists(st.lists(st.integers(0, 400), min_size=shape[1], max_size=shape[1]),
                                                 min_size=shape[0], max_size=shape[0]))
matrix_files = matrices.map(lambda rows: "".join(" ".join(map(str, row)) + " \n" for row in rows).encode())


@settings(FUZZ, max_examples=300)
@given(data=malformed(matrix_files, "0123456789 \n\t\r-.x"), shape=SHAPES)
@example(data=b"1 2 \n3 4 \n", shape=(2, 2))
@example(data=b"9" * 100 + b" \n", shape=(1, 1))
def test_nucleussegdata_matrix_parser(data, shape):
    matrix = parse(parse_matrix, data, "fuzzed", shape)
    if matrix is not None:  # accepted: exactly the values a whitespace split reads, in the image's shape
        lines = data.split(b"\n")
        if data.endswith(b"\n"):
            lines.pop()
        assert matrix.shape == shape and matrix.tolist() == [[int(v) for v in line.split()] for line in lines]


# --- NuCLS: per-FOV nucleus tables and fold files ----------------------------------------------------

HEADER = "," + ",".join(CSV_COLUMNS) + "\n"
coordinates = st.lists(st.integers(-5, 500), min_size=1, max_size=6).map(lambda v: ",".join(map(str, v)))
nucleus_rows = st.tuples(st.sampled_from(sorted(RAW_CLASSES)), st.sampled_from(["polyline", "rectangle"]),
                         st.lists(st.integers(0, 500), min_size=4, max_size=4), coordinates, coordinates)
nucleus_files = st.lists(nucleus_rows, max_size=4).map(lambda rows: (HEADER + "".join(
    f'{i},{raw},{RAW_CLASSES[raw][1]},{RAW_CLASSES[raw][2]},{kind},{",".join(map(str, box))},"{xs}","{ys}"\n'
    for i, (raw, kind, box, xs, ys) in enumerate(rows))).encode())


@settings(FUZZ, max_examples=300)
@given(data=malformed(nucleus_files, ',"\n\r 0123456789.-eintfxy_'))
@example(data=(HEADER + '0,tumor,tumor_nonMitotic,tumor_any,polyline,1,1,5,5,"1,5,5","1,1,1e400"\n').encode())
@example(data=b"\xff\xfe" + HEADER.encode())
def test_nucls_nucleus_csv_parser(data):
    nuclei = parse(read_nuclei, data, "fuzzed")
    for nucleus in nuclei or []:
        assert nucleus["raw"] in RAW_CLASSES and len(nucleus["box"]) == 4
        points = nucleus["points"]  # None: the box stands for the outline
        assert points is None or (points.shape[0] >= 3 and np.isfinite(points).all())


fold_files = st.lists(st.text("ABCDEFGHIJ-0123456789", min_size=1, max_size=12), max_size=5).map(
    lambda slides: (",slide_name,hospital,type,fold\n" + "".join(f"{i},{s},A2,train,1\n" for i, s in enumerate(slides))).encode())


@settings(FUZZ)
@given(data=malformed(fold_files, ',"\n\r slide_name-ABC0123'))
@example(data=b",slide_name\n0,\xff\n")
def test_nucls_fold_file_parser(data):
    slides = parse(read_fold, data, "fuzzed")
    assert slides is None or all(isinstance(s, str) and s for s in slides)


# --- fluocells: the authors' COCO file --------------------------------------------------------------

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)
dot_lists = st.lists(st.lists(st.integers(0, 100), min_size=2, max_size=2), max_size=4)
coco_annotations = st.fixed_dictionaries({"image_id": st.integers(1, 9).map(str), "dots": dot_lists, "count": st.integers(0, 4)})
coco_documents = st.fixed_dictionaries({"images": st.just([]), "annotations": st.lists(coco_annotations, max_size=3)})


@st.composite
def broken_coco(draw):
    """A COCO document with one key dropped or one value replaced by arbitrary JSON."""
    document = draw(coco_documents)
    target = document
    if document["annotations"] and draw(st.booleans()):
        target = document["annotations"][draw(st.integers(0, len(document["annotations"]) - 1))]
    key = draw(st.sampled_from(sorted(target)))
    if draw(st.booleans()):
        del target[key]
    else:
        target[key] = draw(json_values)
    return json.dumps(document).encode()


@settings(FUZZ, max_examples=300)
@given(data=st.one_of(broken_coco(), json_values.map(lambda v: json.dumps(v).encode()),
                      malformed(coco_documents.map(lambda d: json.dumps(d).encode()), '{}[]":,0123456789 dotsimage_')))
@example(data=b"[" * 100_000)
@example(data=b'{"annotations": [{"image_id": "1", "dots": [[1, true]]}]}')
def test_fluocells_coco_reader(data):
    dots = parse(read_coco_dots, data, "fuzzed")
    for stem, points in (dots or {}).items():
        assert isinstance(stem, str)
        assert all(len(p) == 2 and all(type(v) is int for v in p) for p in points)


# --- image decoding: the shared decoder and every mask / annotation reader -----------------------------

MODES = {"L": np.uint8, "RGB": np.uint8, "RGBA": np.uint8, "LA": np.uint8, "I;16": np.uint16, "1": bool, "P": np.uint8}


@st.composite
def image_files(draw):
    """A small valid PNG, JPEG or TIFF of one of the modes upstream files could have."""
    mode = draw(st.sampled_from(sorted(MODES)))
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    channels = {"RGB": 3, "RGBA": 4, "LA": 2}.get(mode)
    shape = (height, width, channels) if channels else (height, width)
    values = np.random.default_rng(draw(st.integers(0, 2**16))).integers(0, 256 if mode != "I;16" else 65536, shape)
    image = PILImage.fromarray(values.astype(MODES[mode]))
    image = image.convert(mode) if mode in ("LA", "1", "P") else image
    formats = ["PNG", "TIFF"] + (["JPEG"] if mode in ("L", "RGB") else [])
    buffer = io.BytesIO()
    image.save(buffer, format=draw(st.sampled_from(formats)))
    return buffer.getvalue()


images = st.one_of(st.binary(max_size=200), image_files(), image_files().flatmap(mutated))


NOISE_PNG = png_bytes(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))


@settings(FUZZ, max_examples=250)
@given(data=images)
@example(data=NOISE_PNG[:-12])  # the IEND chunk lost: the pixel data decodes, the file is still cut short
@example(data=NOISE_PNG[:-20])
@example(data=b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
def test_image_decoding(data):
    image = parse(masks.decode_image, data, "fuzzed")
    if image is not None:
        assert image.width >= 1 and image.height >= 1
        assert image.format != "PNG" or b"IEND" in data  # a PNG cut short after its pixel data is still cut short


@settings(FUZZ)
@given(data=images)
def test_aitslab_colour_annotation_decoding(data):
    labels = parse(decode_annotation, data, "fuzzed")
    assert labels is None or (labels.ndim == 2 and labels.dtype == np.uint16)


@settings(FUZZ)
@given(data=images, size=st.tuples(st.integers(1, 12), st.integers(1, 12)))
def test_fluocells_binary_mask_reading(data, size):
    binary = parse(read_binary_mask, data, "fuzzed", size)
    assert binary is None or (binary.dtype == bool and binary.shape == size[::-1])


@settings(FUZZ)
@given(data=images, shape=st.tuples(st.integers(1, 12), st.integers(1, 12)))
def test_nucls_mask_decoding(data, shape):
    decoded = parse(decode_mask, data, "fuzzed", shape)
    if decoded is not None:
        ids, code = decoded
        assert ids.shape == code.shape == shape and ids.dtype == np.int32 and ids.min() >= 0


def test_the_time_limit_stops_a_hanging_parser():
    with pytest.raises(Hang):
        with time_limit(0.05):
            while True:
                pass


# --- every source's declared parsers (`PARSERS`), on mutated members of its own fake archives ------------------

def _members(folder, pattern: str) -> list[bytes]:
    import re
    import zipfile

    found = []
    for path in sorted(folder.glob("*.zip")):
        with zipfile.ZipFile(path) as archive:
            found += [archive.read(name) for name in sorted(archive.namelist()) if re.search(pattern, name)]
    return found[:3]


PARSER_CASES = [pytest.param(source, pattern, id=f"{source}-{pattern}")
                for source, cls in REGISTRY.items() for pattern in cls.PARSERS]


@pytest.mark.parametrize("source, pattern", PARSER_CASES)
def test_every_parser_a_source_declares_parses_or_names_the_file(source, pattern, tmp_path_factory):
    cls, folder = REGISTRY[source], tmp_path_factory.mktemp(f"fuzz-{source}")
    write_fakes(cls, folder, "small")
    valid = _members(folder, pattern)
    assert valid, f"{source}: no member of its fake archives matches {pattern!r}"
    parser = cls.PARSERS[pattern]
    assert all(parse(parser, data, "fuzzed") is not None for data in valid)  # the fakes' own files parse

    @settings(FUZZ)
    @given(data=st.one_of(st.binary(max_size=300), st.sampled_from(valid).flatmap(mutated)))
    def fuzz(data):
        parse(parser, data, "fuzzed")

    fuzz()
