"""The game: rounds of "fake or real?" for one model, and what a visitor sees and learns of them.

Rounds: "single" shows one image, real or fake with probability 1/2 each; "pair" shows one of each side by side.
The class is drawn first (uniformly over the classes in the held-out real pool), then a real image of that class or
a fake of that class, so both kinds share one class mix. Every round does the same work whatever the answer: one
fresh fake is generated and the discriminator scores the real and the fake image together, so the time a round
takes tells nothing. Real and fake images leave through one encoding, `encode_image`.

The answer lives only in the `QuizSession`, on the server; `RoundView` carries nothing secret. Each answer becomes a
`Judgment` recorded in the `JudgmentStore` given to the `Quiz`.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from collections.abc import Callable
from datetime import datetime, timezone

import numpy as np
import torch
from torch import nn

from ..errors import GanError
from ..sampling import MAX_SEED, check_truncation, generate
from ..serve.display import enlarge
from .store import MODES, Judgment, JudgmentStore

CHOICES = {"single": ("real", "fake"), "pair": ("left", "right")}
PROMPTS = {"single": "Is this image real or fake?", "pair": "One image is real, the other is fake. Which is real?"}


# ---------------------------------------------------------------------------------------------- what is shown


def encode_image(image: np.ndarray) -> np.ndarray:
    """The one display encoding for real and fake images alike: a fresh, C-contiguous uint8 array, enlarged
    (grey images become (H, W)). The app shows it in gr.Image(format="png"), which writes its own file names."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise GanError("encode_image takes a uint8 (H, W, C) array with 1 or 3 channels")
    return np.array(enlarge(image), dtype=np.uint8, order="C", copy=True)


@dataclass(frozen=True)
class RoundView:
    """What a visitor sees of a round: nothing here depends on the answer."""

    round_id: str  # random; the answer must echo it (not secret)
    mode: str  # "single" or "pair"
    images: tuple[np.ndarray, ...] = field(repr=False)  # 1 or 2 images (left to right), all from encode_image
    prompt: str  # the question, the same for every round of a mode
    choices: tuple[str, ...]  # the allowed guesses: ("real", "fake") or ("left", "right")
    number: int  # the visitor's round number (answered rounds + 1)


@dataclass(frozen=True)
class Feedback:
    """What a visitor learns after a guess: the truth, the image's address, the discriminator's verdict, the score."""

    round_id: str
    mode: str
    guess: str
    correct: bool
    answer: str  # the right guess: "real"/"fake" (single) or "left"/"right" (pair: the side of the real image)
    kinds: tuple[str, ...]  # what each image shown was, left to right: "real" or "fake"
    class_index: int
    class_name: str
    seed: int | None  # the fake's seed (None when only a real image was shown)
    truncation: float  # psi the fake was generated with
    d_probs: tuple[float | None, ...]  # discriminator's probability of "real" per image shown (None: no discriminator)
    d_correct: bool | None  # D on the same question: p > 0.5 for single, the image it finds more real for pair
    response_ms: int  # from the round being issued to the guess
    score: int  # right answers in this session
    answered: int  # rounds answered in this session
    streak: int  # right answers in a row, now
    best_streak: int
    error_rate: float | None  # the visitor's own error rate so far
    saved: bool  # whether this judgment reached the database
    saving_problem: str | None  # why results are not being saved, if they are not
    message: str  # all of the above as Markdown for the page


@dataclass
class _Round:
    """A round's secret data: it never leaves the server."""

    round_id: str
    mode: str
    kinds: tuple[str, ...]  # per image shown, left to right
    class_index: int
    seed: int  # of the fake generated (shown or not)
    truncation: float
    d_real: float | None  # D's probability of "real" for the real image, the fake one
    d_fake: float | None
    issued: float  # time.monotonic() when the round was issued

    @property
    def answer(self) -> str:
        return self.kinds[0] if self.mode == "single" else ("left" if self.kinds[0] == "real" else "right")


