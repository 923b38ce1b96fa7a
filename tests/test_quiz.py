"""The fake-or-real quiz: fair rounds that leak nothing, one guess per round, judgments kept safely, statistics."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import math
import sqlite3
import struct
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError
from PIL import Image

from conftest import CLASS_NAMES, REPO, child_env, tiny_export
from gan.serve.demo import load_demo_model, quiz_model
from gan.serve.display import enlarge
from gan.errors import GanError
from gan.model_files import save_real_pool
from gan.quiz import (Judgment, JudgmentStore, Quiz, QuizSession, RoundView, encode_image, main, rate_interval,
                      stats, stats_chart, stats_table)
from gan.sampling import generate
from hub_server import TOKEN, USER, local_hub  # noqa: F401

Z = 1.959963984540054


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quiz_model")
    tiny_export(folder)
    return load_demo_model(str(folder))


def shown_pixels(image: np.ndarray, size: int = 28) -> np.ndarray:
    """Undo encode_image's enlargement: the uint8 (H, W, 1) image that was shown."""
    factor = image.shape[0] // size
    return image[::factor, ::factor].reshape(size, size, 1)


def d_probability(model, image: np.ndarray, class_index: int) -> float:
    x = torch.from_numpy(image[None]).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        return torch.sigmoid(model.discriminator(x, torch.tensor([class_index]))).item()


def png_chunks(data: bytes) -> list[str]:
    chunks, at = [], 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        chunks.append(kind.decode())
        at += 12 + length
    return chunks


def judgment(session: str, kinds: str, guess: str, *, model: str = "m", class_index: int = 0,
             d_real: float | None = None, d_fake: float | None = None, mode: str | None = None) -> Judgment:
    """A hand-made judgment; single rounds have one kind, pairs two (left,right)."""
    mode = mode or ("pair" if "," in kinds else "single")
    answer = kinds if mode == "single" else ("left" if kinds.startswith("real") else "right")
    return Judgment(time="2025-01-01T00:00:00.000+00:00", session_id=session, model=model, mode=mode, kinds=kinds,
                    answer=answer, class_index=class_index, class_name=CLASS_NAMES[class_index],
                    seed=7 if "fake" in kinds else None, truncation=1.0, guess=guess, correct=guess == answer,
                    d_real=d_real, d_fake=d_fake, response_ms=900,
                    round_id=f"{session}-{kinds}-{guess}-{class_index}-{np.random.default_rng().integers(1 << 60)}")


# ---------------------------------------------------------------------------------------------- rounds


def test_single_rounds_are_real_or_fake_by_chance_and_shown_alike(model, tmp_path):
    quiz = Quiz(quiz_model(model), JudgmentStore(tmp_path / "q.sqlite"), rng_seed=0)
    session = quiz.new_session()
    pool = {c: [enlarge(image) for image in quiz._pool[quiz._by_class[c]]] for c in quiz.classes}
    kinds, classes, reals = [], set(), {c: [] for c in quiz.classes}
    for i in range(200):
        view = quiz.next_round(session, "single")
        (image,) = view.images
        assert image.shape == (168, 168) and image.dtype == np.uint8 and image.flags.c_contiguous
        feedback = quiz.answer(session, view.round_id, "real")
        kinds.append(feedback.kinds[0])
        classes.add(feedback.class_name)
        if feedback.kinds == ("fake",):  # the seed is the fake's address
            again = generate(model.generator, [feedback.class_index], [feedback.seed], model.default_truncation)[0]
            assert (encode_image(again) == image).all()
        else:
            assert feedback.seed is None
            (index,) = [i for i, real in enumerate(pool[feedback.class_index]) if (image == real).all()]
            reals[feedback.class_index].append(index)
        if i < 10:  # D judged the exact pixels shown
            expected = d_probability(model, shown_pixels(image), feedback.class_index)
            assert feedback.d_probs[0] == pytest.approx(expected, abs=1e-5)
            assert feedback.d_correct == ((expected > 0.5) == (feedback.kinds[0] == "real"))
    assert 70 <= kinds.count("real") <= 130  # Binomial(200, 1/2): 4 standard deviations either side
    assert classes == set(CLASS_NAMES)
    for shown in reals.values():  # 2 real images per class: each comes back only after the other was shown
        assert len(shown) > 10 and all(shown[i] != shown[i + 1] for i in range(0, len(shown) - 1, 2))
    assert session.answered == 200 and session.score == kinds.count("real")


