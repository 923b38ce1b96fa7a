"""A small in-memory Hugging Face Hub on 127.0.0.1, so tests drive the REAL `huggingface_hub` client over real HTTP.

Written against huggingface_hub 2.4.0 (its source is the reference for every route, header and JSON shape below).
Repos are model, dataset or Space repos named "namespace/name", kept in memory as a chain of commits (each one a full
{path: bytes} snapshot), with branches pointing at commits. One lock guards all state; each request is served whole
under it, so every commit is atomic (all operations apply, or the request fails and nothing changes).

Routes ({t} is "models", "datasets" or "spaces"; resolve URLs carry "datasets/" or "spaces/", nothing for models):
    GET  /api/whoami-v2                          the token's user (401 without a valid token)
    POST /api/repos/create                       create_repo (409 when it exists; exist_ok is the client's; a Space
                                                 needs an "sdk", kept and reported by space_info)
    GET  /api/{t}/{repo}[/revision/{rev}]        model_info / dataset_info / repo_info: sha, private, siblings, ...
    GET  /api/{t}/{repo}/tree/{rev}[/{path}]     list_repo_tree / list_repo_files (snapshot_download lists with it)
    GET  /api/{t}/{repo}/commits/{rev}           list_repo_commits
    POST /api/{t}/{repo}/preupload/{rev}         answers "regular" for every file, so contents travel base64-inline
    POST /api/{t}/{repo}/commit/{rev}            NDJSON: header, file, deletedFile, deletedFolder (no LFS/Xet)
    HEAD|GET /[datasets/|spaces/]{repo}/resolve/{rev}/{path}   ETag (git blob sha1), X-Repo-Commit, Content-Length, Range
    GET  /api/agent-harnesses, POST /api/validate-yaml  side calls the client makes on its own (see below)

Errors are the Hub's: an unknown or hidden (private, not yours) repo answers X-Error-Code: RepoNotFound, with 401 to
anonymous callers and 404 to authenticated ones, as the Hub does; unknown revision -> 404 RevisionNotFound; unknown
file -> 404 EntryNotFound (with X-Repo-Commit). A token that is not known -> 401 "Invalid credentials in Authorization
header"; a write without a token -> 401; a write to another user's namespace -> 403. Unimplemented routes -> 404
with no error code (see `LocalHub.requests()` for what the client asked).
Unlike the Hub: binary and large files are taken inline too (the Hub would want LFS/Xet for them), a new repo's
"initial commit" holds no .gitattributes, and there are no pull requests, tags or LFS/Xet routes. With hf_xet
installed, upload_folder goes through the client's pipelined uploader: same two calls, but folders of more than
250 files arrive as several commits ("msg", "msg (part 2)", ...).

Pointing the client at the server (`local_hub` fixture, `point_client_at`): huggingface_hub reads its settings from
the environment ONCE, at import, so setting env vars in a test is not enough for the current process. Patched:
  * constants.ENDPOINT and constants.HUGGINGFACE_CO_URL_TEMPLATE (resolve URLs are built from the template, and
    HfApi() / CommitScheduler / hf_hub_download default to ENDPOINT), plus every module that copied them by name
    (`from ..constants import ENDPOINT`: utils._git_credential, cli.auth; the package's lazy top-level attribute);
  * hf_api.api.endpoint: the module-level HfApi() behind `huggingface_hub.upload_folder`, `model_info`, ... froze
    the endpoint when it was created at import;
  * constants.HF_URL_HOSTS (the hosts the client treats as the Hub when following redirects and parsing URLs);
  * constants.HF_HUB_OFFLINE = False (the session's request hook refuses every request while it is True);
  * HF_HOME-derived paths (HF_HOME, HF_HUB_CACHE and the legacy HUGGINGFACE_HUB_CACHE, HF_ASSETS_CACHE,
    HF_XET_CACHE, the token files, AGENT_HARNESSES_PATH) and utils._cache_manager.HF_HUB_CACHE, into a tmp folder:
    downloads start from an empty cache, and no token stored on the machine is picked up implicitly;
  * env: HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE=0, NO_PROXY += 127.0.0.1, and HF_TOKEN (and friends)
    removed, so subprocesses (which import huggingface_hub afresh) reach the same server with the same settings.
    Note that conftest.child_env() forces HF_HUB_OFFLINE=1 for children; override it for a child that must push.
Side calls: the first request of a process builds a User-Agent, which fetches {ENDPOINT}/api/agent-harnesses once
(answered with an empty registry); committing a README.md first POSTs it to /api/validate-yaml (answered "valid").
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import sys
import threading
import traceback
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

TOKEN, USER = "hf_test_token", "tester"  # the default write token and its user
OTHER_TOKEN, OTHER_USER = "hf_other_token", "other"  # a second, valid user that owns nothing
KINDS = {"models": "model", "datasets": "dataset", "spaces": "space"}
PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}  # URL prefix of each repo type in web/resolve URLs
SPACE_SDKS = ("gradio", "docker", "static")  # what the Hub accepts as a Space's "sdk" (huggingface_hub's list)
API = re.compile(r"^/api/(models|datasets|spaces)/([^/]+/[^/]+)"
                 r"(?:/(revision|tree|commits|preupload|commit)/([^/]+)(/.*)?)?$")
RESOLVE = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob: what the Hub uses as the ETag and tree oid of a regular (non-LFS) file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class HubError(Exception):
    """An error answer: HTTP status, message (body and X-Error-Message), optional X-Error-Code, headers, body keys."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None,
                 **body):
        super().__init__(message)
        self.status, self.body = status, {"error": message, **body}
        header_safe = message.encode("ascii", "replace").decode()  # HTTP headers are latin-1; paths may not be
        self.headers = {"X-Error-Message": header_safe, **({"X-Error-Code": code} if code else {}), **(headers or {})}


