#!/usr/bin/env python
"""Compatibility check: load the staged demo repos with released `datasets` / `pyarrow` versions.

Not part of the test suite. It builds the demo repos with this interpreter (`upload.py demo`), then, in fresh
virtual environments that hold none of this project (only PyPI packages), runs a small child script that:

- loads every config of every repo (`load_dataset(folder, config)`) and touches every column of every row
  (images decoded, nested `objects` read), checking the row and object counts against the card / footers;
- streams the first row of every split (`streaming=True`);
- in env c (the Hub viewer's pins) also reads every Parquet shard with polars and duckdb, checking the counts.

    python benchmarks/compat.py                  # all environments; needs PyPI the first time
    python benchmarks/compat.py --env c          # one environment (repeatable)
    python benchmarks/compat.py --hub DIR        # staged repos already built under DIR instead of a new demo
    python benchmarks/compat.py --recreate       # rebuild the cached venvs

Venvs, the demo build, logs and the results (compat.json, compat.md) go under --work (default
benchmarks/scratch/compat, git-ignored). Run time on 2 cores (measured): 170 s the first time, mostly
creating the three venvs from PyPI; 45 s with the venvs cached (demo build 20 s, then 8 to 15 s per env).
Exit code: 0 when every cell is ok, 1 when any cell fails, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = "python3.11"

# name -> requirements. Pillow is unpinned: `datasets` needs it to decode images but does not depend on it.
ENVS = {
    "a": [
        "datasets==4.0.0", "pyarrow==15.0.2",
        "numpy<2",  # pyarrow 15 is built against numpy 1.x (its metadata says numpy<2 too)
        "pillow",
    ],
    "b": ["datasets==5.2.0", "pyarrow==24.0.0", "pillow"],
    # the Hub dataset viewer's pins
    "c": ["datasets==5.0.1", "pyarrow==23.0.1", "polars==1.39.*", "duckdb==1.5.*", "pillow"],
}
ENGINES = {"c": ["polars", "duckdb"]}  # extra readers per env, besides `load` and `stream`

CHILD = r'''
import importlib.metadata as md, json, sys, time, traceback
manifest, out, engines = json.load(open(sys.argv[1])), open(sys.argv[2], "a"), sys.argv[3:]

where = ""  # the split or shard being read, for the error message

def error(exc):
    """`Type: first line` of the exception and of each of its causes, outermost first."""
    chain = [exc]
    while chain[-1].__cause__ is not None or chain[-1].__context__ is not None:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    return " <- ".join(f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}" for e in chain)

def touch_row(row):
    assert hasattr(row["image"], "mode"), f"image decoded as {type(row['image']).__name__}"
    assert row["instance_mask"] is None or row["instance_mask"].mode.startswith("I"), "instance_mask not 16-bit"
    assert isinstance(row["objects"], list), f"objects read as {type(row['objects']).__name__}"
    touch(row)

def touch(value):
    """Read a value completely: decode images, walk lists and dicts. Returns nothing."""
    if hasattr(value, "load") and hasattr(value, "mode"):  # PIL image
        value.load()
    elif isinstance(value, dict):
        for v in value.values():
            touch(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            touch(v)

def check_load(repo, config, cfg):
    import datasets
    global where
    where = "all splits"
    dsd = datasets.load_dataset(repo["path"], config)
    assert sorted(dsd) == sorted(cfg["splits"]), f"splits {sorted(dsd)} != {sorted(cfg['splits'])}"
    for split, want in cfg["splits"].items():
        where, rows, objects = split, 0, 0
        for row in dsd[split]:
            touch_row(row)
            rows += 1
            objects += len(row["objects"])
        assert (rows, objects) == (want["rows"], want["objects"]), f"{split}: rows, objects {rows}, {objects} != {want['rows']}, {want['objects']}"

def check_stream(repo, config, cfg):
    import datasets
    global where
    for where in cfg["splits"]:
        touch_row(next(iter(datasets.load_dataset(repo["path"], config, split=where, streaming=True))))

def check_polars(repo, config, cfg):
    import polars as pl
    global where
    for shard in cfg["shards"]:
        where = shard["name"]
        df = pl.read_parquet(shard["path"])
        got = (df.height, int(df["objects"].list.len().sum() or 0))
        assert got == (shard["rows"], shard["objects"]), f"{shard['name']}: rows, objects {got} != {shard['rows']}, {shard['objects']}"

def check_duckdb(repo, config, cfg):
    import duckdb
    global where
    con = duckdb.connect()
    for shard in cfg["shards"]:
        where = shard["name"]
        got = con.execute("SELECT count(*), coalesce(sum(len(objects)), 0), sum(octet_length(image.bytes)) "
                          "FROM read_parquet(?)", [shard["path"]]).fetchone()
        assert got[:2] == (shard["rows"], shard["objects"]), f"{shard['name']}: rows, objects {got[:2]} != {shard['rows']}, {shard['objects']}"
        assert len(con.execute("SELECT * FROM read_parquet(?)", [shard["path"]]).fetchall()) == shard["rows"]

import datasets
datasets.disable_progress_bars()
datasets.logging.set_verbosity_error()
versions = {}
for name in ["datasets", "pyarrow", "numpy", "pandas", "pillow", "fsspec", "huggingface_hub", "polars", "duckdb"]:
    try:
        versions[name] = md.version(name)
    except md.PackageNotFoundError:
        pass
print(json.dumps({"versions": versions}), file=out, flush=True)
for repo in manifest:
    for config, cfg in repo["configs"].items():
        for check in ["load", "stream"] + engines:
            start, where = time.time(), ""
            try:
                globals()["check_" + check](repo, config, cfg)
                result = {"ok": True, "error": ""}
            except Exception as exc:
                traceback.print_exc()
                result = {"ok": False, "error": error(exc), "split": where}
            result.update(repo=repo["name"], config=config, check=check, seconds=round(time.time() - start, 2))
            print(json.dumps(result), file=out, flush=True)
'''


def front_matter(readme: Path) -> dict:
    import yaml

    text = readme.read_text(encoding="utf-8")
    return yaml.safe_load(text.split("\n---", 1)[0].removeprefix("---\n"))


def manifest(hub: Path) -> list:
    """The staged repos: configs, splits with their row and object counts, and each config's shards."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    repos = []
    for folder in sorted(p.parent for p in hub.glob("*/README.md")):
        card = front_matter(folder / "README.md")
        infos = card.get("dataset_info", [])
        infos = {info.get("config_name", "default"): info for info in (infos if isinstance(infos, list) else [infos])}
        configs = {}
        for entry in card["configs"]:
            splits, shards = {}, {}
            for files in entry["data_files"]:
                patterns = [files["path"]] if isinstance(files["path"], str) else files["path"]
                paths = sorted({p for pattern in patterns for p in folder.glob(pattern)})
                counts = []
                for path in paths:
                    objects = pq.read_table(path, columns=["objects"])["objects"]
                    counts.append((pq.ParquetFile(path).metadata.num_rows, pc.sum(pc.list_value_length(objects)).as_py() or 0))
                    shards[str(path)] = {"path": str(path), "name": str(path.relative_to(folder)),
                                         "rows": counts[-1][0], "objects": counts[-1][1]}
                split = {"rows": sum(c[0] for c in counts), "objects": sum(c[1] for c in counts)}
                card_rows = {s["name"]: s["num_examples"] for s in infos[entry["config_name"]]["splits"]}
                if card_rows.get(files["split"]) != split["rows"]:
                    sys.exit(f"error: {folder.name}/{entry['config_name']}/{files['split']}: card says "
                             f"{card_rows.get(files['split'])} rows, the shards hold {split['rows']}")
                splits[files["split"]] = split
            configs[entry["config_name"]] = {"splits": splits, "shards": list(shards.values())}
        repos.append({"name": folder.name, "path": str(folder), "configs": configs})
    return repos


