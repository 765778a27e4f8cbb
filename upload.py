#!/usr/bin/env python
"""Build, check and list the microscopy segmentation datasets published on the Hugging Face Hub.

Commands:
  build SOURCE [SOURCE ...] | --all   parse the upstream archives into a staged Hub repo folder
  check DIR                           validate a staged repo folder offline (loads every config)
  push SOURCE [SOURCE ...] --org ORG  upload staged repos to the Hub (builds what is missing)
  list                                sources, configs, licences and upstream URLs
  demo                                offline: fake upstream archives -> build -> check, for every source

Exit codes: 0 success, 1 a failure the message explains, 2 bad command-line usage.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

EPILOG = """examples:
  python upload.py list
  python upload.py build aitslab-bioimaging1                  # download from Zenodo, verify, build into hub/
  python upload.py build --all --data-dir ~/downloads         # archives (or extracted trees) already on disk
  python upload.py check hub/aitslab-bioimaging1
  HF_TOKEN=hf_... python upload.py push aitslab-bioimaging1 --org my-org --create-pr   # review on the Hub first
  python upload.py demo                                       # offline, into demo/

Exit codes: 0 success, 1 a failure the message explains, 2 bad command-line usage.
"""


def _registry():
    from builders import REGISTRY

    return REGISTRY


class _Prefixed(logging.Formatter):
    """`warning: ...` for the builders' warnings; notes (which archive a build used) as they are."""

    def format(self, record: logging.LogRecord) -> str:
        return ("warning: " if record.levelno >= logging.WARNING else "") + record.getMessage()


def _setup_logging() -> None:
    import datasets

    datasets.logging.set_verbosity_error()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Prefixed())
    log = logging.getLogger("builders")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


def _shown(path: Path) -> str:
    """A path as the user would type it: relative below the working folder, else absolute."""
    relative = os.path.relpath(path)
    return str(Path(path).resolve()) if relative.startswith("..") else relative


def _build(source: str, **options) -> Path:
    """Build one source with `staging.build` options (out, data_dir, configs, num_proc, verify)."""
    from builders import staging

    print(f"Building {source} ...", file=sys.stderr)
    path = staging.build(_registry()[source], **options)
    print(f"Staged {source} in {_shown(path)}")
    return path


def _print_report(path, report) -> None:
    for config, split, rows in report.checked:
        print(f"  {config}/{split}: {rows} rows")
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    print(f"{_shown(path)}: {'OK' if report.ok else f'{len(report.errors)} problem(s)'}")


def _error(exc: BaseException) -> str:
    """The one `error:` line for a failure: our BuildError's message as it is, anything else with its type."""
    from builders.errors import find_build_error

    cause = find_build_error(exc)
    return f"error: {cause}" if cause is not None else f"error: {type(exc).__name__}: {exc}"


def cmd_build(args) -> int:
    sources = list(_registry()) if args.all else args.sources
    failed = []
    for source in sources:
        try:
            _build(source, out=args.out, data_dir=args.data_dir, configs=args.config,
                   num_proc=args.num_proc, verify=not args.no_verify)
        except Exception as exc:  # one source failing does not stop the others
            print(_error(exc), file=sys.stderr)
            failed.append(source)
    if failed and len(sources) > 1:
        print(f"error: {len(failed)} of {len(sources)} sources failed: {', '.join(failed)} "
              f"(the others are staged)", file=sys.stderr)
    return 1 if failed else 0


def cmd_push(args) -> int:
    from builders import publish

    for source in list(_registry()) if args.all else args.sources:
        path = Path(args.out) / _registry()[source].REPO_NAME
        if not (path / "README.md").is_file():
            path = _build(source, out=args.out, data_dir=args.data_dir, num_proc=args.num_proc,
                          verify=not args.no_verify)
        repo_id = f"{args.org}/{args.repo_name or _registry()[source].REPO_NAME}"
        print(f"Pushing {_shown(path)} to {repo_id} ...", file=sys.stderr)
        url = publish.push(path, repo_id, private=args.private or None, create_pr=args.create_pr,
                           allow_unverified=args.allow_unverified)
        print(f"{repo_id}: " + (f"pushed, {url}" if url else "unchanged, nothing to push"))
    return 0


def cmd_check(args) -> int:
    from builders.check import check_repo

    path = Path(args.dir)
    report = check_repo(str(path))
    _print_report(path, report)
    return 0 if report.ok else 1


def cmd_list(args) -> int:
    if args.markdown:
        from builders.cards import sources_table

        print(sources_table(_registry().values()))
        return 0
    for source, cls in _registry().items():
        print(f"{source}  (Hub repo: {cls.REPO_NAME})")
        print(f"  {cls.PRETTY_NAME}")
        print(f"  configs: {', '.join(cls.config_names())} (default first)")
        print(f"  licence: {cls.license_label()}  {cls.LICENSE_LINK}")
        print(f"  homepage: {cls.HOMEPAGE}")
        for archive in cls.ARCHIVES.values():
            print(f"  archive: {archive.name}  {archive.url or '(download by hand: ' + archive.manual + ')'}")
            print(f"           sha256 {archive.sha256 or 'not published'}")
            if archive.url and archive.manual and archive.manual != archive.url:
                print(f"           if that fails, download it by hand from {archive.manual}")
    return 0


