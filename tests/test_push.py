"""`upload.py push` against the loopback Hub (tests/hub_server.py), read back with `load_dataset("org/name")`."""

import shutil
from pathlib import Path

import datasets
import pytest
from datasets import load_dataset

import upload
from builders import REGISTRY, publish, staging
from builders.errors import BuildError
from builders.fakes import nucleussegdata as nsd_fake_module

TOKEN = "hf_test_token_0123456789"


def _local_files(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _assert_hub_holds(hub, repo_id: str, folder: Path) -> None:
    remote = hub.files(repo_id)
    assert remote.pop(".gitattributes")
    card = remote.pop("README.md").decode()
    local = _local_files(folder)
    staged_card = local.pop("README.md").decode()
    assert remote == local  # exactly the staged folder: nothing missing, nothing stale
    # The card as staged, with the real repo id wherever the placeholder stood: no `ORG/` reaches the Hub.
    assert f"ORG/{folder.name}" in staged_card and "ORG/" not in card
    assert card == staged_card.replace(f"ORG/{folder.name}", repo_id)
    assert card.count(repo_id) == staged_card.count(f"ORG/{folder.name}")


def _tables_equal(a, b) -> bool:
    return a.with_format("arrow")[:].equals(b.with_format("arrow")[:])


def test_push_of_every_source_loads_and_streams_the_staged_rows(hub, source, staged):
    staged = staged(source)
    assert upload.main(["push", source, "--org", "e2e-org", "--allow-unverified", "--out", str(staged.parent)]) == 0
    repo_id = f"e2e-org/{staged.name}"
    _assert_hub_holds(hub, repo_id, staged)
    # Only sources whose terms users must accept (NucleusSegData: research use only) are gated.
    assert hub.repos[repo_id].gated == ("auto" if REGISTRY[source].GATED_PROMPT else False)
    assert datasets.get_dataset_config_names(repo_id) == REGISTRY[source].config_names()
    for config in REGISTRY[source].config_names():
        local = load_dataset(str(staged), config)
        remote = load_dataset(repo_id, config)
        assert list(remote) == list(local)
        for split in local:
            assert _tables_equal(remote[split], local[split]), (repo_id, config, split)
            streamed = next(iter(load_dataset(repo_id, config, split=split, streaming=True)))
            first = local[split][0]
            assert streamed["image_id"] == first["image_id"] and streamed["objects"] == first["objects"]
            assert streamed["image"].tobytes() == first["image"].tobytes()


def test_a_second_push_without_change_makes_no_commit_and_sends_nothing(hub, aitslab_staged):
    repo_id = "idem-org/aitslab"
    assert publish.push(aitslab_staged, repo_id, allow_unverified=True).startswith(f"{hub.url}/datasets/{repo_id}/commit/")
    commits, requests = len(hub.history(repo_id)), len(hub.requests)
    assert publish.push(aitslab_staged, repo_id, allow_unverified=True) is None
    assert len(hub.history(repo_id)) == commits
    assert not [r for r in hub.requests[requests:] if r[0] == "PUT" or "/commit/" in r[1]]
    _assert_hub_holds(hub, repo_id, aitslab_staged)


def test_a_push_after_one_config_changed_replaces_exactly_its_shards(hub, tmp_path):
    upstream = tmp_path / "up"
    nsd_fake_module.write_archives(upstream, seed=0)
    cls = REGISTRY["nucleussegdata"]
    repo_id = "change-org/nucleussegdata"
    publish.push(staging.build(cls, out=tmp_path / "hub1", data_dir=upstream, verify=False), repo_id, allow_unverified=True)
    other = tmp_path / "other"  # a new copy of the extended zip only
    nsd_fake_module.write_archives(other, seed=1)
    shutil.copy(other / cls.ARCHIVES["extended"].name, upstream / cls.ARCHIVES["extended"].name)
    second = staging.build(cls, out=tmp_path / "hub2", data_dir=upstream, verify=False)
    publish.push(second, repo_id, allow_unverified=True)
    _assert_hub_holds(hub, repo_id, second)
    changed = set(hub.history(repo_id)[0]["changed"])
    assert changed == {"README.md", "assets/preview-extended.jpg"} | {p for p in _local_files(second)
                                                                     if p.startswith("extended/")}


def test_a_push_deletes_stale_shards_and_a_card_only_change_sends_the_card(hub, tmp_path, nsd_fake):
    cls = REGISTRY["nucleussegdata"]
    repo_id = "stale-org/nucleussegdata"
    two = staging.build(cls, out=tmp_path / "hub2", data_dir=nsd_fake[0], verify=False, num_proc=2)
    publish.push(two, repo_id, allow_unverified=True)
    assert any("-00001-of-00002" in path for path in hub.files(repo_id))  # two shards a split
    one = staging.build(cls, out=tmp_path / "hub1", data_dir=nsd_fake[0], verify=False)
    publish.push(one, repo_id, allow_unverified=True)
    _assert_hub_holds(hub, repo_id, one)  # the two-shard files are gone, in the same commit
    assert len([c for c in hub.history(repo_id)]) == 3
    readme = one / "README.md"
    readme.write_text(readme.read_text().replace("## Quick start", "Edited.\n\n## Quick start"))
    publish.push(one, repo_id, allow_unverified=True)
    assert hub.history(repo_id)[0]["changed"] == ["README.md"]


def test_an_interrupted_push_completes_when_run_again(hub, aitslab_staged, monkeypatch):
    monkeypatch.setattr("huggingface_hub.utils._http.time.sleep", lambda seconds: None)  # retries without waiting
    repo_id = "interrupt-org/aitslab"
    hub.drop_puts_after = 1  # the connection drops during every upload after the first
    with pytest.raises(BuildError, match=r"interrupt-org/aitslab: uploading failed: network error .*re-run the same "
                                         r"command to complete the push"):
        publish.push(aitslab_staged, repo_id, allow_unverified=True)
    assert [c["summary"] for c in hub.history(repo_id)] == ["initial commit"]  # nothing half-committed
    stored = len(hub.repos[repo_id].lfs)
    hub.reset_faults()
    requests = len(hub.requests)
    publish.push(aitslab_staged, repo_id, allow_unverified=True)
    _assert_hub_holds(hub, repo_id, aitslab_staged)
    puts = [r for r in hub.requests[requests:] if r[0] == "PUT"]
    lfs_files = [p for p in _local_files(aitslab_staged) if p.endswith((".parquet", ".jpg"))]
    assert stored >= 1 and len(puts) == len(lfs_files) - 1  # the object stored before the drop is not sent again


def test_a_card_that_breaks_the_hub_rules_is_refused_before_any_request(hub, aitslab_staged, tmp_path):
    folder = tmp_path / "repo"
    shutil.copytree(aitslab_staged, folder)
    readme = folder / "README.md"
    readme.write_text(readme.read_text().replace("license: cc-by-4.0", "license: cc-by-4"))
    requests = len(hub.requests)
    with pytest.raises(BuildError, match=r"README.md: license 'cc-by-4' is not a Hub licence id"):
        publish.push(folder, "rules-org/aitslab", allow_unverified=True)
    assert len(hub.requests) == requests


def test_no_token_and_a_rejected_token_give_clear_errors_without_the_token(hub, aitslab_staged, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(BuildError, match=r"no Hugging Face token: set HF_TOKEN or run `hf auth login`"):
        publish.push(aitslab_staged, "token-org/aitslab", allow_unverified=True)
    monkeypatch.setenv("HF_TOKEN", "hf_wrong_secret_token")
    hub.tokens = {TOKEN}
    code = upload.main(["push", "aitslab-bioimaging1", "--org", "token-org", "--allow-unverified", "--out", str(aitslab_staged.parent)])
    err = capsys.readouterr().err
    assert code == 1 and "HTTP 401" in err and "rejected the token" in err and "hf_wrong_secret_token" not in err


def test_push_with_create_pr_leaves_main_alone(hub, aitslab_staged):
    repo_id = "pr-org/aitslab"
    url = publish.push(aitslab_staged, repo_id, create_pr=True, allow_unverified=True)
    assert url.endswith("/discussions/1")
    assert set(hub.files(repo_id)) == {".gitattributes"}
    assert set(hub.files(repo_id, "refs/pr/1")) - {".gitattributes"} == set(_local_files(aitslab_staged))
    publish.push(aitslab_staged, repo_id, allow_unverified=True)
    assert publish.push(aitslab_staged, repo_id, create_pr=True, allow_unverified=True) is None  # nothing to change: no pull request
    assert "refs/pr/2" not in hub.repos[repo_id].refs


def test_a_forbidden_namespace_and_an_incomplete_folder_are_clear_errors(hub, nsd_staged, tmp_path):
    hub.create_status = 403
    with pytest.raises(BuildError, match=r"forbidden-org/nucleussegdata: creating the repository failed with HTTP 403: "
                                         r".*\(the token may not write there"):
        publish.push(nsd_staged, "forbidden-org/nucleussegdata")
    hub.reset_faults()
    folder = tmp_path / "repo"
    shutil.copytree(nsd_staged, folder)
    next((folder / "extended").glob("test_hepg2-*.parquet")).unlink()
    requests = len(hub.requests)
    with pytest.raises(BuildError, match=r"is not ready for the Hub, nothing was uploaded:\n .*test_hepg2"):
        publish.push(folder, "incomplete-org/nucleussegdata")
    assert len(hub.requests) == requests


def test_push_usage_errors_exit_2(capsys):
    for argv in (["push", "nucls", "--org", "my org"], ["push", "nucls", "--org", "o", "--config", "all"],
                 ["push", "--all", "--org", "o", "--repo-name", "x"]):
        with pytest.raises(SystemExit) as exit_info:
            upload.main(argv)
        assert exit_info.value.code == 2
    assert "not make a valid repo id" in capsys.readouterr().err


def test_push_builds_what_is_missing(hub, aitslab_fake, tmp_path, capsys):
    out = tmp_path / "hub"
    code = upload.main(["push", "aitslab-bioimaging1", "--org", "build-org", "--repo-name", "hoechst", "--allow-unverified",
                        "--out", str(out), "--data-dir", str(aitslab_fake[0]), "--no-verify"])
    assert code == 0 and "build-org/hoechst: pushed" in capsys.readouterr().out
    _assert_hub_holds(hub, "build-org/hoechst", out / "aitslab-bioimaging1")


def test_a_server_error_on_commit_is_reported_and_a_re_run_completes(hub, nsd_staged, monkeypatch):
    monkeypatch.setattr("huggingface_hub.utils._http.time.sleep", lambda seconds: None)
    repo_id = "error-org/nucleussegdata"
    hub.commit_status = 500
    with pytest.raises(BuildError, match=r"error-org/nucleussegdata: uploading failed with HTTP 500: .*re-run the "
                                         r"same command to complete the push"):
        publish.push(nsd_staged, repo_id)
    assert [c["summary"] for c in hub.history(repo_id)] == ["initial commit"]
    hub.reset_faults()
    publish.push(nsd_staged, repo_id)
    _assert_hub_holds(hub, repo_id, nsd_staged)


def test_a_card_asking_users_to_accept_terms_makes_a_gated_repo_before_any_data_is_uploaded(hub, aitslab_staged, tmp_path):
    from huggingface_hub import HfApi

    folder = tmp_path / aitslab_staged.name
    shutil.copytree(aitslab_staged, folder)
    card = (folder / "README.md").read_text()
    (folder / "README.md").write_text(card.replace("---\n", "---\nextra_gated_prompt: Research use only.\n", 1))
    publish.push(aitslab_staged, "gate-org/open", allow_unverified=True)
    publish.push(folder, "gate-org/gated", allow_unverified=True)
    assert hub.repos["gate-org/open"].gated is False and hub.repos["gate-org/gated"].gated == "auto"
    assert HfApi().repo_info("gate-org/gated", repo_type="dataset").gated == "auto"
    settings = next(i for i, r in enumerate(hub.requests) if r[0] == "PUT" and r[1].endswith("gate-org/gated/settings"))
    upload = next(i for i, r in enumerate(hub.requests) if "gate-org/gated/preupload/" in r[1])
    assert settings < upload


def test_an_unverified_build_is_refused_without_the_flag_and_published_with_its_notice(hub, aitslab_staged, nsd_staged,
                                                                                     capsys):
    """aitslab_staged is built with verify=False, as `--no-verify` and the demo build; nsd_staged with verification."""
    card = (aitslab_staged / "README.md").read_text()
    assert "**Not verified.**" in card and "training_nuclei.zip: checksum mismatch" in card
    assert "Not verified" not in (nsd_staged / "README.md").read_text()
    with pytest.raises(BuildError, match="built without verification .* pass --allow-unverified"):
        publish.push(aitslab_staged, "unverified-org/aitslab")
    code = upload.main(["push", "aitslab-bioimaging1", "--org", "unverified-org", "--out", str(aitslab_staged.parent)])
    assert code == 1 and "--allow-unverified" in capsys.readouterr().err
    assert "unverified-org/aitslab" not in hub.repos and "unverified-org/aitslab-bioimaging1" not in hub.repos
    assert not [r for r in hub.requests if "unverified-org" in r[1]]  # refused before any request
    publish.push(aitslab_staged, "unverified-org/aitslab", allow_unverified=True)
    assert "**Not verified.**" in hub.files("unverified-org/aitslab")["README.md"].decode()
    publish.push(nsd_staged, "unverified-org/nucleussegdata")  # a verified build needs no flag
