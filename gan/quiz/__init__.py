"""The "fake or real?" quiz: a human evaluation of a model (HYPE-infinity, Zhou et al. 2019: the human error rate
at telling generated images from real ones; about 50% means indistinguishable).

    quiz = Quiz(quiz_model(load_demo_model("models/fashion-mnist")), JudgmentStore("quiz.sqlite"))  # gan.serve.demo
    session = quiz.new_session()                       # one per visitor, kept on the server (gr.State)
    view = quiz.next_round(session, "single")          # images and a prompt, never the answer
    feedback = quiz.answer(session, view.round_id, "fake")

Visitors judge one image ("single": real or fake?) or a pair ("pair": which one is real?); the answer never leaves
the server. Modules: `rounds` (the game), `store` (judgments in SQLite, mirrored to a private Hub dataset when
QUIZ_DATASET_REPO and HF_TOKEN are set), `scores` (error, fooling and miss rates with 95% intervals, beside the
discriminator's accuracy), `tells` (could one pixel statistic beat the quiz? per channel for colour) and `cli`
(`python -m gan.quiz stats` prints the rates).
"""

from .cli import main
from .rounds import (CHOICES, PROMPTS, Feedback, Quiz, QuizModel, QuizRegistry, QuizSession, RoundView, check_guess,
                     check_mode, encode_image)
from .scores import (METRICS, MIN_BOOTSTRAP_SESSIONS, RESAMPLES, TABLE_HEADERS, describe_interval, format_table,
                     rate_interval, read_judgments, stats, stats_chart, stats_table)
from .store import MAX_PENDING, MODES, Judgment, JudgmentStore, default_db_path

__all__ = [
    "CHOICES", "Feedback", "Judgment", "JudgmentStore", "MAX_PENDING", "METRICS", "MIN_BOOTSTRAP_SESSIONS", "MODES",
    "PROMPTS", "Quiz", "QuizModel", "QuizRegistry", "QuizSession", "RESAMPLES", "RoundView", "TABLE_HEADERS", "check_guess",
    "check_mode", "default_db_path", "describe_interval", "encode_image", "format_table", "main", "rate_interval",
    "read_judgments", "stats", "stats_chart", "stats_table",
]