def cmd_demo(args) -> int:
    from builders import fakes
    from builders.check import check_repo

    out = Path(args.out)
    failed = 0
    # Fake archives never match the official checksums and counts: those warnings are expected here.
    logging.getLogger("builders").setLevel(logging.ERROR)
    print("Demo: fake archives, so checksum and official-count checks are off (--no-verify).")
    for source in _registry():
        upstream = out / "upstream" / source
        fakes.write_demo_archives(source, upstream)
        print(f"Wrote fake {source} archives in the upstream layout to {_shown(upstream)}")
        path = _build(source, out=out / "hub", data_dir=upstream, verify=False)
        report = check_repo(str(path))
        _print_report(path, report)
        failed += not report.ok
        config, split, _ = report.checked[0] if report.checked else ("default", "train", 0)
        print(
            "\nLoad it with:\n"
            "  from datasets import load_dataset\n"
            f"  ds = load_dataset({_shown(path)!r}, {config!r})\n"
            f"  row = ds[{split!r}][0]   # image, instance_mask (16-bit PNG), objects, preview\n"
        )
    return 1 if failed else 0


def _build_options(command, config: bool = True) -> None:
    command.add_argument("sources", nargs="*", metavar="SOURCE", help="source ids (see `list`)")
    command.add_argument("--all", action="store_true", help="every source")
    if config:  # not for push: the Hub repo holds every config of a source
        command.add_argument("--config", action="append", metavar="NAME", help="build only this config (repeatable)")
    command.add_argument("--data-dir", metavar="DIR",
                         help="folder with the archives as published (or their extracted trees); no download")
    command.add_argument("--out", default="hub", metavar="DIR", help="where staged repos go (default: hub/)")
    command.add_argument("--num-proc", type=int, default=None, metavar="N", help="build with N processes")
    command.add_argument("--no-verify", action="store_true",
                         help="turn checksum, pairing and official-count mismatches into warnings")
    command.add_argument("--quiet", action="store_true", help="no progress bars")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="upload.py", description=__doc__.split("\n\n")[0], epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = commands.add_parser("build", help="build staged Hub repo folders from the upstream archives",
                                description="Parse upstream archives into <out>/<repo>: Parquet shards, README card, preview.")
    _build_options(build)
    build.set_defaults(run=cmd_build)

    push = commands.add_parser("push", help="upload staged repos to the Hub (building what is missing)",
                               description="Upload <out>/<repo> to the Hub dataset repo ORG/<repo>, building it first if "
                                           "it is not staged; the Hub repo then holds exactly that folder. Token: "
                                           "HF_TOKEN or `hf auth login`.")
    _build_options(push, config=False)
    push.add_argument("--org", required=True, metavar="ORG", help="Hub user or organisation to push to")
    push.add_argument("--repo-name", metavar="NAME", help="Hub repo name (one SOURCE only; default: the source's)")
    push.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing to main")
    push.add_argument("--private", action="store_true", help="create the repo private (an existing repo is unchanged)")
    push.add_argument("--allow-unverified", action="store_true",
                      help="publish a repo built with --no-verify or from the demo (its card says what was not checked)")
    push.set_defaults(run=cmd_push)

    check = commands.add_parser("check", help="validate a staged repo folder offline",
                                description="Check card YAML, split counts, features, row groups, decoding, loading and streaming.")
    check.add_argument("dir", metavar="DIR", help="a staged repo folder, e.g. hub/aitslab-bioimaging1")
    check.set_defaults(run=cmd_check)

    listing = commands.add_parser("list", help="show sources, configs, licences and upstream URLs")
    listing.add_argument("--markdown", action="store_true", help="as the README's table of sources")
    listing.set_defaults(run=cmd_list)

    demo = commands.add_parser("demo", help="offline demo: fake archives -> build -> check for every source",
                               description="Write small fake archives in the exact upstream layouts, build and check them.")
    demo.add_argument("--out", default="demo", metavar="DIR", help="demo folder (default: demo/)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(run=cmd_demo)
    return top


def main(argv=None) -> int:
    top = parser()
    args = top.parse_args(argv)
    if args.command in ("build", "push"):
        command = args.command
        if args.all == bool(args.sources):
            top.error(f"{command}: name one or more SOURCEs, or --all")
        unknown = [s for s in args.sources if s not in _registry()]
        if unknown:
            top.error(f"{command}: unknown source(s) {', '.join(unknown)}; known: {', '.join(_registry())}")
        for source in (list(_registry()) if args.all else args.sources):
            missing = set(getattr(args, "config", None) or []) - set(_registry()[source].config_names())
            if missing:
                top.error(f"{command}: {source} has no config {', '.join(sorted(missing))}; "
                          f"its configs: {', '.join(_registry()[source].config_names())}")
        if args.num_proc is not None and args.num_proc < 1:
            top.error(f"{command}: --num-proc must be at least 1")
        if command == "push":
            from huggingface_hub.errors import HFValidationError
            from huggingface_hub.utils import validate_repo_id

            if args.repo_name and (args.all or len(args.sources) != 1):
                top.error("push: --repo-name needs exactly one SOURCE")
            for source in (list(_registry()) if args.all else args.sources):
                try:
                    validate_repo_id(f"{args.org}/{args.repo_name or _registry()[source].REPO_NAME}")
                except HFValidationError as exc:
                    top.error(f"push: --org/--repo-name do not make a valid repo id ({exc})")
    out = getattr(args, "out", None)
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        top.error(f"{args.command}: --out {out} is a file; give a folder (it is created if missing)")
    _setup_logging()
    if getattr(args, "quiet", False):
        import datasets

        datasets.disable_progress_bars()
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("error: interrupted; nothing was left half-written", file=sys.stderr)
        return 1
    except Exception as exc:
        print(_error(exc), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
