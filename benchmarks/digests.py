"""SHA-256 of every file of every staged repo, to prove a refactoring leaves the published bytes unchanged.

Builds each registered source from its fake archives (default and demo options, verification off)
and, where `../shared/samples` is present, real Aitslab and NucleusSegData (verification on), always
into the same folders under `--work` (paths appear in some card notices), and prints one line per
file: `<sha256>  <repo>/<path>`. Run it before and after a change and compare:

    python benchmarks/digests.py --work /tmp/digests > before.txt
    ... change ...
    python benchmarks/digests.py --work /tmp/digests > after.txt && diff before.txt after.txt
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from builders import REGISTRY, staging  # noqa: E402
from builders.errors import no_progress_bars  # noqa: E402
from builders.fakes import real_samples, write_fakes  # noqa: E402


def digests(repo: Path, label: str) -> list[str]:
    return [f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {label}/{path.relative_to(repo)}"
            for path in sorted(repo.rglob("*")) if path.is_file()]


def builds(work: Path):
    """(label, upstream folder writer, source id, verify, configs or None for all) of every build compared."""
    for source, cls in REGISTRY.items():
        for options in ("default", "demo"):
            yield (f"{'fake' if options == 'default' else 'demo'}-{source}",
                   lambda up, cls=cls, options=options: write_fakes(cls, up, options), source, False, None)
    samples = real_samples.samples_folder()
    if samples.is_dir():
        yield "real-aitslab", lambda up: real_samples.write_aitslab(samples, up), "aitslab-bioimaging1", True, None
        yield "real-nsd", lambda up: real_samples.write_nsd(samples, up), "nucleussegdata", True, ["original"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/digests", help="scratch folder (emptied first)")
    parser.add_argument("--only", nargs="*", help="labels to build (default: all)")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    logging.getLogger("builders").setLevel(logging.ERROR)
    for label, write, source, verify, configs in builds(work):
        if args.only and label not in args.only:
            continue
        upstream = work / "upstream" / label
        write(upstream)
        with no_progress_bars():
            repo = staging.build(REGISTRY[source], out=work / "hub" / label, data_dir=upstream, verify=verify,
                                  configs=configs)
        print("\n".join(digests(repo, label)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
