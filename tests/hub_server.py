"""A loopback server speaking the Hugging Face Hub protocol (specs/hub-protocol.md, sections 4.1-4.10).

Enough for the real `huggingface_hub` client (`create_repo`, `upload_folder`, `list_repo_files`) and
`datasets.load_dataset("org/name", ..., streaming=...)` with `HF_ENDPOINT` pointing at it and
`HF_HUB_DISABLE_XET=1`. State is in memory: repositories with branches and immutable commits
(path -> blob), LFS objects by SHA-256. Faults can be injected for tests: drop uploads after some
PUTs, answer commits with an error status, accept only some tokens.

Standard library only, and no import of `huggingface_hub` or `datasets` (the endpoint must be set
before those are imported).
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob " + str(len(data)).encode() + b"\0" + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


class HubError(Exception):
    def __init__(self, status: int, code: str | None = None, message: str = ""):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Repo:
    def __init__(self, repo_id: str, private: bool):
        self.id, self.private = repo_id, private
        self.gated = False  # "auto" / "manual" once set through the settings endpoint
        self.commits = {}  # sha -> {"files": {path: ("regular", bytes) | ("lfs", sha256)}, "parent", "summary", "changed"}
        self.refs = {}  # "main", "refs/pr/N" -> sha
        self.lfs = {}  # sha256 -> content (LFS storage is per repository on the Hub)
        self.pulls = 0


class HubServer:
    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.counter = 0
        # fault injection
        self.drop_puts_after: int | None = None  # successful LFS PUTs before every further PUT is dropped
        self.puts = 0
        self.commit_status: int | None = None  # answer commits with this status instead of committing
        self.create_status: int | None = None  # answer repo creation with this status
        self.tokens: set | None = None  # accepted tokens (None: any)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.hub = self
        self.httpd.handle_error = lambda request, address: None  # dropped connections are expected in fault tests
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> "HubServer":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def reset_faults(self) -> None:
        self.drop_puts_after, self.puts, self.commit_status, self.create_status, self.tokens = None, 0, None, None, None

    # -- state -------------------------------------------------------------------------------------------------
    def new_sha(self) -> str:
        self.counter += 1
        return hashlib.sha1(f"commit {self.counter}".encode()).hexdigest()

    def repo(self, repo_id: str) -> Repo:
        if repo_id not in self.repos:
            raise HubError(404, "RepoNotFound", f"Repository {repo_id} not found")
        return self.repos[repo_id]

    def commit_of(self, repo: Repo, rev: str) -> dict:
        sha = repo.refs.get(rev, rev)
        if sha not in repo.commits:
            raise HubError(404, "RevisionNotFound", f"Revision {rev} not found")
        return {"sha": sha, **repo.commits[sha]}

    def files(self, repo_id: str, rev: str = "main") -> dict[str, bytes]:
        """path -> content at a revision (for assertions)."""
        commit = self.commit_of(self.repo(repo_id), rev)
        repo = self.repo(repo_id)
        return {p: (v if kind == "regular" else repo.lfs[v]) for p, (kind, v) in commit["files"].items()}

    def history(self, repo_id: str, rev: str = "main") -> list[dict]:
        """Commits from the head back to the first: {"sha", "summary", "changed"}."""
        repo = self.repo(repo_id)
        sha, found = repo.refs[rev], []
        while sha:
            commit = repo.commits[sha]
            found.append({"sha": sha, "summary": commit["summary"], "changed": commit["changed"]})
            sha = commit["parent"]
        return found

    def create(self, repo_id: str, private: bool) -> None:
        repo = Repo(repo_id, private)
        sha = self.new_sha()
        attributes = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.png filter=lfs diff=lfs merge=lfs -text\n"
        repo.commits[sha] = {"files": {".gitattributes": ("regular", attributes)}, "parent": None,
                             "summary": "initial commit", "changed": [".gitattributes"]}
        repo.refs["main"] = sha
        self.repos[repo_id] = repo

    def entry(self, repo: Repo, path: str, blob: tuple) -> dict:
        kind, value = blob
        if kind == "regular":
            return {"type": "file", "path": path, "size": len(value), "oid": git_blob_sha1(value)}
        size = len(repo.lfs[value])
        pointer = lfs_pointer(value, size)
        return {"type": "file", "path": path, "size": size, "oid": git_blob_sha1(pointer),
                "lfs": {"oid": value, "size": size, "pointerSize": len(pointer)}}

    def tree(self, repo: Repo, files: dict, folder: str, recursive: bool) -> list[dict]:
        prefix = f"{folder}/" if folder else ""
        entries, folders = [], set()
        for path in sorted(files):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix):].split("/")
            for depth in range(1, len(rest)):
                if recursive or depth == 1:
                    folders.add(prefix + "/".join(rest[:depth]))
            if recursive or len(rest) == 1:
                entries.append(self.entry(repo, path, files[path]))
        if folder and not entries and not folders:
            raise HubError(404, "EntryNotFound", f"{folder} does not exist")
        dirs = [{"type": "directory", "path": f, "oid": hashlib.sha1(f.encode()).hexdigest()} for f in sorted(folders)]
        return dirs + entries

    def apply_commit(self, repo: Repo, rev: str, lines: list[dict], create_pr: bool) -> dict:
        header = lines[0]["value"] if lines and lines[0]["key"] == "header" else {}
        head = self.commit_of(repo, rev)
        parent = header.get("parentCommit")
        if parent and parent != head["sha"]:
            raise HubError(412, None, "A commit has happened since. Please refresh and try again.")
        files, changed = dict(head["files"]), []
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            path = value["path"]
            if key == "file":
                files[path] = ("regular", base64.b64decode(value["content"]))
            elif key == "lfsFile":
                if value["oid"] not in repo.lfs:
                    raise HubError(400, None, f"LFS object {value['oid']} of {path} was never uploaded")
                files[path] = ("lfs", value["oid"])
            elif key == "deletedFile":
                if path not in files:
                    raise HubError(404, "EntryNotFound", f"{path} does not exist")
                del files[path]
            elif key == "deletedFolder":
                prefix = path.rstrip("/") + "/"
                for p in [p for p in files if p.startswith(prefix)]:
                    del files[p]
            else:
                raise HubError(400, None, f"unknown commit operation {key}")
            changed.append(path)
        sha = self.new_sha()
        repo.commits[sha] = {"files": files, "parent": head["sha"], "summary": header.get("summary", ""),
                             "changed": changed}
        answer = {"commitUrl": f"{self.url}/datasets/{repo.id}/commit/{sha}", "commitOid": sha}
        if create_pr:
            repo.pulls += 1
            repo.refs[f"refs/pr/{repo.pulls}"] = sha
            answer["pullRequestUrl"] = f"{self.url}/datasets/{repo.id}/discussions/{repo.pulls}"
        else:
            repo.refs[rev] = sha
        return answer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    # -- plumbing ----------------------------------------------------------------------------------------------
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body=b"", headers: dict | None = None, head_only: bool = False) -> None:
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head_only and self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, exc: HubError) -> None:
        headers = {"X-Error-Message": exc.message}
        if exc.code:
            headers["X-Error-Code"] = exc.code
        self._send(exc.status, {"error": exc.message}, headers)

    def _authorised(self) -> None:
        if self.hub.tokens is None:
            return
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.hub.tokens:
            raise HubError(401, None, "Invalid credentials in Authorization header")

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        raw = url.path.split("/")[1:]
        segments = [unquote(s) for s in raw]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.hub.requests.append((method, self.path))
        try:
            with self.hub.lock:
                if method == "PUT" and segments[0] == "lfs-upload":
                    return self._put(f"{segments[1]}/{segments[2]}", segments[3])
                if segments[0] != "api" and method in ("GET", "HEAD", "POST") and len(segments) > 4 \
                        and segments[0] == "datasets" and segments[3] == "resolve":
                    return self._resolve(f"{segments[1]}/{segments[2]}", segments[4], "/".join(segments[5:]),
                                         method == "HEAD")
                if method == "POST" and segments[0] == "datasets" and segments[2].endswith(".git"):
                    return self._batch(f"{segments[1]}/{segments[2][:-4]}")
                self._authorised()
                if segments[:3] == ["api", "repos", "create"]:
                    return self._create()
                if segments[:2] == ["api", "validate-yaml"]:
                    return self._validate()
                if segments[:2] == ["api", "datasets"] and len(segments) >= 4:
                    repo_id, rest = f"{segments[2]}/{segments[3]}", segments[4:]
                    if not rest:
                        return self._info(repo_id, "main")
                    if rest[0] == "revision":
                        return self._info(repo_id, rest[1])
                    if rest[0] == "tree":
                        folder = unquote("/".join(raw[6:])) if len(raw) > 6 else ""
                        return self._tree(repo_id, rest[1], folder, query.get("recursive") == "true")
                    if rest[0] == "paths-info":
                        return self._paths_info(repo_id, rest[1])
                    if rest[0] == "preupload":
                        return self._preupload(repo_id, rest[1])
                    if rest[0] == "settings" and method == "PUT":
                        return self._settings(repo_id)
                    if rest[0] == "commit":
                        return self._commit(repo_id, rest[1], query.get("create_pr") == "1")
                raise HubError(404, None, f"no route for {method} {url.path}")
        except HubError as exc:
            self._error(exc)

    def do_GET(self):
        self._route("GET")

    def do_HEAD(self):
        self._route("HEAD")

    def do_POST(self):
        self._route("POST")

    def do_PUT(self):
        self._route("PUT")

    # -- endpoints ---------------------------------------------------------------------------------------------
    def _create(self):
        request = json.loads(self._body())
        if self.hub.create_status:
            raise HubError(self.hub.create_status, None, "You don't have the rights to create a dataset under this namespace")
        repo_id = f"{request['organization']}/{request['name']}" if request.get("organization") else request["name"]
        if repo_id in self.hub.repos:
            return self._send(409, {"error": "You already created this dataset repo", "url": f"{self.hub.url}/datasets/{repo_id}"})
        self.hub.create(repo_id, request.get("visibility") == "private" or bool(request.get("private")))
        self._send(200, {"url": f"{self.hub.url}/datasets/{repo_id}"})

    def _info(self, repo_id: str, rev: str):
        repo = self.hub.repo(repo_id)
        commit = self.hub.commit_of(repo, rev)
        card = commit["files"].get("README.md")
        data = {}
        if card and card[0] == "regular" and card[1].startswith(b"---"):
            data = yaml.safe_load(card[1].decode().split("---")[1]) or {}
        self._send(200, {"id": repo_id, "sha": commit["sha"], "private": repo.private, "gated": repo.gated,
                         "lastModified": "2026-01-01T00:00:00.000Z", "cardData": data,
                         "siblings": [{"rfilename": p} for p in sorted(commit["files"])]})

    def _settings(self, repo_id: str):
        repo, request = self.hub.repo(repo_id), json.loads(self._body())
        if request.get("gated") not in (None, "auto", "manual", False):
            raise HubError(400, None, f"gated must be 'auto', 'manual' or false, not {request['gated']!r}")
        if "gated" in request:
            repo.gated = request["gated"]
        if "visibility" in request:
            repo.private = request["visibility"] == "private"
        self._send(200, {})

    def _validate(self):
        content = json.loads(self._body()).get("content", "")
        try:
            if not content.startswith("---"):
                raise ValueError("no YAML front matter")
            data = yaml.safe_load(content.split("---")[1])
            if not isinstance(data, dict):
                raise ValueError("the front matter is not a mapping")
        except (ValueError, yaml.YAMLError) as exc:
            return self._send(400, {"errors": [{"message": f"Invalid YAML: {exc}"}]})
        self._send(200, {"warnings": []})

    def _tree(self, repo_id: str, rev: str, folder: str, recursive: bool):
        repo = self.hub.repo(repo_id)
        commit = self.hub.commit_of(repo, rev)
        self._send(200, self.hub.tree(repo, commit["files"], folder, recursive))

    def _paths_info(self, repo_id: str, rev: str):
        repo = self.hub.repo(repo_id)
        commit = self.hub.commit_of(repo, rev)
        form = parse_qs(self._body().decode())
        found = []
        for path in form.get("paths", []):
            if path in commit["files"]:
                found.append(self.hub.entry(repo, path, commit["files"][path]))
            elif any(p.startswith(path.rstrip("/") + "/") for p in commit["files"]):
                found.append({"type": "directory", "path": path, "oid": hashlib.sha1(path.encode()).hexdigest()})
        self._send(200, found)

    def _preupload(self, repo_id: str, rev: str):
        repo = self.hub.repo(repo_id)
        files = self.hub.commit_of(repo, rev)["files"] if rev in repo.refs or rev in repo.commits else {}
        answer = []
        for item in json.loads(self._body())["files"]:
            path = item["path"]
            lfs = not path.endswith((".md", ".gitattributes", ".json", ".txt")) or item["size"] > 10_000_000
            entry = {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
            if path in files:
                kind, value = files[path]
                entry["oid"] = value if kind == "lfs" else git_blob_sha1(value)
            answer.append(entry)
        self._send(200, {"files": answer})

    def _batch(self, repo_id: str):
        repo = self.hub.repo(repo_id)
        request = json.loads(self._body())
        objects = []
        for obj in request["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in repo.lfs:
                entry["actions"] = {"upload": {"href": f"{self.hub.url}/lfs-upload/{repo_id}/{obj['oid']}",
                                               "header": {}}}
            objects.append(entry)
        self._send(200, {"transfer": "basic", "objects": objects}, {"Content-Type": "application/vnd.git-lfs+json"})

    def _put(self, repo_id: str, oid: str):
        hub = self.hub
        repo = hub.repo(repo_id)
        if hub.drop_puts_after is not None and hub.puts >= hub.drop_puts_after:
            self.rfile.read(min(1024, int(self.headers.get("Content-Length") or 0)))  # part of the body, then hang up
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            raise HubError(400, None, "content does not match its oid")
        repo.lfs[oid] = data
        hub.puts += 1
        self._send(200, b"")

    def _commit(self, repo_id: str, rev: str, create_pr: bool):
        repo = self.hub.repo(repo_id)
        lines = [json.loads(line) for line in self._body().decode().splitlines() if line.strip()]
        if self.hub.commit_status:
            raise HubError(self.hub.commit_status, None, "Internal Error - We're working hard to fix this")
        self._send(200, self.hub.apply_commit(repo, rev, lines, create_pr))

    def _resolve(self, repo_id: str, rev: str, path: str, head_only: bool):
        repo = self.hub.repo(repo_id)
        commit = self.hub.commit_of(repo, rev)
        if path not in commit["files"]:
            raise HubError(404, "EntryNotFound", f"{path} does not exist")
        kind, value = commit["files"][path]
        data = value if kind == "regular" else repo.lfs[value]
        etag = git_blob_sha1(data) if kind == "regular" else value
        headers = {"X-Repo-Commit": commit["sha"], "ETag": f'"{etag}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        spec = self.headers.get("Range")
        if spec and spec.startswith("bytes="):
            start_text, _, end_text = spec[6:].partition("-")
            start = int(start_text)
            end = min(int(end_text), len(data) - 1) if end_text else len(data) - 1
            if start >= len(data):
                return self._send(416, b"", {**headers, "Content-Range": f"bytes */{len(data)}"}, head_only)
            return self._send(206, data[start:end + 1], {**headers, "Content-Range": f"bytes {start}-{end}/{len(data)}"},
                              head_only)
        self._send(200, data, headers, head_only)