def make_venv(work: Path, name: str, recreate: bool) -> Path:
    """A cached venv holding ENVS[name]; recreated when its requirements changed."""
    venv, wanted = work / "venvs" / name, "\n".join(ENVS[name]) + "\n"
    stamp = venv / "compat-requirements.txt"
    python = venv / "bin" / "python"
    if not recreate and stamp.is_file() and stamp.read_text() == wanted and python.exists():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    print(f"env {name}: creating {venv} with {' '.join(ENVS[name])} ...", file=sys.stderr)
    with open(work / f"pip-{name}.log", "w") as log:
        subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True, stdout=log, stderr=log)
        subprocess.run([str(python), "-m", "pip", "install", *ENVS[name]], check=True, stdout=log, stderr=log)
    stamp.write_text(wanted)
    return python


def run_env(work: Path, name: str, recreate: bool) -> tuple[dict, list]:
    results = work / f"results-{name}.jsonl"
    results.unlink(missing_ok=True)
    try:
        python = make_venv(work, name, recreate)
    except subprocess.CalledProcessError as exc:
        return {}, [f"venv / pip install failed ({exc}); see {work / f'pip-{name}.log'}"]
    hf_home = work / "hf_home" / name
    shutil.rmtree(hf_home, ignore_errors=True)  # no cache from an earlier run: every load prepares anew
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONNOUSERSITE": "1"}
    print(f"env {name}: loading ...", file=sys.stderr)
    with open(work / f"child-{name}.log", "w") as log:
        proc = subprocess.run([str(python), str(work / "child.py"), str(work / "manifest.json"), str(results),
                               *ENGINES.get(name, [])], env=env, stdout=log, stderr=log, timeout=3600)
    lines = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    versions = lines[0]["versions"] if lines else {}
    problems = [] if proc.returncode == 0 else [f"child exited with {proc.returncode}; see {work / f'child-{name}.log'}"]
    return versions, lines[1:] + problems


