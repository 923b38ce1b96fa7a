"""`python -m gan.space deploy`: the Space and its model repos on the local test Hub, over real HTTP; and a fresh
client that downloads the Space and serves its models by repo id."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import HfApi, ModelCard, metadata_load, snapshot_download

from conftest import REPO, child_env, tiny_export, tiny_neighbour_index
from gan.errors import GanError
from gan.sharing.publish import publish_folder
from gan.tools.space import deploy, space_models
from hub_server import TOKEN, USER, local_hub  # noqa: F401

SPACE = f"{USER}/cgan-demo"
SHIPPED_MNIST = REPO / "models" / "mnist"


def space_cli(*args: str, token: str | None = None) -> subprocess.CompletedProcess:
    env = child_env(online=True)
    env.pop("HF_TOKEN", None)
    if token:
        env["HF_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "gan.space", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=240)


def test_dry_run_lists_exactly_the_space_files_without_token_or_network(tmp_path):
    lines: list[str] = []
    files = deploy(SPACE, [str(SHIPPED_MNIST)], dry_run=True, log=lines.append)
    assert {"app.py", "pyproject.toml", "requirements.txt", "README.md", ".gitattributes", "gan/__init__.py",
            "gan/tools/space.py", "gan/hub/__init__.py", "gan/quiz/rounds.py"} <= set(files)
    assert all(f in {"app.py", "pyproject.toml", "requirements.txt", "README.md", ".gitattributes"}
               or (f.startswith("gan/") and f.endswith(".py")) for f in files), files
    plan, push_line, _, *listed = lines
    assert plan.startswith(f"{USER}/cgan-demo-mnist will receive: README.md, config.json")
    assert "real_pool" not in plan.split("Real images")[0]  # said before anything is pushed: it stays here
    assert "Real images of the dataset: none (kept here: real_pool.safetensors; --publish-real-pool" in plan
    assert f"{SHIPPED_MNIST} -> {USER}/cgan-demo-mnist" in push_line
    assert [line.strip() for line in listed] == files
    result = space_cli("deploy", SPACE, "--dry-run", "--model", f"{SHIPPED_MNIST}={USER}/digits")
    assert result.returncode == 0, result.stderr
    assert "README.md" in result.stdout and f"-> {USER}/digits" in result.stdout


def test_deploy_pushes_the_models_then_the_space_and_a_fresh_client_serves_them(local_hub, tmp_path):
    tiny = tmp_path / "tiny"
    tiny_export(tiny, channels=3, image_size=32)  # a colour model beside the grey one
    publish_folder(tiny, f"{USER}/tiny", token=TOKEN)  # a model already on the Hub, named by its repo id
    card_before = (SHIPPED_MNIST / "README.md").read_bytes()
    api = HfApi(token=TOKEN)
    api.create_repo(SPACE, repo_type="space", space_sdk="gradio")  # an earlier deploy's leftover module
    api.upload_file(path_or_fileobj=b"OLD = 1\n", path_in_repo="gan/removed_module.py", repo_id=SPACE,
                    repo_type="space")

    result = space_cli("deploy", SPACE, "--model", f"{USER}/tiny", "--model", f"{SHIPPED_MNIST}={USER}/digits",
                       token=TOKEN)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"deployed {SPACE}" in result.stdout

    files = local_hub.files(SPACE, "space")
    assert "gan/removed_module.py" not in files  # package files of earlier deploys go
    assert {"app.py", "pyproject.toml", "requirements.txt", "README.md", ".gitattributes", "gan/serve/demo.py"} <= set(files)
    assert files["app.py"] == (REPO / "app.py").read_bytes()
    requirements = files["requirements.txt"].decode()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in requirements
    assert "\ntorch==" in requirements and "pandas" in requirements
    assert "gradio" not in requirements.replace("# ", "#").split("--extra-index-url")[1]  # from sdk_version only
    assert not any(name in requirements for name in ("accelerate", "datasets", "torchmetrics", "tensorboard"))
    assert "*.safetensors filter=lfs" in files[".gitattributes"].decode()
    assert api.space_info(SPACE).sdk == "gradio"

    # The models: the folder went to its repo with a card that names it and links the Space; the folder's own
    # card is untouched.
    digits = local_hub.files(f"{USER}/digits")
    assert {"config.json", "model.safetensors", "discriminator/model.safetensors"} <= set(digits)
    # No image of the dataset left without the deployer's say-so: no real pool, no copy-check thumbnails, in no repo.
    real_pool = (SHIPPED_MNIST / "real_pool.safetensors").read_bytes()
    for repo, kind in ((f"{USER}/digits", "model"), (SPACE, "space")):
        received = local_hub.files(repo, kind)
        assert not {"real_pool.safetensors", "neighbours.safetensors"} & set(received)
        assert real_pool not in received.values()
    card = ModelCard(digits["README.md"].decode())
    assert "No real images of the dataset are published with these weights" in card.text
    assert f"\n# {USER}/digits\n" in card.text
    assert f'load_generator("{USER}/digits")' in card.text and f"/spaces/{SPACE}" in card.text
    assert (SHIPPED_MNIST / "README.md").read_bytes() == card_before

    # A fresh client: download the Space, run its own app.py's model choice and load every model by repo id.
    space = Path(snapshot_download(SPACE, repo_type="space", cache_dir=tmp_path / "client"))
    front = metadata_load(space / "README.md")
    assert front["models"] == [f"{USER}/tiny", f"{USER}/digits"] and front["sdk"] == "gradio"
    assert front["datasets"] == ["ylecun/mnist"] and len(front["short_description"]) <= 60
    assert space_models(space / "README.md") == [f"{USER}/tiny", f"{USER}/digits"]
    env = {**child_env(online=True), "PYTHONPATH": "", "HF_HOME": str(tmp_path / "space_home")}
    env.pop("HF_HUB_CACHE", None)
    check = ("import app, gan, json; from gan import generate, load_generator; sources = app.model_sources(); "
             "images = [generate(load_generator(s), [1], [3]).shape for s in sources]; "
             "print(json.dumps({'gan': gan.__file__, 'sources': sources, 'shapes': images}))")
    copy = tmp_path / "space"
    copy.mkdir()
    for path in space.rglob("*"):  # a working copy, as a Space's container has it (the cache holds symlinks)
        if path.is_file():
            target = copy / path.relative_to(space)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    result = subprocess.run([sys.executable, "-c", check], cwd=copy, env=env, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(report["gan"]).resolve().is_relative_to(copy.resolve())  # the Space's own package, not this one
    assert report["sources"] == [f"{USER}/tiny", f"{USER}/digits"]
    assert report["shapes"] == [[1, 32, 32, 3], [1, 28, 28, 1]]


def test_real_images_go_up_only_with_the_flags_and_the_card_says_what_went(local_hub, tmp_path):
    tiny = tmp_path / "tiny"
    tiny_neighbour_index(tiny, tiny_export(tiny))
    result = space_cli("deploy", SPACE, "--model", f"{tiny}={USER}/with-data", "--publish-real-pool",
                       "--publish-training-thumbnails", token=TOKEN)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Real images of the dataset: real_pool.safetensors (held-out real test images" in result.stdout
    files = local_hub.files(f"{USER}/with-data")
    assert files["real_pool.safetensors"] == (tiny / "real_pool.safetensors").read_bytes()
    assert files["neighbours.safetensors"] == (tiny / "neighbours.safetensors").read_bytes()
    card = ModelCard(files["README.md"].decode()).text
    assert "`real_pool.safetensors`: held-out real test images of the dataset (the quiz's real pool), 6 images" in card
    assert "`neighbours.safetensors`: a thumbnail of every training image (the copy check's index), 61 images" in card
    readme = local_hub.files(SPACE, "space")["README.md"].decode()
    assert "published by the deployer's choice" in readme

    only_pool = space_cli("deploy", SPACE, "--model", f"{tiny}={USER}/pool-only", "--publish-real-pool", token=TOKEN)
    assert only_pool.returncode == 0, only_pool.stderr[-3000:]
    assert "real_pool.safetensors" in local_hub.files(f"{USER}/pool-only")
    assert "neighbours.safetensors" not in local_hub.files(f"{USER}/pool-only")


def test_deploy_refuses_bad_input_before_uploading_anything(local_hub, tmp_path, monkeypatch):
    broken = tmp_path / "broken"
    tiny_export(broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    cases = [
        (("deploy", SPACE, "--model", str(SHIPPED_MNIST)), None, "needs a Hub token"),
        (("deploy", "not a repo id!", "--model", str(SHIPPED_MNIST)), TOKEN, "not a valid Hub repo id"),
        (("deploy", "cgan-demo", "--model", str(SHIPPED_MNIST)), TOKEN, "OWNER/NAME"),
        (("deploy", SPACE, "--model", f"{broken}={USER}/broken"), TOKEN, "not a readable safetensors"),
        (("deploy", SPACE, "--model", f"{USER}/no-such-model"), TOKEN, "was not found"),
        (("deploy", SPACE, "--model", str(tmp_path / "missing")), TOKEN, "does not exist"),
        (("deploy", SPACE, "--model", f"{SHIPPED_MNIST}=a/x", "--model", f"{broken}=a/x"), TOKEN, "same model repo"),
    ]
    for args, token, message in cases:
        result = space_cli(*args, token=token)
        assert result.returncode == 2, (args, result.stderr[-2000:])
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (args, result.stderr)
    assert not [path for method, path in local_hub.requests() if method == "POST"]  # nothing created or uploaded
    with pytest.raises(GanError, match="needs a Hub token"):
        deploy(SPACE, [str(SHIPPED_MNIST)])


def test_app_serves_the_space_readme_models_unless_told_otherwise(tmp_path, monkeypatch):
    import app

    readme = tmp_path / "README.md"
    readme.write_text("---\nsdk: gradio\nmodels:\n- a/one\n- b/two\n---\n# A Space\n")
    assert space_models(readme) == ["a/one", "b/two"]
    readme.write_text("---\nsdk: gradio\nmodels: a/one\n---\n")
    assert space_models(readme) == ["a/one"]
    assert space_models(tmp_path / "absent.md") == []
    readme.write_text("---\nmodels: [unclosed\n---\n")
    with pytest.raises(GanError, match="front matter that cannot be read"):
        space_models(readme)
    for name in ("GAN_MODELS", "GAN_MODEL"):
        monkeypatch.delenv(name, raising=False)
    shipped = [app.DEFAULT_MODEL, app.shipped_model_source("emoji"), app.shipped_model_source("mnist")]
    assert app.model_sources() == shipped  # this README lists none
    monkeypatch.setattr(app, "space_models", lambda path: ["a/one"] if path.name == "README.md" else [])
    assert app.model_sources() == ["a/one"]
    monkeypatch.setenv("GAN_MODEL", "c/three")
    assert app.model_sources() == ["c/three"] and app.model_sources(["d/four"]) == ["d/four"]


def test_a_pushed_model_carries_the_copy_check_index_when_one_can_be_made(tmp_path, monkeypatch):
    """A Space can build no neighbour index (no data, no evaluator): deploy puts one into the pushed copy."""
    import gan.explore.neighbours
    from gan.explore.neighbours import INDEX_NAME, load_index
    from gan.tools.space import attach_neighbour_index

    source, folder = tmp_path / "source", tmp_path / "pushed"
    tiny_neighbour_index(source, tiny_export(source))
    tiny_export(folder)
    monkeypatch.setattr(gan.explore.neighbours, "index_for_model", lambda model, log=None: load_index(source / INDEX_NAME))
    attach_neighbour_index(folder, log=lambda message: None)
    assert load_index(folder / INDEX_NAME).info.train_images == 61

    def cannot(model, log=None):
        raise GanError("no data here")

    (folder / INDEX_NAME).unlink()
    monkeypatch.setattr(gan.explore.neighbours, "index_for_model", cannot)
    notes = []
    attach_neighbour_index(folder, log=notes.append)
    assert not (folder / INDEX_NAME).exists() and "without a copy check index (no data here)" in notes[0]