@dataclass
class QuizSession:
    """One visitor's game: score and the round waiting for an answer. Keep it on the server (gr.State set in a
    handler); only `Quiz` changes it. Plain data, so it can be deep-copied."""

    model_id: str
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # random per visitor session
    score: int = 0  # right answers
    answered: int = 0
    streak: int = 0
    best_streak: int = 0
    skipped: int = 0  # rounds replaced by a new one before an answer
    _round: _Round | None = field(default=None, repr=False)
    _answered_ids: deque = field(default_factory=lambda: deque(maxlen=64), repr=False)
    _seen_reals: set = field(default_factory=set, repr=False)  # pool indices of the real images shown
    last_fake: tuple[int, int, float] | None = None  # (class, seed, psi) of the last answered round's fake

    @property
    def error_rate(self) -> float | None:
        return None if self.answered == 0 else (self.answered - self.score) / self.answered

    @property
    def waiting(self) -> bool:
        """Whether a round is waiting for an answer."""
        return self._round is not None


# ---------------------------------------------------------------------------------------------- the game


@dataclass(frozen=True)
class QuizModel:
    """What a quiz needs of a model, however it was loaded (gan/serve/demo.py `quiz_model` makes one of a served
    model)."""

    name: str  # recorded with every judgment
    generator: nn.Module  # makes the fakes through `gan.sampling.generate`; has `model_config`
    discriminator: nn.Module | None  # scores both images of every round (None: no scores)
    real_images: torch.Tensor  # (N, H, W, C) uint8: the held-out real pool (gan/model_files.py `load_real_pool`)
    real_labels: torch.Tensor  # (N,) class indices


