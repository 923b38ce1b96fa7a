"""Publishing to and loading from the Hub through the real huggingface_hub client, over HTTP to a local test Hub."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from huggingface_hub import ModelCard, constants

from conftest import CLASS_NAMES, REPO, TINY, run, tiny_export
from gan.config import ModelConfig
from gan.errors import GanError
from gan.model_files import load_real_pool
from gan.models import load_discriminator, load_generator
from gan.sharing.publish import publish_folder
from gan.models import Discriminator, Generator
from gan.sampling import generate
from hub_server import TOKEN, USER, local_hub  # noqa: F401

def test_train_py_pushes_and_from_pretrained_gives_identical_images(local_hub, tiny_imagefolder, tmp_path):
    out = tmp_path / "run"
    repo = f"{USER}/tiny-cgan"
    result = run([sys.executable, str(REPO / "train.py"), "--dataset", str(tiny_imagefolder), "--output-dir", str(out),
                  *TINY, "--max-steps", "4", "--sample-every", "2", "--checkpoint-every", "0",
                  "--push-to-hub", repo, "--hub-token", TOKEN, "--push-every", "2"], online=True)
    assert result.returncode == 0, result.stderr[-3000:]
    files = local_hub.files(repo)
    for name in ["config.json", "model.safetensors", "discriminator/config.json", "discriminator/model.safetensors",
                 "samples.png", "timelapse.gif", "training_config.json", "README.md"]:
        assert name in files, name
    assert not [name for name in files if name.endswith((".bin", ".pkl", ".pt"))]
    messages = [commit["message"] for commit in local_hub.commits(repo)]
    assert messages[0] == "Training finished at step 4" and "Step 2" in messages
    assert TOKEN not in (out / "training_config.json").read_text()  # the token is never written down

    # From the server into an empty cache: the same (class, seed, psi) give the same images as the local export.
    assert not any(constants.HF_HUB_CACHE and p.name.startswith("models--") for p in
                   __import__("pathlib").Path(constants.HF_HUB_CACHE).glob("*"))
    hub_generator = Generator.from_pretrained(repo)
    local_generator = load_generator(out / "export")
    classes, seeds = [0, 1, 2, 2], [0, 5, 9, 123]
    assert (generate(hub_generator, classes, seeds, 0.8) == generate(local_generator, classes, seeds, 0.8)).all()
    images = torch.zeros(2, 1, 28, 28)
    labels = torch.tensor([0, 2])
    assert torch.equal(Discriminator.from_pretrained(repo)(images, labels),
                       load_discriminator(out / "export")(images, labels))


def test_pushing_twice_updates_the_repo_and_the_card_holds_the_metrics(local_hub, tmp_path):
    folder = tmp_path / "export"
    tiny_export(folder)
    repo = f"{USER}/updated"
    publish_folder(folder, repo, token=TOKEN, commit_message="first")
    metrics = {"num_samples": 30, "per_class": 10, "truncation": 1.0, "reference_split": "test",
               "class_accuracy": {"overall": 0.875, "per_class": {"a": 1.0, "b": 0.75, "c": 0.875}},
               "fd": 0.5, "fd_train_test": 0.05, "fd_ratio": 10.0, "kid_mean": 0.01, "date": "2026-11-23"}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    tiny_export(folder, seed=1)  # new weights
    publish_folder(folder, repo, token=TOKEN, commit_message="second")
    assert [c["message"] for c in local_hub.commits(repo)][:2] == ["second", "first"]
    card = ModelCard(local_hub.files(repo)["README.md"].decode())
    assert "gan" in card.data.tags and card.data.library_name == "pytorch"
    assert card.data.datasets == ["ylecun/mnist"]
    results = {(r.metric_type, r.metric_name.split(" (")[0]): r.metric_value for r in card.data.eval_results}
    assert results[("accuracy", "Class accuracy")] == 0.875 and results[("fd", "FD, evaluator features")] == 0.5
    assert "accelerate launch train.py --dataset ylecun/mnist" in card.text
    assert "| FD / floor | 10.0000 |" in card.text and "a: 1.000, b: 0.750" in card.text
    # The second version is what loads; the first stays reachable by its commit.
    first_sha = local_hub.commits(repo)[1]["oid"]
    new, old = Generator.from_pretrained(repo), Generator.from_pretrained(repo, revision=first_sha)
    assert not torch.equal(new.stem.weight, old.stem.weight)
    assert torch.equal(new.stem.weight, load_generator(folder).stem.weight)


def test_the_real_pool_travels_with_the_model_only_when_its_owner_says_so(local_hub, tmp_path):
    from gan.hub import resolve_model_folder

    folder = tmp_path / "export"
    tiny_export(folder)
    publish_folder(folder, f"{USER}/no-pool", token=TOKEN)
    assert "real_pool.safetensors" not in local_hub.files(f"{USER}/no-pool")
    with pytest.raises(GanError, match="no held-out real images were published with this model"):
        load_real_pool(resolve_model_folder(f"{USER}/no-pool"))
    assert (folder / "real_pool.safetensors").is_file()  # the local export keeps it

    publish_folder(folder, f"{USER}/pool", token=TOKEN, real_pool=True)
    images, labels = load_real_pool(resolve_model_folder(f"{USER}/pool"))
    assert images.shape == (6, 28, 28, 1) and images.dtype == torch.uint8 and labels.tolist() == [0, 1, 2] * 2


def test_a_private_repo_needs_the_token(local_hub, tmp_path, monkeypatch):
    folder = tmp_path / "export"
    tiny_export(folder)
    repo = f"{USER}/secret"
    publish_folder(folder, repo, token=TOKEN, private=True)
    with pytest.raises(GanError, match=r"was not found .*\(or it is private"):
        load_generator(repo)
    assert load_generator(repo, token=TOKEN).model_config.class_names == CLASS_NAMES


def test_missing_repo_invalid_id_and_offline_errors_are_clear(local_hub, tmp_path, monkeypatch):
    with pytest.raises(GanError, match=f"model repo {USER}/nope was not found"):
        load_generator(f"{USER}/nope")
    with pytest.raises(GanError, match="not a valid Hub repo id"):
        load_generator("bad id!")
    with pytest.raises(GanError, match="model folder ./missing/model does not exist"):
        load_generator("./missing/model")
    folder = tmp_path / "export"
    tiny_export(folder)
    publish_folder(folder, f"{USER}/cached", token=TOKEN)
    load_generator(f"{USER}/cached")  # now in the cache
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert load_generator(f"{USER}/cached").model_config.num_classes == 3  # offline, from the cache
    assert load_generator(folder).model_config.num_classes == 3  # offline, from a folder
    with pytest.raises(GanError, match="not in the local cache and the Hub cannot be reached"):
        load_generator(f"{USER}/never-downloaded")


def test_bad_uploads_fail_with_one_clear_error_and_upload_nothing(local_hub, tmp_path):
    good = tmp_path / "good"
    tiny_export(good)
    with pytest.raises(GanError, match="needs a token|answered 401"):
        publish_folder(good, f"{USER}/no-token")
    with pytest.raises(GanError, match="answered 403"):
        publish_folder(good, "other/not-mine", token=TOKEN)
    with pytest.raises(GanError, match="not a valid Hub repo id"):
        publish_folder(good, "user/bad name", token=TOKEN)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GanError, match="holds no model.safetensors"):
        publish_folder(empty, f"{USER}/empty", token=TOKEN)
    mismatched = tmp_path / "mismatched"
    tiny_export(mismatched)
    ModelConfig(num_classes=3, class_names=CLASS_NAMES, g_width=16, latent_dim=16).save(mismatched / "config.json")
    with pytest.raises(GanError, match="do not match their config.json"):
        publish_folder(mismatched, f"{USER}/mismatched", token=TOKEN)
    pickled = tmp_path / "pickled"
    generator = tiny_export(pickled)
    torch.save(generator.state_dict(), pickled / "model.safetensors")
    with pytest.raises(GanError, match="not a readable safetensors file"):
        publish_folder(pickled, f"{USER}/pickled", token=TOKEN)
    created = {path.split("/api/models/")[-1].split("/")[0] for _, path in local_hub.requests() if "/commit/" in path}
    assert not created  # not one commit reached the server


def test_hub_push_command_line(local_hub, tmp_path):
    folder = tmp_path / "export"
    tiny_export(folder)
    result = run([sys.executable, "-m", "gan.hub", "push", str(folder), f"{USER}/cli", "--token", TOKEN,
                  "--message", "from the CLI"], online=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert local_hub.commits(f"{USER}/cli")[0]["message"] == "from the CLI"
    failed = run([sys.executable, "-m", "gan.hub", "push", str(tmp_path / "nope"), f"{USER}/cli", "--token", TOKEN],
                 online=True)
    assert failed.returncode == 2 and failed.stderr.strip().startswith("error:") and "Traceback" not in failed.stderr


def test_train_py_refuses_a_push_it_could_not_make_before_training(local_hub, tiny_imagefolder, tmp_path):
    args = [sys.executable, str(REPO / "train.py"), "--dataset", str(tiny_imagefolder), *TINY, "--max-steps", "2"]
    result = run([*args, "--output-dir", str(tmp_path / "a"), "--push-to-hub", "other/not-mine",
                  "--hub-token", TOKEN], online=True)
    assert result.returncode == 2 and "answered 403" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "a" / "checkpoints").exists() or not any((tmp_path / "a" / "checkpoints").iterdir())
    result = run([*args, "--output-dir", str(tmp_path / "b"), "--push-to-hub", "bad id"], online=True)
    assert result.returncode == 2 and "not a valid Hub repo id" in result.stderr