def test_pair_rounds_show_one_real_and_one_fake(model):
    quiz = Quiz(quiz_model(model), None, rng_seed=1)
    session = quiz.new_session()
    sides = []
    for _ in range(40):
        view = quiz.next_round(session, "pair")
        left, right = view.images
        assert left.shape == right.shape == (168, 168) and left.dtype == right.dtype == np.uint8
        feedback = quiz.answer(session, view.round_id, "left")
        assert sorted(feedback.kinds) == ["fake", "real"]
        assert feedback.answer == ("left" if feedback.kinds[0] == "real" else "right")
        assert feedback.correct == (feedback.answer == "left")
        fake = view.images[feedback.kinds.index("fake")]
        again = generate(model.generator, [feedback.class_index], [feedback.seed], model.default_truncation)[0]
        assert (encode_image(again) == fake).all()
        expected = [d_probability(model, shown_pixels(image), feedback.class_index) for image in view.images]
        assert np.allclose(feedback.d_probs, expected, atol=1e-5)
        assert feedback.d_correct == (expected[feedback.kinds.index("real")] > expected[feedback.kinds.index("fake")])
        assert not feedback.saved and "not being saved" in feedback.message  # no store given
        sides.append(feedback.answer)
    assert {"left", "right"} == set(sides)


def test_nothing_in_a_round_view_tells_the_answer(model):
    quiz = Quiz(quiz_model(model), None, rng_seed=2)
    session = quiz.new_session()
    seen = {}  # (mode, kinds) -> what the view shows apart from its images and id
    ids = set()
    for mode in ("single", "pair"):
        for _ in range(30):
            view = quiz.next_round(session, mode)
            assert {f.name for f in dataclasses.fields(RoundView)} == {"round_id", "mode", "images", "prompt",
                                                                         "choices", "number"}
            blank = dataclasses.replace(view, round_id="", number=0, images=())
            layout = [(image.shape, image.dtype.str, image.strides) for image in view.images]
            feedback = quiz.answer(session, view.round_id, view.choices[0])
            seen.setdefault(feedback.kinds, set()).add((repr(blank), str(layout)))
            ids.add(view.round_id)
            for image, kind in zip(view.images, feedback.kinds):
                buffer = io.BytesIO()
                Image.fromarray(image).save(buffer, format="png")  # as gr.Image(format="png") writes it
                chunks = png_chunks(buffer.getvalue())
                assert not {"tEXt", "iTXt", "zTXt", "tIME"} & set(chunks)
                reopened = Image.open(io.BytesIO(buffer.getvalue()))
                seen.setdefault(("png", mode), set()).add((reopened.mode, reopened.size, tuple(chunks[:1])))
    assert set(seen) >= {("real",), ("fake",), ("real", "fake"), ("fake", "real")}
    assert seen[("real",)] == seen[("fake",)] and len(seen[("real",)]) == 1
    assert seen[("real", "fake")] == seen[("fake", "real")] and len(seen[("real", "fake")]) == 1
    assert len(seen[("png", "single")]) == 1 and len(seen[("png", "pair")]) == 1
    assert len(ids) == 60 and all(len(i) >= 20 for i in ids)
    assert "_round" not in repr(session)


def test_every_round_does_the_same_work_whatever_the_answer(model):
    quiz = Quiz(quiz_model(model), None, rng_seed=3)
    session = quiz.new_session()
    calls = []
    hooks = [model.fast.register_forward_hook(lambda m, args, out: calls.append(("G", len(args[0])))),
             model.discriminator.register_forward_hook(lambda m, args, out: calls.append(("D", len(args[0]))))]
    try:
        work = {}
        for mode in ("single", "pair"):
            for _ in range(20):
                calls.clear()
                view = quiz.next_round(session, mode)
                kinds = quiz.answer(session, view.round_id, view.choices[0]).kinds
                work.setdefault(kinds, set()).add(tuple(calls))
    finally:
        for hook in hooks:
            hook.remove()
    assert set(work) == {("real",), ("fake",), ("real", "fake"), ("fake", "real")}
    assert all(done == {(("G", 1), ("D", 2))} for done in work.values())


