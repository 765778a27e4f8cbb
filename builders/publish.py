"""Publishing: make a Hub dataset repo hold exactly a staged repo folder.

`push(folder, repo_id, ...)` checks the folder offline (`check.check_repo` without loading: complete
shards, the card's metadata against the Hub's rules), creates the repo if needed and uploads the
folder with `huggingface_hub.HfApi.create_commit` in one commit that also deletes every remote file
the folder no longer has (stale shards of an earlier build). Files the Hub already holds with the
same content are not sent again and a push with nothing changed makes no commit, so re-running an
interrupted push completes it. The token comes from `HF_TOKEN` or the
stored login (`hf auth login`) and is never printed.

A repo built without verification (its card carries `cards.UNVERIFIED_MARKER` and a visible notice) is refused
unless `allow_unverified`.

The staged card names the repo `ORG/<repo>` (the build cannot know where it goes): the card pushed names
the real repo id instead. A card whose metadata asks users to accept terms (`extra_gated_prompt`) makes a
gated repo: gating is switched on before any data is uploaded.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .base import VERSION
from .cards import UNVERIFIED_MARKER
from .errors import BuildError

STATUS_HINTS = {
    401: "the Hub rejected the token; check HF_TOKEN or run `hf auth login` again",
    403: "the token may not write there (a read-only token, or no write access to the organisation)",
    404: "no such repository, or the token cannot see it",
}


def _token() -> str:
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise BuildError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with write access)")
    return token


def _causes(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _failure(action: str, repo_id: str, exc: Exception) -> BuildError:
    """A clear error for a failed Hub call (the client wraps transport errors, e.g. in RuntimeError)."""
    from huggingface_hub.errors import HfHubHTTPError

    for cause in _causes(exc):
        if isinstance(cause, HfHubHTTPError):
            status = cause.response.status_code if cause.response is not None else None
            hint = STATUS_HINTS.get(status) or ("the Hub failed; re-run the same command to complete the push"
                                                if status and status >= 500 else "")
            detail = cause.server_message or (str(cause).splitlines()[0] if str(cause) else "")
            return BuildError(f"{repo_id}: {action} failed with HTTP {status}: {detail}" + (f" ({hint})" if hint else ""))
        if isinstance(cause, OSError) or type(cause).__module__.split(".")[0] in ("httpx", "httpx2"):
            return BuildError(f"{repo_id}: {action} failed: network error ({type(cause).__name__}: {cause}); "
                              f"re-run the same command to complete the push")
    return BuildError(f"{repo_id}: {action} failed: {exc}")


PLACEHOLDER_ORG = "ORG"


def published_card(folder: Path, repo_id: str) -> bytes:
    """The staged README with the placeholder repo id `ORG/<folder name>` replaced by `repo_id`."""
    text = (folder / "README.md").read_text(encoding="utf-8")
    return text.replace(f"{PLACEHOLDER_ORG}/{folder.name}", repo_id).encode("utf-8")


def push(folder: str | os.PathLike, repo_id: str, private: bool | None = None, create_pr: bool = False,
         message: str | None = None, allow_unverified: bool = False) -> str | None:
    """Upload `folder` to the dataset repo `repo_id`; returns the commit (or pull request) URL, None if unchanged.

    One commit (with or without `hf_xet`) adds every file of the folder and deletes every other remote
    file except `.gitattributes`; the client leaves out files whose content the Hub already has.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, DatasetCard, HfApi

    from .check import check_repo

    folder = Path(folder)
    problems = check_repo(str(folder), load=False).errors  # incomplete folder, card breaking the Hub's rules
    if problems:
        raise BuildError(f"{folder} is not ready for the Hub, nothing was uploaded:\n  " + "\n  ".join(problems))
    if UNVERIFIED_MARKER in (folder / "README.md").read_text(encoding="utf-8") and not allow_unverified:
        raise BuildError(f"{folder} was built without verification (--no-verify, or the demo's fake archives); its "
                         f"card says what was not checked. Rebuild it with verification, or pass --allow-unverified "
                         f"to publish it with that notice; nothing was uploaded")
    api = HfApi(token=_token())
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    except Exception as exc:
        raise _failure("creating the repository", repo_id, exc) from None
    if DatasetCard.load(folder / "README.md").data.get("extra_gated_prompt"):
        try:  # before the data: a gated dataset is never downloadable without accepting its terms
            api.update_repo_settings(repo_id, gated="auto", repo_type="dataset")
        except Exception as exc:
            raise _failure("gating the repository", repo_id, exc) from None
    local = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    try:
        head = api.repo_info(repo_id, repo_type="dataset").sha
        stale = sorted(set(api.list_repo_files(repo_id, repo_type="dataset", revision=head)) - set(local)
                       - {".gitattributes"})
    except Exception as exc:
        raise _failure("reading the repository", repo_id, exc) from None
    operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=published_card(folder, repo_id) if p == "README.md"
                                     else str(folder / p)) for p in local]
    operations += [CommitOperationDelete(path_in_repo=p) for p in stale]
    quiet = logging.getLogger("huggingface_hub.hf_api")  # "No files have been modified": the expected no-op
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        info = api.create_commit(
            repo_id, repo_type="dataset", operations=operations, create_pr=create_pr, parent_commit=head,
            commit_message=message or f"Build {folder.name} with builders {VERSION}",
        )
    except Exception as exc:
        raise _failure("uploading", repo_id, exc) from None
    finally:
        quiet.setLevel(level)
    if create_pr:
        return info.pr_url  # None: nothing changed, no pull request opened
    return None if info.oid == head else info.commit_url