class Quiz:
    """The quiz for one model, shared by all sessions (thread-safe)."""

    def __init__(self, model: QuizModel, store: JudgmentStore | None = None, *, truncation: float | None = None,
                 rng_seed: int | None = None):
        self.model, self.store = model, store
        self.model_id = model.name
        config = model.generator.model_config
        self.truncation = check_truncation(config.default_truncation if truncation is None else truncation)
        images = model.real_images
        expected = (config.image_size, config.image_size, config.channels)
        if tuple(images.shape[1:]) != expected:
            raise GanError(f"the real pool of {model.name} holds {tuple(images.shape[1:])} images but the model "
                           f"makes {expected}; re-export the model so both kinds look alike")
        self._pool = np.ascontiguousarray(images.numpy())  # (N, H, W, C) uint8
        self.class_names = config.class_names
        labels = model.real_labels.numpy()
        self._by_class = {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)
                          if 0 <= c < config.num_classes}
        self.classes = sorted(self._by_class)  # classes with real images: the rounds' class mix
        if not self.classes:
            raise GanError(f"the real pool of {model.name} holds no image of the model's classes")
        # Unpredictable unless a test asks for a seed: revealed fake seeds must not let anyone predict the next answer.
        self._random = random.Random(rng_seed) if rng_seed is not None else random.SystemRandom()
        self._random_lock = threading.Lock()
        self._state_lock = threading.Lock()  # guards every QuizSession change: one answer per round

    def new_session(self) -> QuizSession:
        """A fresh game for one visitor."""
        return QuizSession(model_id=self.model_id)

    def ensure_session(self, session: object) -> QuizSession:
        """`session` if it is a game of this model, else a new one (gr.State starts as None)."""
        if isinstance(session, QuizSession) and session.model_id == self.model_id:
            return session
        return self.new_session()

    def next_round(self, session: QuizSession, mode: object = "single") -> RoundView:
        """Issue a new round (replacing any unanswered one) and return what the visitor may see of it."""
        session = self._check_session(session)
        mode = check_mode(mode)
        with self._random_lock:
            class_index = self._random.choice(self.classes)
            seed = self._random.randrange(MAX_SEED + 1)
            if mode == "single":
                kinds = ("real",) if self._random.random() < 0.5 else ("fake",)
            else:
                kinds = ("real", "fake") if self._random.random() < 0.5 else ("fake", "real")
            # Fakes never repeat (fresh seeds), so a real image seen twice would give itself away: each session goes
            # through a class's real images without repeats before any comes back.
            pool = self._by_class[class_index]
            with self._state_lock:
                fresh = [int(i) for i in pool if int(i) not in session._seen_reals]
                if not fresh:
                    session._seen_reals.difference_update(int(i) for i in pool)
                    fresh = [int(i) for i in pool]
                real_index = self._random.choice(fresh)
                if "real" in kinds:
                    session._seen_reals.add(real_index)
        # The same work for every round: one fake generated, D on the real and the fake image in one batch.
        real = self._pool[real_index]
        fake = generate(self.model.generator, [class_index], [seed], self.truncation)[0]  # (H, W, C)
        d_real, d_fake = self._realness(np.stack([real, fake]), class_index)
        shown = [real if kind == "real" else fake for kind in kinds]
        images = tuple(encode_image(image) for image in shown)
        secret = _Round(secrets.token_urlsafe(16), mode, kinds, class_index, seed, self.truncation,
                        d_real if "real" in kinds else None, d_fake if "fake" in kinds else None, time.monotonic())
        with self._state_lock:
            if session._round is not None:
                session.skipped += 1
            session._round = secret
            number = session.answered + 1
        return RoundView(secret.round_id, mode, images, PROMPTS[mode], CHOICES[mode], number)

    def answer(self, session: QuizSession, round_id: object, guess: object) -> Feedback:
        """Judge a guess for the current round, update the score, record the judgment; GanError for a guess that
        cannot count (no round, another round, a replay, a guess not among the round's choices)."""
        session = self._check_session(session)
        if not isinstance(round_id, str) or not round_id:
            raise GanError(f"round id must be the text given with the round, got {round_id!r}")
        answered_at = time.monotonic()
        with self._state_lock:
            current = session._round
            if current is None or current.round_id != round_id:
                if round_id in session._answered_ids:
                    raise GanError("this round was already answered: one guess per round; start a new round")
                if current is None:
                    raise GanError("no round is waiting for an answer: start a round first")
                raise GanError("that is not the current round (a newer one replaced it): answer the round shown")
            guess = check_guess(guess, current.mode)
            session._round = None
            session._answered_ids.append(round_id)
            correct = guess == current.answer
            session.answered += 1
            session.score += int(correct)
            session.streak = session.streak + 1 if correct else 0
            session.best_streak = max(session.best_streak, session.streak)
            # Only a fake that was shown may be looked at again (an unshown one's seed stays a secret).
            session.last_fake = ((current.class_index, current.seed, current.truncation) if "fake" in current.kinds
                                 else None)
            score = (session.score, session.answered, session.streak, session.best_streak, session.error_rate)
        judgment = Judgment(
            time=datetime.now(timezone.utc).isoformat(timespec="milliseconds"), session_id=session.session_id,
            model=self.model_id, mode=current.mode, kinds=",".join(current.kinds), answer=current.answer,
            class_index=current.class_index, class_name=self.class_names[current.class_index],
            seed=current.seed if "fake" in current.kinds else None, truncation=current.truncation, guess=guess,
            correct=correct, d_real=current.d_real, d_fake=current.d_fake,
            response_ms=round((answered_at - current.issued) * 1000), round_id=round_id)
        saved = self.store.record(judgment) if self.store is not None else False
        # Another visitor's successful save may clear store.problem in between: never report "None" as the reason.
        problem = None if saved else ((self.store.problem if self.store is not None else "no database is configured")
                                      or "the database could not be written")
        return _feedback(judgment, current, score, saved, problem)

    def _check_session(self, session: object) -> QuizSession:
        if not isinstance(session, QuizSession):
            raise GanError("no quiz session: start one (Quiz.new_session) before playing")
        if session.model_id != self.model_id:
            raise GanError(f"this quiz session belongs to model {session.model_id}, not {self.model_id}; "
                           "start a new session")
        return session

    @torch.no_grad()
    def _realness(self, images: np.ndarray, class_index: int) -> tuple[float | None, float | None]:
        """sigmoid(D logit) for uint8 images (B, H, W, C) exactly as shown, mapped back to [-1, 1]."""
        discriminator = self.model.discriminator
        if discriminator is None:
            return None, None
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (B, C, H, W)
        was_training = discriminator.training
        discriminator.eval()
        try:
            device = next(discriminator.parameters()).device
            labels = torch.full((len(x),), class_index, dtype=torch.long, device=device)
            probs = torch.sigmoid(discriminator(x.to(device), labels)).double().cpu().tolist()
        finally:
            discriminator.train(was_training)
        return probs[0], probs[1]