def test_bad_and_out_of_turn_answers_are_rejected_and_change_nothing(model):
    quiz = Quiz(quiz_model(model), None, rng_seed=4)
    session = quiz.new_session()

    def unchanged():
        assert (session.score, session.answered, session.streak) == (0, 0, 0)

    with pytest.raises(GanError, match="no round is waiting"):
        quiz.answer(session, "abc", "real")
    with pytest.raises(GanError, match="no quiz session"):
        quiz.next_round(None, "single")
    with pytest.raises(GanError, match="mode must be one of single, pair"):
        quiz.next_round(session, "triple")
    first = quiz.next_round(session, "single")
    for guess in ("left", "maybe", 1, None, ["real"]):
        with pytest.raises(GanError, match="must be 'real' or 'fake'"):
            quiz.answer(session, first.round_id, guess)
    for round_id in (None, 3, ""):
        with pytest.raises(GanError, match="round id"):
            quiz.answer(session, round_id, "real")
    with pytest.raises(GanError, match="not the current round"):
        quiz.answer(session, "made-up", "real")
    unchanged()
    second = quiz.next_round(session, "pair")  # replaces the unanswered first round
    with pytest.raises(GanError, match="not the current round"):
        quiz.answer(session, first.round_id, "real")
    with pytest.raises(GanError, match="must be 'left' or 'right'"):
        quiz.answer(session, second.round_id, "real")
    unchanged()
    other = Quiz(quiz_model(model, "another model"), None)
    with pytest.raises(GanError, match="belongs to model"):
        other.answer(session, second.round_id, "left")
    assert other.ensure_session(session) is not session and quiz.ensure_session(session) is session
    assert isinstance(quiz.ensure_session(None), QuizSession)
    feedback = quiz.answer(session, second.round_id, " LEFT ")
    assert session.answered == 1 and session.score == int(feedback.correct) and session.skipped == 1
    with pytest.raises(GanError, match="already answered"):
        quiz.answer(session, second.round_id, "left")
    third = quiz.next_round(session, "single")
    with pytest.raises(GanError, match="already answered"):
        quiz.answer(session, second.round_id, "right")
    assert session.answered == 1
    quiz.answer(session, third.round_id, "fake")  # the game goes on
    assert session.answered == 2 and not session.waiting
    assert copy.deepcopy(session).answered == 2  # plain data, as gr.State may copy it


