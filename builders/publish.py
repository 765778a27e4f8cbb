"""Publishing: make a Hub dataset repo hold exactly a staged repo folder.

`push(folder, repo_id, ...)` checks the card's metadata against the Hub's rules offline, creates the
repo if needed and uploads the folder with `huggingface_hub.HfApi.upload_folder` in one commit that
also deletes every remote file the folder no longer has (stale shards of an earlier build). Files
the Hub already holds with the same content are not sent again and a push with nothing changed makes
no commit, so re-running an interrupted push completes it. The token comes from `HF_TOKEN` or the
stored login (`hf auth login`) and is never printed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .base import VERSION
from .cards import metadata_problems
from .errors import BuildError

STATUS_HINTS = {
    401: "the Hub rejected the token; check HF_TOKEN or run `hf auth login` again",
    403: "the token may not write there (a read-only token, or no write access to the organisation)",
    404: "no such repository, or the token cannot see it",
}


def card_problems(folder: str | os.PathLike) -> list[str]:
    from huggingface_hub import DatasetCard

    readme = Path(folder) / "README.md"
    if not readme.is_file():
        return [f"{readme}: missing"]
    try:
        data = DatasetCard.load(readme).data.to_dict()
    except Exception as exc:  # a broken card: YAML or front matter
        return [f"{readme}: cannot be parsed ({exc})"]
    return [f"{readme}: {problem}" for problem in metadata_problems(data)]


def _token() -> str:
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise BuildError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with write access)")
    return token


def _failure(action: str, repo_id: str, exc: Exception) -> BuildError:
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        hint = STATUS_HINTS.get(status) or ("the Hub failed; re-run the same command to complete the push"
                                            if status and status >= 500 else "")
        detail = exc.server_message or (str(exc).splitlines()[0] if str(exc) else "")
        return BuildError(f"{repo_id}: {action} failed with HTTP {status}: {detail}" + (f" ({hint})" if hint else ""))
    return BuildError(f"{repo_id}: {action} failed: network error ({type(exc).__name__}: {exc}); "
                      f"re-run the same command to complete the push")


def push(folder: str | os.PathLike, repo_id: str, private: bool | None = None, create_pr: bool = False,
         message: str | None = None) -> str | None:
    """Upload `folder` to the dataset repo `repo_id`; returns the commit (or pull request) URL, None if unchanged."""
    from huggingface_hub import HfApi

    problems = card_problems(folder)
    if problems:
        raise BuildError("the card breaks the Hub's metadata rules, nothing was uploaded:\n  " + "\n  ".join(problems))
    api = HfApi(token=_token())
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    except Exception as exc:
        raise _failure("creating the repository", repo_id, exc) from None
    before = _head(api, repo_id)
    # upload_folder warns when every file is unchanged and makes no commit; that is the expected no-op here.
    quiet = logging.getLogger("huggingface_hub.hf_api")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        info = api.upload_folder(
            repo_id=repo_id, repo_type="dataset", folder_path=str(folder),
            commit_message=message or f"Build {Path(folder).name} with builders {VERSION}",
            delete_patterns=["*"],  # the repo holds exactly the folder (.gitattributes is always kept)
            create_pr=create_pr,
        )
    except Exception as exc:
        raise _failure("uploading", repo_id, exc) from None
    finally:
        quiet.setLevel(level)
    if create_pr:
        return getattr(info, "pr_url", None) or str(info)
    return None if _head(api, repo_id) == before else getattr(info, "commit_url", str(info))


def _head(api, repo_id: str) -> str | None:
    try:
        return api.repo_info(repo_id, repo_type="dataset").sha
    except Exception as exc:
        raise _failure("reading the repository", repo_id, exc) from None