def check_mode(mode: object) -> str:
    """"single" or "pair" (case-insensitive), else GanError."""
    text = mode.strip().lower() if isinstance(mode, str) else None
    if text not in MODES:
        raise GanError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return text


def check_guess(guess: object, mode: str) -> str:
    """A guess allowed in `mode` (case-insensitive), else GanError."""
    text = guess.strip().lower() if isinstance(guess, str) else None
    if text not in CHOICES[mode]:
        raise GanError(f"a guess in a {mode} round must be {' or '.join(map(repr, CHOICES[mode]))}, got {guess!r}")
    return text


def _percent(p: float | None) -> str:
    return "?" if p is None else f"{100 * p:.0f}%"


def _feedback(j: Judgment, secret: _Round, score: tuple, saved: bool, problem: str | None) -> Feedback:
    """The Feedback of a judged round, with its Markdown message."""
    kinds = secret.kinds
    fake_note = f"generated for class *{j.class_name}* from seed {secret.seed} (ψ = {secret.truncation:g})"
    if j.mode == "single":
        truth = (f"It was **real**: a held-out *{j.class_name}* image the model never saw in training."
                 if kinds[0] == "real" else f"It was **fake**: {fake_note}.")
        d_probs = (secret.d_real if kinds[0] == "real" else secret.d_fake,)
        d_correct = None if d_probs[0] is None else (d_probs[0] > 0.5) == (kinds[0] == "real")
        d_text = (None if d_probs[0] is None else f"The discriminator gave it a {_percent(d_probs[0])} chance of "
                  f"being real, so it judged it {'real' if d_probs[0] > 0.5 else 'fake'}.")
    else:
        fake_side = "right" if j.answer == "left" else "left"
        truth = (f"The real image (*{j.class_name}*, held out from training) was on the **{j.answer}**; "
                 f"the {fake_side} one was {fake_note}.")
        d_probs = tuple(secret.d_real if kind == "real" else secret.d_fake for kind in kinds)
        d_correct = None if secret.d_real is None else secret.d_real > secret.d_fake
        d_text = (None if d_correct is None else f"The discriminator gave the left image {_percent(d_probs[0])} "
                  f"and the right one {_percent(d_probs[1])} chance of being real, so it picked the "
                  f"{'left' if d_probs[0] > d_probs[1] else 'right'}.")
    points, answered, streak, best, error_rate = score
    lines = [("Right! " if j.correct else "Wrong. ") + truth,
             d_text or "This model has no discriminator to compare with.",
             f"Score {points}/{answered}, streak {streak} (best {best}), your error rate {_percent(error_rate)}."]
    if not saved:
        lines.append(f"*Results are not being saved: {problem}.*")
    return Feedback(j.round_id, j.mode, j.guess, j.correct, j.answer, kinds, j.class_index, j.class_name, j.seed,
                    secret.truncation, d_probs, d_correct, j.response_ms, points, answered, streak, best, error_rate,
                    saved, None if saved else problem, "\n\n".join(lines))


class QuizRegistry:
    """One quiz per model of an app, sharing one judgment store; built on a model's first round by
    `quiz_model(name)` (which raises GanError for a model without a real-image pool: it has no quiz)."""

    def __init__(self, quiz_model: Callable[[str], QuizModel], default: str, store: JudgmentStore):
        self.quiz_model, self.default, self.store = quiz_model, default, store
        self._quizzes: dict[str, Quiz] = {}
        self._lock = threading.Lock()

    def get(self, name: str | None) -> Quiz:
        name = name or self.default
        with self._lock:
            if name not in self._quizzes:
                self._quizzes[name] = Quiz(self.quiz_model(name), self.store)
            return self._quizzes[name]