def report(repos: list, envs: dict, seconds: float) -> tuple[str, bool]:
    columns = [(name, check) for name in envs for check in ["load", "stream"] + ENGINES.get(name, [])]
    cells = {(c["repo"], c["config"], name, c["check"]): c
             for name, info in envs.items() for c in info["cells"] if isinstance(c, dict)}
    ok = all(not info["problems"] for info in envs.values())
    out = [f"# Compatibility of the staged repos\n\nTotal run time: {seconds:.0f} s.\n",
           "| env | requirements | installed |", "|---|---|---|"]
    for name, info in envs.items():
        installed = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        out.append(f"| {name} | {' '.join(ENVS[name])} | {installed} |")
    out += ["", "| repo/config | " + " | ".join(f"{n}: {c}" for n, c in columns) + " |",
            "|---" * (len(columns) + 1) + "|"]
    failures = []
    for repo in repos:
        for config in repo["configs"]:
            row = []
            for name, check in columns:
                cell = cells.get((repo["name"], config, name, check))
                if cell is None:
                    row.append("not run")
                    ok = False
                elif cell["ok"]:
                    row.append("ok")
                else:
                    row.append(f"FAIL ({cell['split']}) " + cell["error"].split(" <- ")[-1].replace("|", "\\|"))
                    failures.append(f"- {name} {check} {repo['name']}/{config} ({cell['split']}): {cell['error']}")
                    ok = False
            out.append(f"| {repo['name']}/{config} | " + " | ".join(row) + " |")
    problems = [f"- env {name}: {p}" for name, info in envs.items() for p in info["problems"]]
    if failures or problems:
        out += ["", "Failures (outermost exception first, `<-` its cause):", "", *failures, *problems]
    return "\n".join(out) + "\n", ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "scratch" / "compat",
                        help="scratch folder: venvs, demo build, logs (default: benchmarks/scratch/compat)")
    parser.add_argument("--env", action="append", choices=sorted(ENVS), help="only this environment (repeatable)")
    parser.add_argument("--hub", type=Path, help="use the staged repos under this folder; no demo build")
    parser.add_argument("--recreate", action="store_true", help="recreate the cached venvs")
    parser.add_argument("--json", type=Path, help="results as JSON (default: WORK/compat.json)")
    parser.add_argument("--md", type=Path, help="results as markdown (default: WORK/compat.md)")
    args = parser.parse_args()
    start = time.time()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    hub = args.hub
    if hub is None:
        shutil.rmtree(work / "demo", ignore_errors=True)
        print(f"building the demo repos into {work / 'demo'} ...", file=sys.stderr)
        with open(work / "demo.log", "w") as log:
            if subprocess.run([sys.executable, str(ROOT / "upload.py"), "demo", "--out", str(work / "demo")],
                              cwd=work, stdout=log, stderr=log).returncode:
                sys.exit(f"error: `upload.py demo` failed; see {work / 'demo.log'}")
        hub = work / "demo" / "hub"
    repos = manifest(hub.resolve())
    if not repos:
        sys.exit(f"error: no staged repo (*/README.md) under {hub}")
    (work / "manifest.json").write_text(json.dumps(repos, indent=1))
    (work / "child.py").write_text(CHILD)
    envs = {}
    for name in args.env or sorted(ENVS):
        versions, cells = run_env(work, name, args.recreate)
        envs[name] = {"versions": versions, "cells": [c for c in cells if isinstance(c, dict)],
                      "problems": [c for c in cells if isinstance(c, str)]}
    seconds = time.time() - start
    markdown, ok = report(repos, envs, seconds)
    print(markdown)
    json_path, md_path = args.json or work / "compat.json", args.md or work / "compat.md"
    json_path.write_text(json.dumps({"seconds": round(seconds, 1), "ok": ok, "envs": {
        name: {"requirements": ENVS[name], **info} for name, info in envs.items()}}, indent=1))
    md_path.write_text(markdown)
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
