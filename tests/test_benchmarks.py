"""The benchmark script on tiny replicas of every source, so that it cannot rot (the full run is in the README)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_benchmark_runs_on_tiny_replicas_and_reports_every_figure(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--tiny", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report = (tmp_path / "RESULTS.md").read_text()
    for heading in ("## Machine", "## Targets", "## Build, floor and naive peer", "## Scaling", "## Reading"):
        assert heading in report
    results = json.loads((tmp_path / "RESULTS.json").read_text())["results"]
    assert sorted(results) == ["aitslab-bioimaging1", "fluocells", "nucleussegdata", "nucls"]
    for name, r in results.items():
        assert r["floor"]["images"] == r["images"] == r["build"]["rows"] > 0, name  # the floor read every image
        assert r["build"]["peak_rss_mb"] > 0 and r["naive"]["output_mb"] > 0 and r["num_proc_2"]["rows"] == r["images"]
        assert [s["images"] for s in r["scaling"]] == sorted({s["images"] for s in r["scaling"]}), name  # 3 sizes
        reading = r["reading"]
        assert reading["ranks_disjoint"] and reading["ranks_complete"] and sum(reading["rank_rows"]) == reading["rows"]
        assert f"| {name} |" in report
