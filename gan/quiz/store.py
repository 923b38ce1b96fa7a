"""Where judgments are kept: an SQLite database (`JudgmentStore`), mirrored to a private Hub dataset when configured.

A `Judgment` is one guess: a row of the SQLite table and a JSON line of the Hub dataset. When QUIZ_DATASET_REPO and
HF_TOKEN are set, judgments also go as JSON lines to that dataset repo through `huggingface_hub.CommitScheduler`;
the repo is created private, since it holds visitors' answers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import tempfile
import threading
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import GanError

MODES = ("single", "pair")  # the kinds of round a judgment can come from


@dataclass
class Judgment:
    """One guess, as stored: a row of the SQLite table and a JSON line of the Hub dataset."""

    time: str  # UTC, ISO 8601
    session_id: str  # random per visitor session
    model: str  # model id (Hub repo id or folder)
    mode: str  # "single" or "pair"
    kinds: str  # images shown, left to right: "real", "fake", "real,fake" or "fake,real"
    answer: str  # the right guess: "real"/"fake", or the side of the real image "left"/"right"
    class_index: int
    class_name: str
    seed: int | None  # the fake's seed, when a fake was shown
    truncation: float | None  # psi of the fake
    guess: str
    correct: bool
    d_real: float | None  # discriminator's probability of "real" for the real image shown (None: none shown)
    d_fake: float | None  # ... for the fake image shown
    response_ms: int
    round_id: str  # unique: a round is stored once


COLUMNS = [f.name for f in dataclasses.fields(Judgment)]
SCHEMA = """CREATE TABLE IF NOT EXISTS judgments (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, session_id TEXT NOT NULL, model TEXT NOT NULL,
    mode TEXT NOT NULL, kinds TEXT NOT NULL, answer TEXT NOT NULL, class_index INTEGER NOT NULL, class_name TEXT,
    seed INTEGER, truncation REAL, guess TEXT NOT NULL, correct INTEGER NOT NULL, d_real REAL, d_fake REAL,
    response_ms INTEGER, round_id TEXT NOT NULL UNIQUE);
