"""The real train.py, run as users run it: outputs, resume after SIGKILL, two processes, and bad input; its --help,
the --max-minutes budget (with a fake clock) and the progress bar of a large dataset's decoding."""

from __future__ import annotations

import io
import itertools
import json
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import CLASSES, REPO, TINY, launch_command, run, child_env
from gan.config import ModelConfig, TrainConfig
from gan.models import Generator, load_discriminator, load_generator
from gan.quality.scores import Scores
from gan.train.monitor import selection_score
from gan.sampling import generate
from gan.train.checkpoints import widened
from gan.version import CONFIG_FORMAT


def python_command(*args: str) -> list[str]:
    return [sys.executable, str(REPO / "train.py"), *args]


def checkpoint_names(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "checkpoints").iterdir())


@pytest.mark.slow
def test_accelerate_launch_writes_checkpoints_samples_timelapse_logs_and_export(tiny_imagefolder, tmp_path):
    out = tmp_path / "run"
    result = run(launch_command("--dataset", str(tiny_imagefolder), "--output-dir", str(out), *TINY,
                                "--max-steps", "6", "--checkpoint-every", "2", "--checkpoints-total-limit", "2",
                                "--sample-every", "3", "--log-with", "tensorboard", "--tracker-project", "shapes"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert checkpoint_names(out) == ["step_00000004", "step_00000006"]  # the limit pruned step 2
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step_00000003.png", "step_00000006.png"]
    # TensorBoard, under the --tracker-project name: the losses, and each sample grid as an image.
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "logs" / "shapes"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    assert {"loss_d", "loss_g", "images_per_s"} <= set(events.Tags()["scalars"])
    logged = events.Images("samples")
    assert [image.step for image in logged] == [3, 6]
    on_disk = Image.open(out / "samples" / "step_00000006.png")
    assert (logged[-1].width, logged[-1].height) == on_disk.size
    export = out / "export"
    for name in ["model.safetensors", "config.json", "discriminator/model.safetensors", "discriminator/config.json",
                 "samples.png", "timelapse.gif", "training_config.json"]:
        assert (export / name).is_file(), name
    assert not list(export.rglob("*.bin")) and not list(export.rglob("*.pkl"))  # safetensors only
    summary = json.loads((export / "training_summary.json").read_text())
    assert summary["steps"] == 6 and summary["images_seen"] == 6 * 8 and summary["processes"] == 1
    assert summary["mixed_precision"] == "no"  # what `accelerate launch --mixed_precision no` asked for
    assert 0 < summary["train_seconds"] < 3600 and abs(summary["train_hours"] - summary["train_seconds"] / 3600) < 0.001
    card = (export / "README.md").read_text()
    assert card.startswith("---") and "\n# run\n" in card  # the model card, titled after the run's folder
    assert "staging" not in card and str(tmp_path) not in card  # no temporary folder, no path of this machine
    assert "--output-dir runs/run" in card and 'load_generator("path/to/run")' in card
    assert Image.open(export / "timelapse.gif").n_frames >= 2
    generator = load_generator(export)
    assert generator.model_config.class_names == list(CLASSES)
    images = generate(generator, [0, 1, 2], [0, 1, 2])
    assert images.shape == (3, 28, 28, 1)
    assert load_discriminator(export)(torch.zeros(1, 1, 28, 28), torch.tensor([1])).shape == (1,)
    # The export's samples grid is the fixed-noise grid: class rows, seeds 0..N-1 (scaled 2x for 28 px).
    grid = Image.open(export / "samples.png")
    assert grid.size == ((2 * 30 + 2) * 2, (3 * 30 + 2) * 2)


@pytest.mark.slow
def test_python_train_py_and_dry_run(tiny_imagefolder, tmp_path):
    out = tmp_path / "dry"
    result = run(python_command("--dataset", str(tiny_imagefolder), "--output-dir", str(out), *TINY, "--dry-run"))
    assert result.returncode == 0, result.stderr[-2000:]
    printed = json.loads(result.stdout)
    assert printed["model"]["class_names"] == list(CLASSES) and printed["model"]["channels"] == 1
    assert printed["train"]["batch_size"] == 8 and printed["parameters"]["generator"] > 0
    assert not out.exists()  # a dry run writes nothing


@pytest.mark.slow
def test_killed_run_resumes_and_continues_the_same_run(tiny_imagefolder, tmp_path):
    common = ["--dataset", str(tiny_imagefolder), *TINY, "--checkpoint-every", "4", "--sample-every", "0",
              "--checkpoints-total-limit", "0"]
    # The reference: one unbroken run of 24 steps.
    reference = run(python_command(*common, "--output-dir", str(tmp_path / "reference"), "--max-steps", "24"))
    assert reference.returncode == 0, reference.stderr[-2000:]

    # The same run, started with a far-off goal and killed with SIGKILL soon after its first checkpoint...
    out = tmp_path / "killed"
    process = subprocess.Popen(python_command(*common, "--output-dir", str(out), "--max-steps", "100000"),
                               cwd=REPO, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "checkpoints" / "step_00000004").exists() and time.time() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    newest = checkpoint_names(out)[-1]
    assert newest.startswith("step_") and int(newest[5:]) <= 24, checkpoint_names(out)
    # ...and a half-written checkpoint, as a kill during a save would leave it.
    (out / "checkpoints" / ".partial-00000099").mkdir()
    (out / "checkpoints" / ".partial-00000099" / "model.safetensors").write_bytes(b"truncated")

    resumed = run(python_command(*common, "--output-dir", str(out), "--max-steps", "24"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"Resumed from {out / 'checkpoints' / newest}" in resumed.stdout
    assert not (out / "checkpoints" / ".partial-00000099").exists()
    assert (out / "checkpoints" / "step_00000024").is_dir()
    # Same step count, optimizer state, EMA and data order: the weights end up where the unbroken run's did.
    for part in ["model.safetensors", "discriminator/model.safetensors"]:
        a = load_file(tmp_path / "reference" / "export" / part)
        b = load_file(out / "export" / part)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.allclose(a[key], b[key], atol=1e-6), (part, key)
    optimizer_a = torch.load(tmp_path / "reference" / "checkpoints" / "step_00000024" / "optimizer.bin", weights_only=True)
    optimizer_b = torch.load(out / "checkpoints" / "step_00000024" / "optimizer.bin", weights_only=True)
    assert optimizer_a["state"][0]["step"] == optimizer_b["state"][0]["step"] == 24
    assert torch.allclose(optimizer_a["state"][0]["exp_avg"], optimizer_b["state"][0]["exp_avg"], atol=1e-6)


@pytest.mark.slow
def test_resuming_with_other_learning_rates_trains_at_the_new_ones(tiny_imagefolder, tmp_path):
    out = tmp_path / "run"
    common = ["--dataset", str(tiny_imagefolder), *TINY, "--output-dir", str(out), "--checkpoint-every", "4",
              "--sample-every", "0"]
    assert run(python_command(*common, "--max-steps", "4")).returncode == 0
    resumed = run(python_command(*common, "--max-steps", "8", "--lr-g", "1e-5", "--lr-d", "3e-5", "--beta2", "0.99"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    for name, lr in [("optimizer.bin", 1e-5), ("optimizer_1.bin", 3e-5)]:  # generator's, then discriminator's
        groups = torch.load(out / "checkpoints" / "step_00000008" / name, weights_only=True)["param_groups"]
        assert [(g["lr"], tuple(g["betas"])) for g in groups] == [(lr, (0.0, 0.99))] * len(groups), name


@pytest.mark.slow
def test_learning_rates_decay_linearly_to_zero_over_the_last_steps_and_resume_on_schedule(tiny_imagefolder, tmp_path):
    out = tmp_path / "run"
    common = ["--dataset", str(tiny_imagefolder), *TINY, "--output-dir", str(out), "--checkpoint-every", "2",
              "--checkpoints-total-limit", "0", "--sample-every", "0", "--lr-g", "1e-4", "--lr-d", "4e-4",
              "--lr-decay-steps", "4", "--max-steps", "8"]
    assert run(python_command(*common, "--max-minutes", "1e-9")).returncode == 0  # stops after its first step
    resumed = run(python_command(*common))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # A checkpoint at step s holds the rates of the step before it (0-based s - 1): 1, 1, 3/4 and 1/4 of the flags'.
    for step, scale in [(2, 1.0), (4, 1.0), (6, 0.75), (8, 0.25)]:
        for name, lr in [("optimizer.bin", 1e-4), ("optimizer_1.bin", 4e-4)]:
            groups = torch.load(out / "checkpoints" / f"step_{step:08d}" / name, weights_only=True)["param_groups"]
            assert [g["lr"] for g in groups] == pytest.approx([lr * scale] * len(groups)), (step, name)


@pytest.mark.slow
def test_two_process_cpu_run_trains_checkpoints_and_exports_once(tiny_imagefolder, tmp_path):
    out = tmp_path / "ddp"
    result = run(launch_command("--dataset", str(tiny_imagefolder), "--output-dir", str(out), *TINY,
                                "--max-steps", "4", "--checkpoint-every", "2", "--sample-every", "2",
                                processes=2), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert checkpoint_names(out) == ["step_00000002", "step_00000004"]
    checkpoint = out / "checkpoints" / "step_00000004"
    assert (checkpoint / "random_states_0.pkl").is_file() and (checkpoint / "random_states_1.pkl").is_file()
    assert result.stdout.count("Exported the EMA generator") == 2  # each process reports; only one wrote
    assert len(list(out.glob("export*"))) == 1
    assert generate(load_generator(out / "export"), [2], [0]).shape == (1, 28, 28, 1)


@pytest.mark.slow
def test_cpu_launch_of_several_processes_without_mpirun_is_refused(tiny_imagefolder, tmp_path):
    command = launch_command("--dataset", str(tiny_imagefolder), "--output-dir", str(tmp_path / "o"), *TINY)
    command[command.index("--num_processes") + 1] = "2"  # `--cpu --num_processes 2`: one process in disguise
    command.insert(command.index("--num_processes"), "--quiet")  # accelerate's own traceback on exit 2, silenced
    line = error_line(run(command))
    assert "--multi_gpu --num_processes N" in line
    assert not (tmp_path / "o").exists()


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one line a user sees; no traceback wall."""
    assert result.returncode in (1, 2), (result.returncode, result.stderr[-2000:])  # accelerate --quiet exits 1
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--image-size", "30"], "--image-size 30 is not supported"),
        (["--diffaugment", "color,flip"], "unknown DiffAugment op"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--lr-g", "5"], "--lr-g must be in (0, 1)"),
        (["--max-minutes", "-1"], "--max-minutes must not be negative"),
        (["--max-minutes", "nan"], "--max-minutes must be a finite number"),
        (["--eval-per-class", "0"], "--eval-per-class must be at least 1"),
        (["--evaluator", "evaluators/fashion-mnist"], "--evaluator is used by --eval-every"),
        (["--beta1", "1"], "--beta1 must be in [0, 1), got 1.0"),
        (["--output-gain", "2.5"], "--output-gain must be in [1, 2], got 2.5"),
        (["--white-slope", "2"], "--white-slope needs --output-norm max"),
        (["--white-slope", "2", "--output-norm", "max-linear"], "--white-slope needs --output-norm max"),
        (["--white-dither", "1", "--output-norm", "max-linear"], "--white-dither needs a saturating white end"),
        (["--white-plateau"], "--white-plateau needs --output-norm max"),
        (["--cpu-threads", "0"], "--cpu-threads must be at least 1, got 0"),
        (["--hub-private"], "--push-every, --hub-private and --hub-real-pool need --push-to-hub"),
        (["--hub-real-pool"], "--hub-real-pool need --push-to-hub"),
        (["--gradient-penalty", "-1"], "--gradient-penalty must not be negative, got -1.0"),
        (["--penalty-every", "0"], "--penalty-every must be at least 1"),
        (["--lr-decay-steps", "-1"], "--lr-decay-steps must not be negative"),
        (["--lr-decay-steps", "30", "--max-steps", "20"], "--lr-decay-steps 30 exceeds --max-steps 20"),
        (["--push-to-hub", "not a repo"], "is not a valid Hub repo id"),
    ],
)
def test_bad_flag_values_are_refused_before_anything_starts(tmp_path, capsys, flags, message):
    """Flag checks run in train.py's main before any data or accelerate: tested in-process (fast); the subprocess
    test below shows the same single line reaches a user."""
    import train

    out = tmp_path / "bad"
    assert train.main(["--dataset", "data", "--output-dir", str(out), *TINY, *flags]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not out.exists()


def test_every_training_option_is_declared_once_and_is_a_flag():
    """train.py's flags are built from TrainConfig's fields: the same names, defaults and help; configs built in code
    validate by the same rules."""
    import dataclasses

    from gan.config import TrainConfig
    from gan.errors import GanError
    from train import build_parser

    parser = build_parser()
    actions = {a.dest: a for a in parser._actions if a.dest != "help"}
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    assert set(actions) == set(fields) | {"hub_token", "dry_run", "version"}
    for name, f in fields.items():
        assert actions[name].help == f.metadata["help"] and f.metadata["help"]
        assert actions[name].default == (None if f.metadata["required"] else f.default)
    assert TrainConfig(dataset="d").validate().dataset == "d"
    with pytest.raises(GanError, match="--lr-d must be in \\(0, 1\\), got 0.0"):
        TrainConfig(lr_d=0.0).validate()


@pytest.mark.slow
@pytest.mark.parametrize(
    "flags,message",
    [
        (["--dataset", "/no/such/folder"], "does not exist"),
        (["--image-size", "30"], "--image-size 30 is not supported"),
        (["--batch-size", "64"], "fewer than one batch"),
        (["--eval-every", "2"], "no evaluator at evaluators/"),
        pytest.param(["--mixed-precision", "fp16"], "--mixed-precision fp16 needs a GPU",
                     marks=pytest.mark.skipif(torch.accelerator.is_available(), reason="fp16 runs on this GPU")),
    ],
)
def test_bad_flags_and_data_give_one_clear_line(tiny_imagefolder, tmp_path, flags, message):
    args = ["--dataset", str(tiny_imagefolder), "--output-dir", str(tmp_path / "bad"), *TINY, "--max-steps", "2"]
    result = run(python_command(*args, *flags))
    assert message in error_line(result)


@pytest.mark.slow
def test_empty_dataset_and_unreadable_image(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no" in error_line(run(python_command("--dataset", str(empty), "--output-dir", str(tmp_path / "o"))))
    broken = tmp_path / "broken"
    for name in ("a", "b"):
        (broken / name).mkdir(parents=True)
        (broken / name / "x.png").write_bytes(b"not a png")
    line = error_line(run(python_command("--dataset", str(broken), "--output-dir", str(tmp_path / "o2"))))
    assert "x.png" in line


@pytest.mark.slow
def test_label_column_that_is_not_a_class_label(tmp_path):
    import datasets
    import numpy as np
    from PIL import Image

    images = [Image.fromarray(np.full((28, 28), i * 20, dtype=np.uint8)) for i in range(4)]
    ds = datasets.Dataset.from_dict({"image": images, "tag": ["a", "b", "a", "b"]},
                                    features=datasets.Features({"image": datasets.Image(), "tag": datasets.Value("string")}))
    folder = tmp_path / "hfdata"
    folder.mkdir()
    ds.to_parquet(str(folder / "train.parquet"))
    line = error_line(run(python_command("--dataset", str(folder), "--output-dir", str(tmp_path / "o"),
                                         "--label-column", "tag")))
    assert "not a class label" in line


@pytest.mark.slow
def test_corrupt_and_mismatched_checkpoints_are_refused_without_damage(tiny_imagefolder, tmp_path):
    out = tmp_path / "run"
    args = ["--dataset", str(tiny_imagefolder), "--output-dir", str(out), *TINY, "--checkpoint-every", "2",
            "--sample-every", "0"]
    assert run(python_command(*args, "--max-steps", "2")).returncode == 0
    checkpoint = out / "checkpoints" / "step_00000002"
    # Other model flags in the same folder: refused before anything is touched.
    before = {p.name: p.read_bytes() for p in checkpoint.iterdir()}
    line = error_line(run(python_command(*args, "--max-steps", "4", "--g-width", "16")))
    assert "other settings" in line and "g_width" in line
    # An explicit --resume of a checkpoint written for another architecture.
    other = tmp_path / "other"
    line = error_line(run(python_command("--dataset", str(tiny_imagefolder), "--output-dir", str(other),
                                         *TINY, "--g-width", "16", "--max-steps", "4", "--resume", str(checkpoint))))
    assert "does not match this model" in line
    # A corrupt checkpoint (truncated weights).
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    line = error_line(run(python_command(*args, "--max-steps", "4")))
    assert "could not be read" in line and "step_00000002" in line
    after = {p.name: p.read_bytes() for p in checkpoint.iterdir()}
    assert after.keys() == before.keys()
    assert all(after[k] == before[k] for k in after if k != "model.safetensors")
    assert run(python_command(*args, "--max-steps", "4", "--resume", str(out / "nope"))).returncode == 2


def test_one_dataset_folder_spelled_three_ways_resumes_one_run(tmp_path, monkeypatch):
    """The card prints `--dataset ./data/x`; a run started with `data/x` (or its absolute path) must resume from it,
    while another folder is still refused."""
    from accelerate import Accelerator

    from gan.train.checkpoints import prepare_run_folder
    from gan.errors import GanError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "x").mkdir(parents=True)
    (tmp_path / "data" / "y").mkdir()
    out = tmp_path / "run"
    accelerator = Accelerator(cpu=True)
    prepare_run_folder(out, TrainConfig(dataset="data/x", output_dir=str(out)), accelerator)
    (out / "checkpoints" / "step_00000002").mkdir()
    for spelling in ("./data/x", str(tmp_path / "data" / "x"), "data/x/"):
        prepare_run_folder(out, TrainConfig(dataset=spelling, output_dir=str(out)), accelerator)
    with pytest.raises(GanError, match="other settings .*dataset"):
        prepare_run_folder(out, TrainConfig(dataset="data/y", output_dir=str(out)), accelerator)


def test_nan_loss_stops_with_a_clear_error():
    from accelerate import Accelerator

    from gan.errors import GanError
    from gan.train.loop import check_losses

    accelerator = Accelerator(cpu=True)
    assert check_losses(accelerator, torch.tensor(0.5), torch.tensor(1.0), step=3) == {"loss_d": 0.5, "loss_g": 1.0}
    with pytest.raises(GanError, match="loss_d became nan at step 7; nothing from this step was saved"):
        check_losses(accelerator, torch.tensor(float("nan")), torch.tensor(1.0), step=7)


@pytest.mark.slow
def test_init_from_an_export_starts_a_new_run_from_its_weights(tiny_imagefolder, tmp_path):
    common = ["--dataset", str(tiny_imagefolder), *TINY, "--checkpoint-every", "0", "--sample-every", "0"]
    assert run(python_command(*common, "--output-dir", str(tmp_path / "first"), "--max-steps", "4")).returncode == 0
    first = tmp_path / "first" / "export"
    warm = run(python_command(*common, "--output-dir", str(tmp_path / "warm"), "--max-steps", "1",
                              "--init-from", str(first)))
    assert warm.returncode == 0, warm.stderr[-2000:]
    cold = run(python_command(*common, "--output-dir", str(tmp_path / "cold"), "--max-steps", "1", "--seed", "5"))
    assert cold.returncode == 0
    start = load_file(first / "discriminator" / "model.safetensors")
    after_warm = load_file(tmp_path / "warm" / "export" / "discriminator" / "model.safetensors")
    after_cold = load_file(tmp_path / "cold" / "export" / "discriminator" / "model.safetensors")
    distance = lambda a, b: sum((a[k] - b[k]).abs().sum().item() for k in a if k.endswith("original"))  # noqa: E731
    assert distance(after_warm, start) < 0.1 * distance(after_cold, start)  # one step away, not a fresh model
    # The export records where it came from: the first run's command and length, and the card says so.
    (stage,) = json.loads((tmp_path / "warm" / "export" / "training_summary.json").read_text())["earlier_stages"]
    assert stage["steps"] == 4 and "--max-steps 4" in stage["command"] and "train.py" in stage["command"]
    card = (tmp_path / "warm" / "export" / "README.md").read_text()
    assert "continues 1 earlier training stage" in card and "--max-steps 4" in card
    refused = (("--g-width 4", "generator"), ("--d-width 16", "discriminator"), ("--latent-dim 8", "generator"))
    for flags, part in refused:
        mismatched = run(python_command(*common, "--output-dir", str(tmp_path / "bad"), "--max-steps", "1",
                                        *flags.split(), "--init-from", str(first)))
        assert f"its {part} architecture differs" in error_line(mismatched), flags
    # A generator grows wider (its channels copied, Net2Net: test_widened_...).
    wider = run(python_command(*common, "--output-dir", str(tmp_path / "wider"), "--max-steps", "1",
                               "--g-width", "16", "--init-from", str(first)))
    assert wider.returncode == 0, wider.stderr[-2000:]
    assert load_generator(str(tmp_path / "wider" / "export")).model_config.g_width == 16
    # R3GAN's recipe fine-tunes a spectral-norm model: its discriminator's normalised weights carry over.
    rpgan = run(python_command(*common, "--output-dir", str(tmp_path / "rpgan"), "--max-steps", "1", "--loss", "rpgan",
                               "--gradient-penalty", "0.05", "--d-norm", "none", "--init-from", str(first)))
    assert rpgan.returncode == 0, rpgan.stderr[-2000:]
    assert load_generator(str(tmp_path / "rpgan" / "export")).model_config.d_norm == "none"
    # A discriminator gains heads (at zero) and a generator its dither (at its strength) in a fine-tune; no run
    # drops them. The white end's norm and slope have no weights: they may change either way.
    head = run(python_command(*common, "--output-dir", str(tmp_path / "head"), "--max-steps", "1", "--d-histogram",
                              "--d-patch", "--d-texture", "--white-dither", "1.5", "--output-norm", "max",
                              "--white-slope", "2", "--white-plateau", "--g-noise", "0.03", "--init-from", str(first)))
    assert head.returncode == 0, head.stderr[-2000:]
    heads = load_discriminator(str(tmp_path / "head" / "export"))
    assert heads.histogram is not None and heads.patch is not None and heads.texture is not None
    sloped = load_generator(str(tmp_path / "head" / "export"))
    assert sloped.dither is not None and sloped.model_config.white_slope == 2.0
    assert sloped.noise is not None and sloped.model_config.g_noise == 0.03
    shares = sloped.model_config.white_plateau, sloped.model_config.white_peaks  # measured on this run's data
    assert sloped.plateau is not None and all(abs(sum(each) - 1) < 1e-3 for each in shares)
    for kept, part in (("--d-patch --d-texture --white-dither 1.5 --g-noise 0.03", "discriminator"),
                       ("--d-histogram --d-patch --d-texture --g-noise 0.03", "generator"),
                       ("--d-histogram --d-patch --d-texture --white-dither 1.5", "generator")):
        dropped = run(python_command(*common, "--output-dir", str(tmp_path / "dropped"), "--max-steps", "1",
                                     *kept.split(), "--init-from", str(tmp_path / "head" / "export")))
        assert f"its {part} architecture differs" in error_line(dropped)

    # Transfer: another dataset with as many classes under other names starts from the same weights.
    renamed = tmp_path / "renamed"
    shutil.copytree(tiny_imagefolder, renamed)
    for i, name in enumerate(CLASSES):
        (renamed / name).rename(renamed / f"kind{i}")
    common[1] = str(renamed)
    transfer = run(python_command(*common, "--output-dir", str(tmp_path / "transfer"), "--max-steps", "1",
                                  "--init-from", str(first)))
    assert transfer.returncode == 0, transfer.stderr[-2000:]
    assert load_generator(str(tmp_path / "transfer" / "export")).model_config.class_names == ["kind0", "kind1", "kind2"]


def test_widened_generator_draws_the_same_images_and_its_new_channels_learn_apart():
    config = ModelConfig(num_classes=3, class_names=list("abc"), g_width=8, latent_dim=16)
    torch.manual_seed(0)
    narrow, wide = Generator(config), Generator(replace(config, g_width=16))
    with torch.no_grad():  # class-conditional gains and running statistics away from their fresh values
        for name, tensor in [*narrow.named_parameters(), *narrow.named_buffers()]:
            if tensor.is_floating_point():
                tensor.add_(0.1 * torch.randn_like(tensor))
                if "running_var" in name:
                    tensor.abs_()
    wide.load_state_dict(widened(narrow.state_dict(), wide.state_dict()))
    assert wide.blocks[-1].conv2.weight.shape[0] == 2 * narrow.blocks[-1].conv2.weight.shape[0]
    z, labels = torch.randn(6, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    for mode in ("eval", "train"):  # running statistics, and batch statistics of every channel and its copy
        narrow.train(mode == "train")
        wide.train(mode == "train")
        torch.testing.assert_close(wide(z, labels), narrow(z, labels), atol=1e-5, rtol=0)
    # Each old channel and its copy share its weights out unevenly, so both carry part of the image and get
    # gradients of their own: the copies learn apart (weights out of a copy left at zero would pass none into it).
    old = narrow.out_conv.weight.shape[1]
    shares = wide.out_conv.weight.detach() / torch.cat([narrow.out_conv.weight.detach()] * 2, dim=1)
    assert (shares[:, :old] + shares[:, old:] - 1).abs().max() < 1e-5
    assert (shares[:, :old] - shares[:, old:]).std() > 0.2
    wide(z, labels).square().mean().backward()
    grad_in = wide.blocks[-1].conv2.weight.grad  # into each channel of the last block, and into its copy
    assert grad_in[old:].abs().max() > 0 and not torch.allclose(grad_in[:old], grad_in[old:])


@pytest.fixture(scope="module")
def split_imagefolder_with_evaluator(tmp_path_factory):
    """train/ and test/ imagefolders of the three shapes, and an evaluator trained on them by gan.tools.evaluate."""
    from conftest import pattern
    from PIL import Image

    from gan.tools.evaluate import main as evaluate_main

    root = tmp_path_factory.mktemp("split")
    rng = np.random.default_rng(1)
    for split, count in (("train", 70), ("test", 8)):  # 210 train images: enough for the two-sample test
        for name in CLASSES:
            (root / "data" / split / name).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(pattern(name, rng)).save(root / "data" / split / name / f"{i:03d}.png")
    code = evaluate_main(["train", "--dataset", str(root / "data"), "--output", str(root / "evaluator"),
                          "--epochs", "8", "--width", "4", "--feature-dim", "8", "--batch-size", "8", "--lr", "0.01"])
    assert code == 0
    return root / "data", root / "evaluator"


@pytest.mark.slow
def test_eval_every_scores_the_generator_and_keeps_the_best_export(split_imagefolder_with_evaluator, tmp_path):
    data, evaluator = split_imagefolder_with_evaluator
    out = tmp_path / "run"
    args = ["--dataset", str(data), "--output-dir", str(out), *TINY, "--max-steps", "4", "--eval-every", "2",
            "--evaluator", str(evaluator), "--eval-per-class", "4", "--c2st-per-class", "70", "--checkpoint-every", "2",
            "--log-with", "tensorboard"]
    result = run(launch_command(*args))
    assert result.returncode == 0, result.stderr[-3000:]
    evals = [line for line in result.stdout.splitlines() if line.startswith("eval at step")]
    assert [line.split()[3].rstrip(":") for line in evals] == ["2", "4"]
    curve = [json.loads(line) for line in (out / "evals.jsonl").read_text().splitlines()]
    assert [e["step"] for e in curve] == [2, 4] and all(e["train_minutes"] >= 0 for e in curve)
    assert all(e["c2st"]["images_per_set"] == 210 for e in curve)  # 70 a class (--c2st-per-class) x 3 classes
    chosen = {e["step"]: selection_score(Scores.from_dict(e)) for e in curve}

    best = json.loads((out / "best" / "metrics.json").read_text())
    best_step = best["step"]
    assert chosen[best_step] == min(chosen.values()), chosen  # best/ holds the lowest selection score
    assert best["fd"] == next(e["fd"] for e in curve if e["step"] == best_step)
    assert best["num_samples"] == 12 and best["evaluator"] == str(evaluator) and "c2st" in best
    assert json.loads((out / "best" / "training_summary.json").read_text())["steps"] == best_step
    card = (out / "best" / "README.md").read_text()
    assert "FD" in card and "C2ST" in card  # the card states the scores
    # best/ is a complete export: its generator loads and makes the same images it was scored with.
    assert load_generator(str(out / "best")).model_config.class_names == list(CLASSES)
    # The final export carries the scores of the last evaluation, which scored exactly that generator.
    assert json.loads((out / "export" / "metrics.json").read_text())["step"] == 4
    assert list((out / "logs").rglob("events.out.tfevents*"))

    # Resuming never replaces best/ with a worse export: the best score travels in the checkpoint and on disk.
    more = run(launch_command(*args[:args.index("--max-steps")], "--max-steps", "6",
                              *args[args.index("--max-steps") + 2:]))
    assert more.returncode == 0, more.stderr[-3000:]
    curve = [json.loads(line) for line in (out / "evals.jsonl").read_text().splitlines()]
    assert [e["step"] for e in curve] == [2, 4, 6]  # the curve goes on across the resume
    kept = json.loads((out / "best" / "metrics.json").read_text())
    score6 = selection_score(Scores.from_dict(curve[-1]))
    assert kept["step"] == (6 if score6 < chosen[best_step] else best_step)


@pytest.mark.slow
def test_eval_every_with_too_few_images_for_a_two_sample_test_ranks_by_fd(split_imagefolder_with_evaluator,
                                                                          tmp_path):
    data, evaluator = split_imagefolder_with_evaluator
    out = tmp_path / "run"
    result = run(launch_command("--dataset", str(data), "--output-dir", str(out), *TINY, "--max-steps", "4",
                                "--eval-every", "2", "--evaluator", str(evaluator), "--eval-per-class", "4",
                                "--c2st-per-class", "10", "--checkpoint-every", "0", "--real-pool-size", "0"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skip the two-sample test" in result.stderr and "needs 200 images a side and gets 30" in result.stderr
    curve = [json.loads(line) for line in (out / "evals.jsonl").read_text().splitlines()]
    assert [e["step"] for e in curve] == [2, 4] and not any("c2st" in e for e in curve)
    best = json.loads((out / "best" / "metrics.json").read_text())
    assert best["fd"] == min(e["fd"] for e in curve)


def test_out_of_time_only_when_a_budget_is_set_and_spent():
    from gan.config import TrainConfig
    from gan.train.state import TrainingState

    one_minute, no_limit = TrainConfig(max_minutes=1), TrainConfig(max_minutes=0)
    assert not TrainingState(train_seconds=59.9).out_of_time(one_minute)
    assert TrainingState(train_seconds=60.0).out_of_time(one_minute)
    assert not TrainingState(train_seconds=10**9).out_of_time(no_limit)
    resumed = TrainingState()
    resumed.load_state_dict(TrainingState(step=7, train_seconds=60.0).state_dict())
    assert (resumed.step, resumed.train_seconds) == (7, 60.0)
    older = TrainingState()
    older.load_state_dict({"step": 3})  # checkpoints of versions without the budget
    assert older.train_seconds == 0.0


def test_max_minutes_stops_training_and_a_larger_budget_trains_on(tiny_imagefolder, tmp_path, one_thread):
    """The real training loop in this process with a fake clock: each step takes exactly 10 s, so the steps a budget
    allows do not depend on how fast (or busy) the machine is."""
    from train import build_parser, config_from_args
    from gan.train.loop import TrainingState, train

    out = tmp_path / "budget"
    flags = ["--dataset", str(tiny_imagefolder), "--output-dir", str(out), *TINY, "--max-steps", "100000",
             "--checkpoint-every", "0", "--sample-every", "0", "--real-pool-size", "0", "--cpu-threads", "1",
             "--log-every", "1000"]  # the clock is read once a step, and once more for the loss log at the end

    def ten_second_steps():
        ticks = itertools.count(0.0, 10.0)
        return lambda: next(ticks)

    def trained(minutes: str) -> tuple[dict, TrainingState]:
        train(config_from_args(build_parser().parse_args([*flags, "--max-minutes", minutes])),
              clock=ten_second_steps())
        summary = json.loads((out / "export" / "training_summary.json").read_text())
        state = TrainingState()  # the second object registered for checkpointing, after the EMA
        newest = out / "checkpoints" / checkpoint_names(out)[-1]
        state.load_state_dict(torch.load(newest / "custom_checkpoint_1.pkl", weights_only=True))
        return summary, state

    summary, state = trained("1")
    assert summary["steps"] == 6 and summary["train_seconds"] == 60.0  # stopped once the minute was spent
    assert checkpoint_names(out) == ["step_00000006"]  # the budget's end is checkpointed...
    assert (state.step, state.train_seconds) == (6, 60.0)  # ...with the time spent
    assert trained("1")[0]["steps"] == 6  # the same budget again: nothing left to train

    summary, state = trained("1.5")
    assert summary["steps"] == 9 and (state.step, state.train_seconds) == (9, 90.0)  # 30 s more: 3 more steps


@pytest.mark.slow
def test_a_tiny_budget_stops_after_the_first_step_however_fast_the_machine(tiny_imagefolder, tmp_path):
    out = tmp_path / "budget"
    # 1e-9 minutes are 60 ns, less than any training step takes: the run stops after exactly one step.
    result = run(python_command("--dataset", str(tiny_imagefolder), "--output-dir", str(out), *TINY,
                                "--max-steps", "100000", "--max-minutes", "1e-9", "--checkpoint-every", "0",
                                "--sample-every", "0", "--real-pool-size", "0"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((out / "export" / "training_summary.json").read_text())["steps"] == 1
    assert checkpoint_names(out) == ["step_00000001"]


# ---------------------------------------------------------------------------------------------- precision, --help


@pytest.mark.slow
def test_mixed_precision_flag_reaches_accelerate_and_the_summary_records_it(tiny_imagefolder, tmp_path):
    out = tmp_path / "bf16"
    # The flag wins over `accelerate launch --mixed_precision no`; bf16 runs (slowly) on a CPU too.
    result = run(launch_command("--dataset", str(tiny_imagefolder), "--output-dir", str(out), *TINY,
                                "--max-steps", "2", "--checkpoint-every", "0", "--sample-every", "0",
                                "--real-pool-size", "0", "--mixed-precision", "bf16"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((out / "export" / "training_summary.json").read_text())["mixed_precision"] == "bf16"
    saved = json.loads((out / "training_config.json").read_text())
    assert saved["mixed_precision"] == "bf16" and saved["format_version"] == CONFIG_FORMAT  # written as config.json is
    assert TrainConfig.load(out / "training_config.json").mixed_precision == "bf16"


def test_fp16_on_a_cpu_is_refused_whoever_asked_for_it():
    from gan.errors import GanError
    from gan.train.loop import check_precision

    with pytest.raises(GanError, match=r"^--mixed-precision fp16 needs a GPU.*use --mixed-precision no"):
        check_precision("fp16", "cpu", from_flag=True)
    with pytest.raises(GanError, match=r"set by `accelerate launch --mixed_precision` or `accelerate config`"):
        check_precision("fp16", "cpu", from_flag=False)
    for precision, device in [("fp16", "cuda"), ("bf16", "cpu"), ("bf16", "cuda"), ("no", "cpu")]:
        check_precision(precision, device, from_flag=True)  # no error


def test_help_shows_every_default_exactly_once(capsys):
    from train import build_parser, main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    entries: dict[str, str] = {}  # first flag of each option -> its whole (wrapped) help entry
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("  -"):
            flag = line.split()[0].rstrip(",")
            entries[flag] = line
        elif line.startswith("    ") and entries:
            entries[flag] += " " + line.strip()
    actions = {a.option_strings[0]: a for a in build_parser()._actions if a.option_strings}
    assert entries.keys() == actions.keys()
    for flag, action in actions.items():
        mentions = entries[flag].count("(default")
        shown = 0 if action.required or action.nargs == 0 else 1  # switches and --help have no default to show
        assert mentions == shown, (flag, entries[flag])
    assert "(default: 28)" in entries["--image-size"] and "(default: gan)" in entries["--tracker-project"]


# ---------------------------------------------------------------------------------------------- data decoding


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("threshold,local_rank,terminal,shown", [
    (10, "0", True, True),  # a large dataset (for this test), decoded by the first process, seen in a terminal
    (5000, "0", True, False),  # the default threshold: the 48 tiny images decode silently
    (10, "1", True, False),  # the other processes of a machine stay quiet
    (10, "0", False, False),  # logs (no terminal) get no progress bar
])
def test_decoding_a_large_dataset_shows_progress_in_a_terminal(tiny_imagefolder, monkeypatch, threshold, local_rank,
                                                                 terminal, shown):
    import gan.data
    from gan.data import load_image_data

    stderr = Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(gan.data, "PROGRESS_MIN_IMAGES", threshold)
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.setenv("LOCAL_RANK", local_rank)
    data = load_image_data(str(tiny_imagefolder), image_size=28)
    assert len(data.labels) == 48
    assert ("decoding images" in stderr.getvalue() and "48/48" in stderr.getvalue()) == shown, stderr.getvalue()


def test_earlier_stages_of_a_start_model_replaced_by_this_runs_own_export(tmp_path):
    """A run fine-tuned from a shipped model whose folder then received this run's own export (and the run resumed)
    must not list its own first steps as an earlier stage: its steps count them already."""
    from gan.train.export import earlier_stages

    def folder(name: str, output_dir: str, steps: int, stages: list) -> Path:
        path = tmp_path / name
        path.mkdir()
        (path / "training_config.json").write_text(json.dumps({"dataset": "d", "output_dir": output_dir}))
        (path / "training_summary.json").write_text(json.dumps({"steps": steps, "earlier_stages": stages}))
        return path

    scratch = {"command": "accelerate launch train.py --output-dir runs/a", "steps": 100}
    shipped = folder("shipped", "runs/b", 50, [scratch])
    stages = earlier_stages(str(shipped), this_run=str(tmp_path / "runs" / "c"))
    assert [stage["steps"] for stage in stages] == [100, 50]  # another run's model: its stages, then it
    own = folder("own", str(tmp_path / "runs" / "c"), 70, stages)
    assert earlier_stages(str(own), this_run=str(tmp_path / "runs" / "c")) == stages  # not 70 steps twice
    assert earlier_stages("user/repo") == [{"model": "user/repo"}]