class LocalHub:
    """A small in-memory Hugging Face Hub speaking the endpoints the project's client calls, on 127.0.0.1."""

    def __init__(self, tokens: dict[str, str] | None = None):
        self.tokens = dict(tokens) if tokens is not None else {TOKEN: USER, OTHER_TOKEN: OTHER_USER}
        self._lock = threading.Lock()
        self._repos: dict[tuple[str, str], dict] = {}  # (repo_type, repo_id) -> repo
        self._log: list[tuple[str, str]] = []
        self._counter = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------- lifecycle
    def start(self) -> str:
        """Serve on a free port in a daemon thread; returns the endpoint URL "http://127.0.0.1:PORT"."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.hub, self._server.connections = self, set()  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="local-hub", daemon=True)
        self._thread.start()
        return self.endpoint

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            # Also end kept-alive connections: the client's pool must not reach this hub through a later one's port.
            for connection in list(self._server.connections):  # type: ignore[attr-defined]
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._thread.join(timeout=5)
            self._server = None

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalHub is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ------------------------------------------------------------------------------ inspection for tests
    def files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> dict[str, bytes]:
        """{path: content} of the repo at a branch or commit sha (KeyError for an unknown repo)."""
        with self._lock:
            return dict(self._resolve_rev(self._repos[(repo_type, repo_id)], revision)["files"])

    def commits(self, repo_id: str, repo_type: str = "model") -> list[dict]:
        """History of main, newest first: [{"oid", "message"}], ending with the repo's "initial commit"."""
        with self._lock:
            repo = self._repos[(repo_type, repo_id)]
            return [{"oid": c["oid"], "message": c["message"]} for c in self._history(repo, "main")]

    def requests(self) -> list[tuple[str, str]]:
        """(method, URL path without query) of every request received, in order."""
        with self._lock:
            return list(self._log)

    # ----------------------------------------------------------------------------------------- plumbing
    def _user(self, headers) -> str | None:
        auth = headers.get("Authorization")
        if not auth:
            return None
        user = self.tokens.get(auth.removeprefix("Bearer ").strip())
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return user

    def _repo(self, kind: str, repo_id: str, user: str | None, write: bool = False) -> dict:
        repo = self._repos.get((kind, repo_id))
        if repo is None or (repo["private"] and user != repo["owner"]):
            raise HubError(401 if user is None else 404, "Repository not found", "RepoNotFound")
        if write and user is None:
            raise HubError(401, "You must be authenticated to write to this repo: pass a token")
        if write and user != repo["owner"]:
            raise HubError(403, f"You don't have the rights to write to {repo_id}")
        return repo

    def _resolve_rev(self, repo: dict, revision: str) -> dict:
        oid = repo["branches"].get(revision)
        if oid is None and re.fullmatch(r"[0-9a-f]{7,40}", revision):
            matches = [o for o in repo["commits"] if o.startswith(revision)]
            oid = matches[0] if len(matches) == 1 else None
        if oid is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo["commits"][oid]

    def _history(self, repo: dict, revision: str) -> list[dict]:
        commit, out = self._resolve_rev(repo, revision), []
        while commit is not None:
            out.append(commit)
            commit = repo["commits"].get(commit["parent"])
        return out

    def _new_commit(self, repo: dict, parent: str | None, files: dict, message: str, description: str,
                    author: str) -> str:
        self._counter += 1
        oid = hashlib.sha1(f"{repo['type']}/{repo['id']}\0{parent}\0{message}\0{self._counter}".encode()).hexdigest()
        repo["commits"][oid] = {"oid": oid, "parent": parent, "files": files, "message": message,
                                "description": description, "author": author, "date": _now()}
        return oid

    def _web_url(self, kind: str, repo_id: str) -> str:
        return f"{self.endpoint}/{PREFIX[kind]}{repo_id}"

    # ------------------------------------------------------------------------------------------ routes
    def handle(self, method: str, path: str, query: dict, headers, body: bytes) -> tuple[int, object, dict]:
        """Answer one request: (status, JSON-able payload or raw bytes, headers). Called under the lock."""
        user = self._user(headers)
        if path == "/api/whoami-v2":
            if user is None:
                raise HubError(401, "Invalid username or password.")
            return 200, {"type": "user", "id": user, "name": user, "fullname": user, "orgs": [],
                         "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}}, {}
        if path == "/api/agent-harnesses":
            return 200, {"standardEnvVars": [], "harnesses": {}}, {}
        if path == "/api/validate-yaml" and method == "POST":
            return 200, {"errors": [], "warnings": []}, {}
        if path == "/api/repos/create" and method == "POST":
            payload = json.loads(body)
            kind = payload.get("type") or "model"
            if kind not in PREFIX:
                raise HubError(400, f"LocalHub only serves model, dataset and Space repos, not {kind!r}")
            if kind == "space" and payload.get("sdk") not in SPACE_SDKS:
                raise HubError(400, f"A Space needs an sdk, one of {list(SPACE_SDKS)}; got {payload.get('sdk')!r}")
            if user is None:
                raise HubError(401, "Invalid username or password.")
            namespace = payload.get("organization") or user
            repo_id = f"{namespace}/{payload['name']}"
            return self._create(kind, repo_id, namespace, user, payload)
        if (match := RESOLVE.match(path)) and method in ("GET", "HEAD"):
            kind = {"datasets": "dataset", "spaces": "space"}.get(match[1], "model")
            repo = self._repo(kind, unquote(match[2]), user)
            return self._resolve(self._resolve_rev(repo, unquote(match[3])), unquote(match[4]), headers)
        if match := API.match(path):
            kind, repo_id, action = KINDS[match[1]], unquote(match[2]), match[3]
            revision, rest = unquote(match[4] or "main"), unquote((match[5] or "").strip("/"))
            if action in ("preupload", "commit") and method == "POST":
                repo = self._repo(kind, repo_id, user, write=True)
                if "create_pr" in query:
                    raise HubError(400, "LocalHub does not support pull requests (create_pr)")
                if action == "preupload":
                    return self._preupload(repo, revision, json.loads(body))
                return self._commit(repo, revision, body, user)
            if method == "GET" and action in (None, "revision", "tree", "commits"):
                repo = self._repo(kind, repo_id, user)
                if action == "tree":
                    return self._tree(self._resolve_rev(repo, revision), rest, query)
                if action == "commits":
                    return 200, [{"id": c["oid"], "title": c["message"], "message": c["description"],
                                  "authors": [{"user": c["author"]}], "date": c["date"]}
                                 for c in self._history(repo, revision)], {}
                return self._info(repo, self._resolve_rev(repo, revision), "blobs" in query)
        raise HubError(404, f"LocalHub does not implement {method} {path}")

    def _create(self, kind: str, repo_id: str, namespace: str, user: str, payload: dict):
        if (kind, repo_id) in self._repos:
            # The client's create_repo(exist_ok=True) reads "url" from this 409 body, as the Hub sends it.
            raise HubError(409, f"You already created this {kind} repo", url=self._web_url(kind, repo_id))
        if namespace != user:
            raise HubError(403, f"You don't have the rights to create a {kind} under the namespace {namespace!r}")
        private = payload.get("visibility") == "private" or payload.get("private") is True
        repo = {"type": kind, "id": repo_id, "owner": user, "private": private, "created": _now(),
                "commits": {}, "branches": {}, "sdk": payload.get("sdk")}
        repo["branches"]["main"] = self._new_commit(repo, None, {}, "initial commit", "", user)
        self._repos[(kind, repo_id)] = repo
        return 200, {"url": self._web_url(kind, repo_id), "name": repo_id, "id": repo_id}, {}

    def _info(self, repo: dict, commit: dict, blobs: bool):
        siblings = [{"rfilename": p, **({"size": len(d), "blobId": git_blob_sha1(d)} if blobs else {})}
                    for p, d in sorted(commit["files"].items())]
        return 200, {"_id": repo["id"], "id": repo["id"], "author": repo["owner"], "sha": commit["oid"],
                     "private": repo["private"], "gated": False, "disabled": False, "downloads": 0, "likes": 0,
                     "tags": [], "createdAt": repo["created"], "lastModified": commit["date"],
                     "siblings": siblings, **({"sdk": repo["sdk"]} if repo["type"] == "space" else {})}, {}

    def _tree(self, commit: dict, folder: str, query: dict):
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        prefix, entries = (folder + "/" if folder else ""), {}
        for path, data in sorted(commit["files"].items()):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix):].split("/")
            for depth in range(1, len(parts)):  # the folders between `folder` and the file
                sub = prefix + "/".join(parts[:depth])
                entries.setdefault(sub, {"type": "directory", "oid": hashlib.sha1(sub.encode()).hexdigest(),
                                         "size": 0, "path": sub})
                if not recursive:
                    break
            if recursive or len(parts) == 1:
                entries[path] = {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": path}
        if folder and not entries:
            raise HubError(404, f"Entry not found: {folder}", "EntryNotFound")
        return 200, list(entries.values()), {}

    def _preupload(self, repo: dict, revision: str, payload: dict):
        current = self._resolve_rev(repo, revision)["files"]
        files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                  "oid": git_blob_sha1(current[f["path"]]) if f["path"] in current else None}
                 for f in payload["files"]]
        return 200, {"files": files}, {}

    def _commit(self, repo: dict, branch: str, body: bytes, user: str):
        if branch not in repo["branches"]:
            raise HubError(404, f"Invalid rev id: {branch} (commits go to an existing branch)", "RevisionNotFound")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The commit payload must start with a header line")
        header, head = lines[0]["value"], repo["commits"][repo["branches"][branch]]
        if header.get("parentCommit") and not head["oid"].startswith(header["parentCommit"]):
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(head["files"])  # the new tree: built aside, stored only if every operation applies
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            path = value["path"]
            if key == "file":
                raw = value["content"]
                files[path] = base64.b64decode(raw) if value.get("encoding") == "base64" else raw.encode()
            elif key == "deletedFile":
                if files.pop(path, None) is None:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
            elif key == "deletedFolder":
                inside = [p for p in files if p.startswith(path.rstrip("/") + "/")]
                if not inside:
                    raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                for p in inside:
                    del files[p]
            else:
                raise HubError(400, f"LocalHub only takes regular files inline; unsupported operation {key!r}")
        oid = self._new_commit(repo, head["oid"], files, header["summary"], header.get("description", ""), user)
        repo["branches"][branch] = oid
        return 200, {"success": True, "commitOid": oid, "hookOutput": "",
                     "commitUrl": f"{self._web_url(repo['type'], repo['id'])}/commit/{oid}"}, {}

    def _resolve(self, commit: dict, path: str, request_headers):
        data = commit["files"].get(path)
        if data is None:
            raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit["oid"]})
        headers = {"Content-Type": "application/octet-stream", "ETag": f'"{git_blob_sha1(data)}"',
                   "X-Repo-Commit": commit["oid"], "Accept-Ranges": "bytes"}
        if match := re.fullmatch(r"bytes=(\d+)-(\d*)", request_headers.get("Range", "")):
            start, end = int(match[1]), int(match[2] or len(data) - 1)
            part = data[start:end + 1]
            headers["Content-Range"] = f"bytes {start}-{start + len(part) - 1}/{len(data)}"
            return 206, part, headers
        return 200, data, headers


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    timeout = 60

    def log_message(self, format, *args):  # quiet: LocalHub.requests() keeps the log
        pass

    def setup(self):
        super().setup()
        self.server.connections.add(self.connection)  # type: ignore[attr-defined]

    def finish(self):
        super().finish()
        self.server.connections.discard(self.connection)  # type: ignore[attr-defined]

    def _dispatch(self):
        hub: LocalHub = self.server.hub  # type: ignore[attr-defined]
        url, body = urlsplit(self.path), self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with hub._lock:
            hub._log.append((self.command, url.path))
            try:
                status, payload, headers = hub.handle(self.command, url.path, parse_qs(url.query), self.headers, body)
            except HubError as error:
                status, payload, headers = error.status, error.body, error.headers
            except Exception as error:  # a LocalHub bug: say so at once (a 5xx would make the client retry)
                traceback.print_exc()
                status, payload, headers = 400, {"error": f"LocalHub internal error: {error!r}"}, {}
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        headers = {"Content-Type": "application/json", **headers, "Content-Length": str(len(data))}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch  # the client sends bodies with Content-Length


