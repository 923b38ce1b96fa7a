"""The real huggingface_hub client against tests/hub_server.py's LocalHub, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    CommitScheduler,
    HfApi,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalTokenNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from hub_server import OTHER_TOKEN, TOKEN, USER, local_hub  # noqa: F401

BINARY = bytes(range(256)) * 4


def make_folder(root: Path) -> Path:
    (root / "weights").mkdir(parents=True)
    (root / "config.json").write_text('{"latent_dim": 16}')
    (root / "notes.txt").write_text("first")
    (root / "weights" / "model.safetensors").write_bytes(BINARY)
    return root


def snapshot_files(folder: str | Path) -> dict[str, bytes]:
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def pushed(local_hub, tmp_path):
    """tester/gan with two commits: "step 1" (3 files) then "step 2" (config changed, notes.txt deleted)."""
    api = HfApi(token=TOKEN)
    api.create_repo("tester/gan", exist_ok=True)
    first = api.upload_folder(folder_path=make_folder(tmp_path / "model"), repo_id="tester/gan",
                              commit_message="step 1")
    second = api.create_commit("tester/gan", commit_message="step 2", operations=[
        CommitOperationAdd("config.json", b'{"latent_dim": 32}'), CommitOperationDelete("notes.txt")])
    return first.oid, second.oid


def test_create_repo_public_private_and_exist_ok(local_hub):
    api = HfApi(token=TOKEN)
    url = api.create_repo("tester/public-model")
    assert (url.repo_id, url.repo_type, url.endpoint) == ("tester/public-model", "model", local_hub.endpoint)
    assert api.create_repo("tester/public-model", exist_ok=True).repo_id == "tester/public-model"
    with pytest.raises(HfHubHTTPError) as error:
        api.create_repo("tester/public-model")
    assert error.value.response.status_code == 409
    api.create_repo("tester/secret-data", repo_type="dataset", private=True, exist_ok=True)
    assert api.create_repo("no-namespace").repo_id == f"{USER}/no-namespace"  # the token's user, as on the Hub
    assert api.model_info("tester/public-model").private is False
    info = api.dataset_info("tester/secret-data")
    assert info.private is True and len(info.sha) == 40 and info.siblings == []
    assert [c["message"] for c in local_hub.commits("tester/secret-data", "dataset")] == ["initial commit"]
    with pytest.raises(HfHubHTTPError) as error:  # another user's namespace
        api.create_repo("other/mine")
    assert error.value.response.status_code == 403


def test_upload_commit_history_and_files(local_hub, pushed, tmp_path):
    first, second = pushed
    assert local_hub.files("tester/gan", revision=first) == {
        "config.json": b'{"latent_dim": 16}', "notes.txt": b"first", "weights/model.safetensors": BINARY}
    assert local_hub.files("tester/gan") == {"config.json": b'{"latent_dim": 32}', "weights/model.safetensors": BINARY}
    history = local_hub.commits("tester/gan")
    assert [c["message"] for c in history] == ["step 2", "step 1", "initial commit"]
    assert [c["oid"] for c in history[:2]] == [second, first]
    api = HfApi(token=TOKEN)
    assert [(c.commit_id, c.title) for c in api.list_repo_commits("tester/gan")][:2] == [
        (second, "step 2"), (first, "step 1")]
    assert sorted(api.list_repo_files("tester/gan", revision=first)) == [
        "config.json", "notes.txt", "weights/model.safetensors"]
    assert [s.rfilename for s in api.model_info("tester/gan").siblings] == ["config.json", "weights/model.safetensors"]
    # Unchanged files are skipped client-side (preupload returns their oid): no empty commit is made.
    api.upload_file(path_or_fileobj=BINARY, path_in_repo="weights/model.safetensors", repo_id="tester/gan")
    assert len(local_hub.commits("tester/gan")) == 3
    # A folder deletion, and a README.md (the client validates its YAML with the server first).
    card = b"---\nlicense: mit\n---\n# GAN\n"
    api.create_commit("tester/gan", commit_message="step 3", operations=[
        CommitOperationDelete("weights/", is_folder=True), CommitOperationAdd("README.md", card)])
    assert local_hub.files("tester/gan") == {"config.json": b'{"latent_dim": 32}', "README.md": card}
    assert ("POST", "/api/validate-yaml") in local_hub.requests()
    # Only regular inline uploads: no LFS batch, no Xet token, nothing the server does not implement.
    assert not [path for _, path in local_hub.requests() if "lfs" in path or "xet" in path]
    assert ("POST", "/api/models/tester/gan/commit/main") in local_hub.requests()


def test_atomic_commit_failure_changes_nothing(local_hub, pushed):
    before = local_hub.files("tester/gan")
    with pytest.raises(EntryNotFoundError):
        HfApi(token=TOKEN).create_commit("tester/gan", commit_message="bad", operations=[
            CommitOperationAdd("new.txt", b"new"), CommitOperationDelete("no-such-file.txt")])
    assert local_hub.files("tester/gan") == before and len(local_hub.commits("tester/gan")) == 3


def test_downloads_into_empty_cache_at_main_and_old_sha(local_hub, pushed, tmp_path):
    first, second = pushed
    from huggingface_hub import constants

    assert Path(constants.HF_HUB_CACHE).is_relative_to(tmp_path) and not Path(constants.HF_HUB_CACHE).exists()
    main = snapshot_download("tester/gan")
    assert Path(main).name == second
    assert snapshot_files(main) == local_hub.files("tester/gan")
    old = snapshot_download("tester/gan", revision=first)
    assert snapshot_files(old) == local_hub.files("tester/gan", revision=first)
    only = snapshot_download("tester/gan", allow_patterns=["*.json"], cache_dir=tmp_path / "other-cache")
    assert snapshot_files(only) == {"config.json": b'{"latent_dim": 32}'}
    path = hf_hub_download("tester/gan", "weights/model.safetensors", cache_dir=tmp_path / "third-cache")
    assert Path(path).read_bytes() == BINARY
    assert Path(hf_hub_download("tester/gan", "notes.txt", revision=first[:7], cache_dir=tmp_path / "c4")).read_text() \
        == "first"  # short sha


def test_dataset_repo_and_private_access(local_hub, tmp_path):
    api = HfApi(token=TOKEN)
    api.create_repo("tester/private-data", repo_type="dataset", private=True)
    api.upload_file(path_or_fileobj=b"a,b\n1,2\n", path_in_repo="data/train.csv", repo_id="tester/private-data",
                    repo_type="dataset", commit_message="add data")
    assert local_hub.files("tester/private-data", "dataset") == {"data/train.csv": b"a,b\n1,2\n"}
    # Without a token the Hub answers 401 + X-Error-Code: RepoNotFound: the client raises RepositoryNotFoundError
    # (not its GatedRepoError subclass), from hf_hub_download, snapshot_download and the API alike.
    for call in (lambda: hf_hub_download("tester/private-data", "data/train.csv", repo_type="dataset"),
                 lambda: snapshot_download("tester/private-data", repo_type="dataset"),
                 lambda: HfApi().dataset_info("tester/private-data")):
        with pytest.raises(RepositoryNotFoundError) as error:
            call()
        assert type(error.value) is RepositoryNotFoundError and error.value.response.status_code == 401
    with pytest.raises(RepositoryNotFoundError) as error:  # someone else's token: 404, the repo stays hidden
        hf_hub_download("tester/private-data", "data/train.csv", repo_type="dataset", token=OTHER_TOKEN)
    assert error.value.response.status_code == 404
    path = hf_hub_download("tester/private-data", "data/train.csv", repo_type="dataset", token=TOKEN)
    assert Path(path).read_bytes() == b"a,b\n1,2\n"
    folder = snapshot_download("tester/private-data", repo_type="dataset", token=TOKEN, cache_dir=tmp_path / "c")
    assert snapshot_files(folder) == {"data/train.csv": b"a,b\n1,2\n"}
    assert ("HEAD", "/datasets/tester/private-data/resolve/main/data/train.csv") in local_hub.requests()


def test_space_repo_needs_an_sdk_and_serves_its_files(local_hub, tmp_path):
    from huggingface_hub.utils import get_session

    api = HfApi(token=TOKEN)  # the client refuses a Space without an sdk itself, so ask the server directly
    answer = get_session().post(f"{local_hub.endpoint}/api/repos/create", json={"name": "no-sdk", "type": "space"},
                                headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 400 and "sdk" in answer.json()["error"]
    api.create_repo("tester/demo", repo_type="space", space_sdk="gradio")
    api.upload_file(path_or_fileobj=b"print('hi')\n", path_in_repo="app.py", repo_id="tester/demo",
                    repo_type="space", commit_message="app")
    assert local_hub.files("tester/demo", "space") == {"app.py": b"print('hi')\n"}
    assert api.space_info("tester/demo").sdk == "gradio"
    folder = snapshot_download("tester/demo", repo_type="space", cache_dir=tmp_path / "c")
    assert snapshot_files(folder) == {"app.py": b"print('hi')\n"}
    assert any(path.startswith("/spaces/tester/demo/resolve/") for _, path in local_hub.requests())


def test_not_found_errors(local_hub, pushed):
    for call in (lambda: hf_hub_download("tester/no-such-repo", "config.json"),
                 lambda: snapshot_download("tester/no-such-repo"),
                 lambda: HfApi(token=TOKEN).model_info("tester/no-such-repo")):
        with pytest.raises(RepositoryNotFoundError):
            call()
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("tester/gan", "config.json", revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        snapshot_download("tester/gan", revision="no-such-branch")
    with pytest.raises(RemoteEntryNotFoundError):  # a subclass of both EntryNotFoundError and HfHubHTTPError
        hf_hub_download("tester/gan", "no-such-file.txt")
    assert HfApi().file_exists("tester/gan", "config.json") and not HfApi().file_exists("tester/gan", "nope.txt")
    with pytest.raises(HfHubHTTPError) as error:  # an unknown token: 401, and not taken for a missing repo
        hf_hub_download("tester/gan", "config.json", token="hf_not_a_token")
    assert error.value.response.status_code == 401 and not isinstance(error.value, RepositoryNotFoundError)


def test_writes_need_the_owners_token(local_hub, pushed):
    before = local_hub.commits("tester/gan")
    with pytest.raises(HfHubHTTPError) as error:
        HfApi().upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="tester/gan")
    assert error.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as error:
        HfApi().create_repo("tester/anonymous")
    assert error.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as error:
        HfApi(token=OTHER_TOKEN).upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="tester/gan")
    assert error.value.response.status_code == 403
    assert local_hub.commits("tester/gan") == before


def test_whoami(local_hub):
    assert HfApi(token=TOKEN).whoami()["name"] == USER
    with pytest.raises(HfHubHTTPError, match="Invalid user token"):
        HfApi(token="hf_not_a_token").whoami()
    with pytest.raises(LocalTokenNotFoundError):  # no token anywhere: the client refuses before asking
        HfApi().whoami()


def test_top_level_functions_reach_the_server(local_hub):
    import huggingface_hub

    huggingface_hub.create_repo("tester/top", token=TOKEN)
    huggingface_hub.upload_file(path_or_fileobj=b"1", path_in_repo="a.txt", repo_id="tester/top", token=TOKEN)
    assert huggingface_hub.model_info("tester/top").sha == local_hub.commits("tester/top")[0]["oid"]


def test_commit_scheduler_pushes_on_trigger(local_hub, tmp_path):
    folder = tmp_path / "watched"
    scheduler = CommitScheduler(repo_id="tester/metrics", repo_type="dataset", folder_path=folder, every=10,
                                token=TOKEN, private=True)
    try:
        with scheduler.lock:
            (folder / "metrics.jsonl").write_text('{"step": 1}\n')
        scheduler.trigger().result(timeout=30)
        assert local_hub.files("tester/metrics", "dataset") == {"metrics.jsonl": b'{"step": 1}\n'}
        with scheduler.lock:
            with (folder / "metrics.jsonl").open("a") as f:
                f.write('{"step": 2}\n')
        scheduler.trigger().result(timeout=30)
    finally:
        scheduler.stop()
    assert local_hub.files("tester/metrics", "dataset")["metrics.jsonl"] == b'{"step": 1}\n{"step": 2}\n'
    assert HfApi(token=TOKEN).dataset_info("tester/metrics").private is True
    assert [c["message"] for c in local_hub.commits("tester/metrics", "dataset")][:2] == ["Scheduled Commit"] * 2


def test_subprocess_reaches_the_server_through_env(local_hub, pushed):
    code = ("import sys; from huggingface_hub import hf_hub_download as d; "
            "sys.stdout.write(open(d('tester/gan', 'config.json'), encoding='utf-8').read())")
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == '{"latent_dim": 32}'


def test_stop_releases_the_port(tmp_path):
    from hub_server import LocalHub

    hub = LocalHub()
    endpoint = hub.start()
    assert hub.endpoint == endpoint and endpoint.startswith("http://127.0.0.1:")
    hub.stop()
    with pytest.raises(RuntimeError):
        hub.endpoint

