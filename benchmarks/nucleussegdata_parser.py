"""Time the NucleusSegData text-matrix parser against numpy.loadtxt and a plain Python reader.

    python benchmarks/nucleussegdata_parser.py [--repeat N]

Reads the real annotations in ../shared/samples/nucleussegdata (or $MICROSCOPY_SAMPLES) and a
full-size fake (1024x768, 247 nuclei); prints the best of N runs per file, in milliseconds.
"""

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from builders.fakes import nucleussegdata as fake  # noqa: E402
from builders.nucleussegdata import parse_matrix  # noqa: E402


def best(function, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times) * 1000, result


def python_reader(text):
    return np.array([[int(v) for v in line.split()] for line in text.decode().splitlines()])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    samples = Path(os.environ.get("MICROSCOPY_SAMPLES", root.parent / "shared" / "samples")) / "nucleussegdata/dataset/annotations"
    files = {f"real {p.name}": p.read_bytes() for p in sorted(samples.iterdir())} if samples.is_dir() else {}
    files["fake 247 nuclei"] = fake.matrix_text(fake.annotation(np.random.default_rng(0), 247, (1024, 768)))
    print(f"numpy {np.__version__}; best of {args.repeat} runs; milliseconds per 768x1024 file")
    print("| file | size | parse_matrix | numpy.loadtxt | python split+int | loadtxt / ours |")
    print("|---|---|---|---|---|---|")
    for name, text in files.items():
        ours, matrix = best(lambda: parse_matrix(text, name, (768, 1024)), args.repeat)
        loadtxt, reference = best(lambda: np.loadtxt(io.BytesIO(text), dtype=np.int64), args.repeat)
        plain, _ = best(lambda: python_reader(text), max(1, args.repeat // 2))
        assert np.array_equal(matrix, reference), name
        print(f"| {name} | {len(text) / 1e6:.2f} MB | {ours:.1f} | {loadtxt:.1f} | {plain:.0f} | {loadtxt / ours:.2f} |")


if __name__ == "__main__":
    main()