def point_client_at(monkeypatch: pytest.MonkeyPatch, endpoint: str, hf_home: str | Path) -> None:
    """Point huggingface_hub (this process, and subprocesses via env) at `endpoint`, with an empty cache and no
    implicit token. See the module docstring for what is patched and why."""
    import huggingface_hub
    from huggingface_hub import constants, hf_api

    home = Path(hf_home)
    home.mkdir(parents=True, exist_ok=True)
    cache = str(home / "hub")
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HUGGINGFACE_CO_STAGING",
                 "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN_PATH", "HF_XET_CACHE", "HF_ASSETS_CACHE"):
        monkeypatch.delenv(name, raising=False)
    no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))
    for name, value in {"HF_ENDPOINT": endpoint, "HF_HOME": str(home), "HF_HUB_CACHE": cache,
                        "HF_HUB_OFFLINE": "0", "NO_PROXY": no_proxy, "no_proxy": no_proxy}.items():
        monkeypatch.setenv(name, value)

    patched = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_URL_HOSTS": constants.HF_URL_HOSTS | {"127.0.0.1"},
        "HF_HUB_OFFLINE": False,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": cache,
        "HUGGINGFACE_HUB_CACHE": cache,
        "HF_ASSETS_CACHE": str(home / "assets"),
        "HF_XET_CACHE": str(home / "xet"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "AGENT_HARNESSES_PATH": str(home / ".agent_harnesses.json"),
    }
    for name, value in patched.items():
        monkeypatch.setattr(constants, name, value)
    # Modules that copied a constant by name at import (`from ..constants import ENDPOINT`), if loaded.
    for module_name, module in list(sys.modules.items()):
        if module is not constants and module_name.split(".")[0] == "huggingface_hub":
            for name in ("ENDPOINT", "HUGGINGFACE_CO_URL_TEMPLATE", "HF_HUB_CACHE"):
                if name in vars(module):
                    monkeypatch.setattr(module, name, patched[name])
    monkeypatch.setattr(hf_api.api, "endpoint", endpoint)  # the HfApi() behind huggingface_hub.upload_folder & co
    assert huggingface_hub.constants.ENDPOINT == endpoint


@pytest.fixture
def local_hub(monkeypatch, tmp_path):
    """A started LocalHub (tokens TOKEN -> USER, OTHER_TOKEN -> OTHER_USER), the client pointed at it, HF_HOME in
    tmp_path/hf_home (empty cache); stopped after the test."""
    hub = LocalHub()
    point_client_at(monkeypatch, hub.start(), tmp_path / "hf_home")
    yield hub
    hub.stop()