def test_two_simultaneous_answers_to_one_round_count_once(model):
    quiz = Quiz(quiz_model(model), None, rng_seed=9)
    session = quiz.new_session()
    for _ in range(20):
        view = quiz.next_round(session, "single")
        start, outcomes = threading.Barrier(4), []

        def guess():
            start.wait()
            try:
                outcomes.append(quiz.answer(session, view.round_id, "real"))
            except GanError as error:
                outcomes.append(error)

        threads = [threading.Thread(target=guess) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(not isinstance(o, GanError) for o in outcomes) == 1
    assert session.answered == 20


def test_a_model_without_discriminator_or_with_a_mismatched_pool(model, tmp_path):
    quiz = Quiz(dataclasses.replace(quiz_model(model), discriminator=None), None, rng_seed=5)
    session = quiz.new_session()
    view = quiz.next_round(session, "pair")
    feedback = quiz.answer(session, view.round_id, "left")
    assert feedback.d_probs == (None, None) and feedback.d_correct is None and "no discriminator" in feedback.message
    folder = tmp_path / "mismatch"
    tiny_export(folder)
    save_real_pool(torch.zeros((2, 1, 32, 32), dtype=torch.uint8), torch.tensor([0, 1]), folder, split="test")
    with pytest.raises(GanError, match="real pool .* holds \\(32, 32, 1\\) images"):
        Quiz(quiz_model(load_demo_model(str(folder))), None)
    with pytest.raises(GanError, match="uint8"):
        encode_image(np.zeros((28, 28, 1), dtype=np.float32))


# ---------------------------------------------------------------------------------------------- storage


def test_concurrent_sessions_lose_no_judgment_and_a_restart_keeps_them(model, tmp_path):
    path = tmp_path / "quiz.sqlite"
    store = JudgmentStore(path)
    quiz = Quiz(quiz_model(model), store)
    sessions = [quiz.new_session() for _ in range(16)]
    failures = []

    def play(session):
        try:
            for i in range(50):
                view = quiz.next_round(session, ("single", "pair")[i % 2])
                assert quiz.answer(session, view.round_id, view.choices[i % 3 % 2]).saved
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=play, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    rows = store.judgments()
    assert len(rows) == 800 and len({r.round_id for r in rows}) == 800
    for session in sessions:
        mine = [r for r in rows if r.session_id == session.session_id]
        assert len(mine) == 50 and sum(r.correct for r in mine) == session.score
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    reopened = JudgmentStore(path)  # a restart
    assert [r.round_id for r in reopened.judgments()] == [r.round_id for r in rows]
    assert reopened.record(judgment("new", "real", "real"))
    assert len(reopened.judgments(model=quiz.model_id)) == 800 and len(reopened.judgments()) == 801
    for malformed in ({"mode": "single"}, dataclasses.replace(judgment("s", "real", "real"), correct=None), 42):
        with pytest.raises(GanError, match="not a valid judgment"):
            reopened.record(malformed)
    numpy_values = dataclasses.replace(judgment("s", "fake", "real"), class_index=np.int64(2), d_fake=np.float32(0.25))
    assert reopened.record(numpy_values) and reopened.saving  # nothing malformed was left waiting
    assert reopened.judgments()[-1].class_index == 2 and reopened.judgments()[-1].d_fake == 0.25
    reopened.close()


def test_a_locked_database_keeps_the_game_going_and_catches_up(model, tmp_path):
    path = tmp_path / "quiz.sqlite"
    store = JudgmentStore(path, timeout=0.1)
    quiz = Quiz(quiz_model(model), store, rng_seed=6)
    session = quiz.new_session()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        view = quiz.next_round(session, "single")
        feedback = quiz.answer(session, view.round_id, "real")
        assert not feedback.saved and "locked" in feedback.saving_problem and "not being saved" in feedback.message
        assert not store.saving and "locked" in store.problem and store.pending == 1
        assert not store.record(judgment("s", "fake", "fake"))
        view = quiz.next_round(session, "pair")  # the game goes on
        quiz.answer(session, view.round_id, "right")
        assert session.answered == 2
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    view = quiz.next_round(session, "single")
    assert quiz.answer(session, view.round_id, "fake").saved
    assert store.saving and store.problem is None and store.pending == 0
    assert len(store.judgments()) == 4  # the waiting ones went in with it
    store.close()


def test_an_unwritable_database_keeps_the_game_going(model, tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    store = JudgmentStore(tmp_path / "a_file" / "quiz.sqlite")
    assert not store.saving and "cannot be written" in store.problem
    quiz = Quiz(quiz_model(model), store, rng_seed=7)
    session = quiz.new_session()
    view = quiz.next_round(session, "single")
    feedback = quiz.answer(session, view.round_id, "fake")
    assert not feedback.saved and session.answered == 1 and "not being saved" in feedback.message
    assert store.record(judgment("s", "real", "fake")) is False
    with pytest.raises(GanError, match="cannot read judgments"):
        store.judgments()


# ---------------------------------------------------------------------------------------------- statistics


def wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson's interval, written another way: (k + z²/2) / (n + z²) ± z √n / (n + z²) √(p̂(1 − p̂) + z²/4n)."""
    p = k / n
    centre = (k + Z**2 / 2) / (n + Z**2)
    half = Z * math.sqrt(n) / (n + Z**2) * math.sqrt(p * (1 - p) + Z**2 / (4 * n))
    return centre - half, centre + half


def test_statistics_match_a_hand_computed_example():
    judgments = [
        judgment("s1", "fake", "real", d_fake=0.7),  # fooled; D fooled too
        judgment("s1", "real", "real", d_real=0.9),  # right; D right
        judgment("s1", "real,fake", "right", d_real=0.4, d_fake=0.3, class_index=1),  # picked the fake: both wrong
        judgment("s2", "fake", "fake", d_fake=0.2),  # right
        judgment("s2", "real", "fake", d_real=0.6, class_index=1),  # missed
        judgment("s3", "fake,real", "right", d_real=0.55, d_fake=0.45),  # right
        judgment("s3", "fake", "real", d_fake=0.5),  # fooled; D says fake at exactly 0.5
        judgment("x", "real", "real", model="other"),
    ]
    (result,) = stats(judgments, model="m")
    assert result["model"] == "m" and result["judgments"] == 7 and result["sessions"] == 3
    error, fooling, miss = result["error_rate"], result["fooling_rate"], result["miss_rate"]
    assert (error["k"], error["n"], fooling["k"], fooling["n"], miss["k"], miss["n"]) == (4, 7, 3, 5, 2, 4)
    assert error["value"] == pytest.approx(4 / 7) and error["method"] == "wilson"
    assert (error["low"], error["high"]) == pytest.approx(wilson(4, 7))
    assert (fooling["low"], fooling["high"]) == pytest.approx(wilson(3, 5))
    assert (miss["low"], miss["high"]) == pytest.approx(wilson(2, 4))
    accuracy = result["human_accuracy"]
    assert accuracy["value"] == pytest.approx(3 / 7) and accuracy["high"] == pytest.approx(1 - wilson(4, 7)[0])
    # D on 9 images: right on 0.9 (real), 0.3 (fake), 0.2 (fake), 0.6 (real), 0.55 (real), 0.45 (fake), 0.5 (fake)
    assert (result["d_accuracy"]["k"], result["d_accuracy"]["n"]) == (7, 9)
    by_class = {row["class_name"]: row for row in result["per_class"]}
    assert by_class["a"]["judgments"] == 5 and by_class["a"]["error_rate"]["k"] == 2
    assert by_class["b"]["sessions"] == 2 and by_class["b"]["error_rate"]["k"] == by_class["b"]["miss_rate"]["k"] == 2
    assert {row["mode"]: row["judgments"] for row in result["per_mode"]} == {"single": 5, "pair": 2}
    table = stats_table(stats(judgments))
    assert table["headers"][:4] == ["model", "class", "judgments", "sessions"]
    assert [row[:4] for row in table["data"][:3]] == [["m", "all", 7, 3], ["m", "a", 5, 3], ["m", "b", 2, 2]]
    assert table["data"][0][4] == f"{4 / 7:.3f} [{wilson(4, 7)[0]:.3f}, {wilson(4, 7)[1]:.3f}]"
    chart = [row for row in stats_chart(stats(judgments)) if row["model"] == "m"]
    assert {row["metric"] for row in chart} >= {"human error rate", "discriminator right"}
    assert all(row["low"] <= row["value"] <= row["high"] for row in chart)


def test_bootstrap_intervals_are_reproducible_contain_the_estimate_and_narrow_with_more_sessions():
    rng = np.random.default_rng(0)
    many = [judgment(f"s{s}", "fake" if i % 2 else "real", "real" if rng.random() < 0.6 else "fake")
            for s in range(200) for i in range(10)]
    few = [j for j in many if int(j.session_id[1:]) < 20]
    first, again = stats(many)[0]["error_rate"], stats(many)[0]["error_rate"]
    assert first == again and first["method"] == "bootstrap" and first["sessions"] == 200
    assert first["low"] < first["value"] < first["high"]
    assert stats(many, seed=1)[0]["error_rate"] != first
    narrow, wide = first["high"] - first["low"], stats(few)[0]["error_rate"]
    assert wide["method"] == "bootstrap" and wide["low"] < wide["value"] < wide["high"]
    assert narrow < 0.6 * (wide["high"] - wide["low"])
    # Sessions are the unit: one session's answers go together, so 9 sessions fall back to Wilson on the pool.
    assert rate_interval([3] * 9, [10] * 9)["method"] == "wilson"
    assert rate_interval([3] * 10, [10] * 10)["method"] == "bootstrap"
    assert rate_interval([0, 0], [0, 0])["value"] is None


# ---------------------------------------------------------------------------------------------- Hub mirror, CLI


def test_judgments_are_mirrored_to_a_hub_dataset(model, local_hub, monkeypatch, tmp_path):
    monkeypatch.setenv("QUIZ_DATASET_REPO", f"{USER}/quiz-judgments")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    store = JudgmentStore(tmp_path / "quiz.sqlite")
    assert store.scheduler is None  # lazily, at the first judgment
    quiz = Quiz(quiz_model(model), store, rng_seed=8)
    session = quiz.new_session()
    ids = []
    for mode in ("single", "pair", "single"):
        view = quiz.next_round(session, mode)
        assert quiz.answer(session, view.round_id, view.choices[0]).saved
        ids.append(view.round_id)
    assert store.scheduler is not None and store.hub_problem is None
    store.scheduler.trigger().result()
    api = HfApi()  # the dataset holds visitors' answers: private, invisible without the owner's token
    assert api.dataset_info(f"{USER}/quiz-judgments", token=TOKEN).private is True
    with pytest.raises(RepositoryNotFoundError):
        api.dataset_info(f"{USER}/quiz-judgments", token=False)
    files = local_hub.files(f"{USER}/quiz-judgments", repo_type="dataset")
    (name,) = [path for path in files if path.endswith(".jsonl")]
    assert name.startswith("data/judgments-")
    lines = [json.loads(line) for line in files[name].decode().splitlines()]
    assert [line["round_id"] for line in lines] == ids
    assert lines[0]["session_id"] == session.session_id and lines[1]["mode"] == "pair"
    store.close()


def test_no_hub_sync_without_settings_and_a_failing_one_only_warns(model, local_hub, monkeypatch, tmp_path):
    monkeypatch.delenv("QUIZ_DATASET_REPO", raising=False)
    store = JudgmentStore(tmp_path / "one.sqlite")
    assert store.record(judgment("s", "real", "real")) and store.start_hub_sync() is None and store.scheduler is None
    monkeypatch.setenv("QUIZ_DATASET_REPO", f"{USER}/quiz-judgments")  # but no token
    with pytest.warns(UserWarning, match="HF_TOKEN is not"):
        assert JudgmentStore(tmp_path / "two.sqlite").start_hub_sync() is None
    assert local_hub.requests() == []  # nothing was attempted
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("QUIZ_DATASET_REPO", "other/quiz-judgments")  # a namespace the token may not write to
    store = JudgmentStore(tmp_path / "three.sqlite")
    with pytest.warns(UserWarning, match="could not start the sync"):
        assert store.record(judgment("s", "fake", "real"))  # still saved locally
    assert store.scheduler is None and len(store.judgments()) == 1


def test_stats_command_prints_a_table_and_json(tmp_path, capsys):
    path = tmp_path / "quiz.sqlite"
    store = JudgmentStore(path)
    for j in [judgment("s1", "fake", "real", d_fake=0.7), judgment("s2", "real,fake", "left", d_real=0.6,
                                                                  d_fake=0.2, class_index=2)]:
        assert store.record(j)
    store.close()
    assert main(["stats", "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert "human error rate" in out and "wilson (2 sessions)" in out and "0.500 [" in out
    assert main(["stats", "--db", str(path), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["judgments"] == 2 and result["error_rate"]["k"] == 1
    assert main(["stats", "--db", str(tmp_path / "missing.sqlite")]) == 2
    assert "no quiz database" in capsys.readouterr().err
    done = subprocess.run([sys.executable, "-m", "gan.quiz", "stats", "--db", str(path), "--json"], cwd=REPO,
                          env=child_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and json.loads(done.stdout)[0]["sessions"] == 2
    assert "RuntimeWarning" not in done.stderr
