"""The command line: exit codes, messages, list and the offline demo."""

import os
import re
import subprocess
import sys
from pathlib import Path

from builders import REGISTRY

ROOT = Path(__file__).resolve().parent.parent


def run(*args, cwd=None):
    return subprocess.run([sys.executable, str(ROOT / "upload.py"), *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ}, timeout=600)


def test_usage_errors_exit_2():
    for args in ([], ["build"], ["build", "no-such-source"], ["build", "aitslab-bioimaging1", "--num-proc", "0"],
                 ["build", "aitslab-bioimaging1", "--config", "nope"], ["frobnicate"]):
        result = run(*args)
        assert result.returncode == 2, args
        assert "usage:" in result.stderr


def test_help_explains_the_commands():
    result = run("--help")
    assert result.returncode == 0
    for word in ("build", "check", "list", "demo", "Exit codes"):
        assert word in result.stdout


def test_list_shows_sources_licences_and_urls():
    result = run("list")
    assert result.returncode == 0
    assert "aitslab-bioimaging1" in result.stdout and "cc-by-4.0" in result.stdout
    assert "https://zenodo.org/records/6657260/files/training_nuclei.zip" in result.stdout
    assert "nucleussegdata" in result.stdout and "other: nucleussegdata-research-only" in result.stdout
    assert "configs: original, extended" in result.stdout


def test_a_failure_exits_1_with_a_message_not_a_traceback(tmp_path):
    result = run("build", "aitslab-bioimaging1", "--data-dir", str(tmp_path), "--out", str(tmp_path / "hub"))
    assert result.returncode == 1
    assert "error: --data-dir" in result.stderr and "training_nuclei.zip" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "hub" / "aitslab-bioimaging1").exists()


def test_check_command_exit_codes(tmp_path, aitslab_staged):
    assert run("check", str(aitslab_staged)).returncode == 0
    broken = run("check", str(tmp_path))
    assert broken.returncode == 1 and "no README.md" in broken.stderr


def test_check_on_a_folder_that_is_not_a_repo_says_so_and_names_the_repos_below_it(tmp_path, aitslab_staged):
    missing = run("check", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and f"error: {tmp_path / 'nowhere'}: no such folder" in missing.stderr
    above = run("check", str(aitslab_staged.parent))
    assert above.returncode == 1 and "Traceback" not in above.stderr
    assert (f"error: {aitslab_staged.parent}: not a staged repo (no README.md card); staged repos below it: "
            f"{aitslab_staged}") in above.stderr


def test_out_pointing_at_a_file_is_a_usage_error(tmp_path):
    (tmp_path / "hub").write_text("not a folder")
    for command in (["build", "nucls"], ["demo"]):
        result = run(*command, "--out", str(tmp_path / "hub"))
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert f"--out {tmp_path / 'hub'} is a file; give a folder" in result.stderr
        assert "FileExistsError" not in result.stderr


def test_build_all_builds_what_it_can_and_lists_the_failures(tmp_path, aitslab_fake):
    result = run("build", "--all", "--no-verify", "--quiet", "--data-dir", str(aitslab_fake[0]), "--out", str(tmp_path))
    assert result.returncode == 1
    assert (tmp_path / "aitslab-bioimaging1" / "README.md").is_file()
    others = [s for s in REGISTRY if s != "aitslab-bioimaging1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aitslab-bioimaging1"]  # nothing half-written
    assert result.stderr.count("\nerror: --data-dir") + result.stderr.startswith("error: --data-dir") == len(others)
    assert f"error: {len(others)} of {len(REGISTRY)} sources failed: {', '.join(others)}" in result.stderr
    assert "Generating" not in result.stderr  # --quiet: no progress bars


def test_demo_runs_offline_and_prints_how_to_load(tmp_path, hub):
    result = run("demo", "--out", "demo_out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    staged = tmp_path / "demo_out" / "hub" / "aitslab-bioimaging1"
    assert (staged / "README.md").is_file() and (staged / "assets" / "preview-default.jpg").is_file()
    assert "load_dataset('demo_out/hub/aitslab-bioimaging1', 'default')" in result.stdout
    assert ": OK" in result.stdout
    assert (tmp_path / "demo_out" / "upstream" / "aitslab-bioimaging1" / "training_nuclei.zip").is_file()
    assert (tmp_path / "demo_out" / "hub" / "nucleussegdata" / "original" / "train-00000-of-00001.parquet").is_file()
    assert "load_dataset('demo_out/hub/nucleussegdata', 'original')" in result.stdout
    assert result.stdout.count(": OK") == len(REGISTRY)
    # At most one progress bar per split built (none from the checks' loads), and no internal part names.
    bars = re.findall(r"Generating \S+ split: (?:0 examples|\s*0%)", result.stderr)  # each bar's first state
    assert "part_" not in result.stderr and "part_" not in result.stdout
    built = sum(1 for _ in (tmp_path / "demo_out" / "hub").glob("*/*/*-00000-of-*.parquet"))
    assert 0 < len(bars) <= built
    # The demo's fake data cannot reach the Hub under the real title by accident.
    refused = run("push", "aitslab-bioimaging1", "--org", "me", "--out", "demo_out/hub", cwd=tmp_path)
    assert refused.returncode == 1 and "--allow-unverified" in refused.stderr and "me/aitslab-bioimaging1" not in hub.repos