CREATE INDEX IF NOT EXISTS judgments_model ON judgments (model, session_id);"""
INSERT = f"INSERT OR IGNORE INTO judgments ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
MAX_PENDING = 10_000  # judgments kept in memory while the database cannot be written, retried with the next one


def default_db_path() -> Path:
    """QUIZ_DB, else /data/quiz.sqlite on a Space with persistent storage, else ~/.cache/gan/quiz.sqlite."""
    if os.environ.get("QUIZ_DB"):
        return Path(os.environ["QUIZ_DB"]).expanduser()
    if Path("/data").is_dir() and os.access("/data", os.W_OK):
        return Path("/data/quiz.sqlite")
    return Path.home() / ".cache" / "gan" / "quiz.sqlite"


CASTS = {"class_index": int, "seed": int, "truncation": float, "correct": bool, "d_real": float, "d_fake": float,
         "response_ms": int}  # other fields are text
OPTIONAL = {"class_name", "seed", "truncation", "d_real", "d_fake", "response_ms"}


def to_judgment(row: Any) -> Judgment:
    """A Judgment with plain Python values from a Judgment, a dict or a database row; GanError if malformed."""
    try:
        values = dict(zip(COLUMNS, row, strict=True)) if not isinstance(row, (dict, Judgment)) else (
            dataclasses.asdict(row) if isinstance(row, Judgment) else {k: row.get(k) for k in COLUMNS})
        for name in COLUMNS:
            if values[name] is None and name not in OPTIONAL:
                raise ValueError(f"{name} is missing")
            if values[name] is not None:
                values[name] = CASTS.get(name, str)(values[name])
    except (TypeError, ValueError) as error:
        raise GanError(f"not a valid judgment: {error}") from None
    return Judgment(**values)


def select_judgments(connection: sqlite3.Connection, model: str | None) -> list[Judgment]:
    """The judgments in a database (of one model), oldest first."""
    query = f"SELECT {', '.join(COLUMNS)} FROM judgments" + (" WHERE model = ?" if model else "") + " ORDER BY id"
    return [to_judgment(row) for row in connection.execute(query, (model,) if model else ())]


class JudgmentStore:
    """Judgments in SQLite (WAL, busy timeout, one connection behind a lock), optionally mirrored to a Hub dataset.

    Writing never raises for I/O trouble: `record` returns whether the judgment reached the database, and
    `saving`/`problem` say how things stand. Judgments that could not be written wait in memory (up to MAX_PENDING)
    and go in with the next successful write. The Hub mirror starts on first use (or `start_hub_sync()`) when
    QUIZ_DATASET_REPO and HF_TOKEN are set: JSON lines in QUIZ_SYNC_DIR (default: beside the database), one file per
    process, committed every QUIZ_SYNC_MINUTES (default 5) by a CommitScheduler to that dataset repo, created
    private (it holds visitors' answers; a repo that already exists keeps its visibility)."""

    def __init__(self, path: str | Path | None = None, *, timeout: float = 2.0, hub_repo: str | None = None,
                 token: str | None = None, sync_dir: str | Path | None = None, sync_minutes: float | None = None):
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        self.timeout = timeout  # seconds a write waits for a lock held by another connection
        self.saving, self.problem = True, None
        self._hub_settings = (hub_repo, token, sync_dir, sync_minutes)
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._pending: list[Judgment] = []
        self._hub_lock = threading.Lock()
        self._hub_decided = False
        self.scheduler = None  # the CommitScheduler, once started
        self.hub_problem: str | None = None
        self._jsonl: Path | None = None
        with self._lock:
            self._connect()

    # ----------------------------------------------------------------------------------------------- SQLite
    def _connect(self) -> sqlite3.Connection | None:
        """The connection, opened (and the schema created) if needed; None, with `problem` set, if impossible."""
        if self._connection is not None:
            return self._connection
        connection = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                                         check_same_thread=False)
            connection.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")  # durable in WAL mode except on power loss
            connection.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as error:
            if connection is not None:
                connection.close()
            self._fail(error)
            return None
        self._connection = connection
        return connection

    def _fail(self, error: Exception) -> None:
        self.saving = False
        reason = "is locked by another process" if "locked" in str(error) else f"cannot be written ({error})"
        self.problem = f"the database {self.path} {reason}"

    def record(self, judgment: Judgment) -> bool:
        """Store one judgment (and mirror it to the Hub if configured); True if it reached the database.
        Never raises for I/O trouble; GanError for a malformed judgment (it could never be stored)."""
        judgment = to_judgment(judgment)
        self._append_to_hub(judgment)
        with self._lock:
            self._pending.append(judgment)
            del self._pending[:-MAX_PENDING]
            connection = self._connect()
            if connection is None:
                return False
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    connection.executemany(INSERT, [tuple(dataclasses.astuple(j)) for j in self._pending])
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
            except sqlite3.Error as error:
                self._fail(error)
                return False
            self._pending.clear()
            self.saving, self.problem = True, None
            return True

    @property
    def pending(self) -> int:
        """Judgments waiting in memory for the database to become writable."""
        return len(self._pending)

    def judgments(self, model: str | None = None) -> list[Judgment]:
        """Every stored judgment (of one model), oldest first; GanError if the database cannot be read."""
        with self._lock:
            connection = self._connect()
            if connection is None:
                raise GanError(f"cannot read judgments: {self.problem}")
            try:
                return select_judgments(connection, model)
            except sqlite3.Error as error:
                raise GanError(f"cannot read judgments from {self.path}: {error}") from None

    def close(self) -> None:
        """Close the database and push the Hub mirror one last time (waiting up to a minute)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
        if self.scheduler is not None:
            try:
                self.scheduler.trigger().result(timeout=60)
            except Exception as error:  # noqa: BLE001 - the Hub is a mirror; the database has everything
                warnings.warn(f"quiz: the last push of judgments to the Hub failed ({error})", stacklevel=2)
            self.scheduler.stop()

    # ----------------------------------------------------------------------------------------------- Hub mirror
    def start_hub_sync(self):
        """Start the CommitScheduler now if QUIZ_DATASET_REPO and HF_TOKEN (or the constructor's) are set; returns
        it, or None (not configured, or it failed: a warning says why and judgments stay local)."""
        with self._hub_lock:
            if self.scheduler is not None or self._hub_decided:
                return self.scheduler
            self._hub_decided = True
            repo, token, folder, minutes = self._hub_settings
            repo = repo or os.environ.get("QUIZ_DATASET_REPO")
            token = token or os.environ.get("HF_TOKEN")
            if not repo:
                return None
            if not token:
                self.hub_problem = "QUIZ_DATASET_REPO is set but HF_TOKEN is not: judgments stay local"
                warnings.warn(f"quiz: {self.hub_problem}", stacklevel=2)
                return None
            try:
                from huggingface_hub import CommitScheduler

                folder = Path(folder or os.environ.get("QUIZ_SYNC_DIR") or self.path.parent / "quiz_hub_sync")
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError:
                    folder = Path(tempfile.mkdtemp(prefix="quiz_hub_sync_"))
                minutes = float(minutes or os.environ.get("QUIZ_SYNC_MINUTES") or 5)
                # Private: the dataset holds visitors' answers (ignored by the Hub if the repo already exists).
                self.scheduler = CommitScheduler(repo_id=repo, repo_type="dataset", folder_path=folder,
                                                 path_in_repo="data", every=minutes, token=token, private=True,
                                                 allow_patterns=["*.jsonl"])
                self._jsonl = folder / f"judgments-{uuid.uuid4().hex}.jsonl"  # unique per process: append-only
            except Exception as error:  # noqa: BLE001 - any failure (network, token, repo) leaves the game local
                self.hub_problem = f"could not start the sync of judgments to {repo} ({error})"
                warnings.warn(f"quiz: {self.hub_problem}; judgments stay local", stacklevel=2)
            return self.scheduler

    def _append_to_hub(self, judgment: Judgment) -> None:
        scheduler = self.start_hub_sync() if not self._hub_decided else self.scheduler
        if scheduler is None or self._jsonl is None:
            return
        try:
            with scheduler.lock:
                with self._jsonl.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(dataclasses.asdict(judgment)) + "\n")
        except OSError as error:
            self.hub_problem = f"could not write {self._jsonl} for the Hub sync ({error})"
