"""What the judgments say: human error, fooling and miss rates with 95% intervals, beside the discriminator's accuracy
on the same images (HYPE-infinity, Zhou et al. 2019: an error rate near 50% means humans cannot tell), per model, class
and mode; and the same as table rows, chart rows or plain text.

Intervals treat a visitor session as the unit: percentile bootstrap over sessions, or Wilson score intervals on the
pooled counts when too few sessions contributed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import GanError
from ..quality.intervals import wilson_interval
from .store import MODES, Judgment, JudgmentStore, select_judgments, to_judgment

RESAMPLES = 2000  # bootstrap resamples of sessions
MIN_BOOTSTRAP_SESSIONS = 10  # below this many sessions, intervals are Wilson score intervals on the pooled counts


def read_judgments(path: str | Path, model: str | None = None) -> list[Judgment]:
    """The judgments of an existing database, opened read-only (nothing is created); GanError if unreadable."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise GanError(f"no quiz database at {path} (set --db or QUIZ_DB)")
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            return select_judgments(connection, model)
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise GanError(f"cannot read judgments from {path}: {error}") from None


# ---------------------------------------------------------------------------------------------- statistics


def rate_interval(k: np.ndarray, n: np.ndarray, *, resamples: int = RESAMPLES, seed: int = 0,
                  min_sessions: int = MIN_BOOTSTRAP_SESSIONS) -> dict[str, Any]:
    """sum(k) / sum(n) over sessions (k[i] events in n[i] trials of session i) with a 95% interval: percentile
    bootstrap over sessions (resampled with replacement), or Wilson on the pooled counts below `min_sessions`."""
    k, n = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    k, n = k[n > 0], n[n > 0]
    total_k, total_n = int(k.sum()), int(n.sum())
    if total_n == 0:
        return {"value": None, "low": None, "high": None, "k": 0, "n": 0, "sessions": 0, "method": None}
    if len(n) < min_sessions:
        (low, high), method = wilson_interval(total_k / total_n, total_n), "wilson"
    else:
        rng, rates = np.random.default_rng(seed), []
        chunk = max(1, min(resamples, 4_000_000 // len(n)))  # bounded memory for many sessions
        for start in range(0, resamples, chunk):
            index = rng.integers(0, len(n), size=(min(chunk, resamples - start), len(n)))
            rates.append(k[index].sum(axis=1) / n[index].sum(axis=1))
        low, high = np.percentile(np.concatenate(rates), [2.5, 97.5])
        method = "bootstrap"
    return {"value": total_k / total_n, "low": float(low), "high": float(high), "k": total_k, "n": total_n,
            "sessions": int(len(n)), "method": method}


METRICS = {  # key -> what it is (table header / chart label)
    "error_rate": "human error rate",
    "fooling_rate": "fakes judged real",
    "miss_rate": "reals judged fake",
    "human_accuracy": "humans right",
    "d_accuracy": "discriminator right",
}


def _summarize(judgments: list[Judgment], **interval: Any) -> dict[str, Any]:
    """Counts per session, then each rate with its interval."""
    sessions = sorted({j.session_id for j in judgments})
    where = {s: i for i, s in enumerate(sessions)}
    counts = np.zeros((len(sessions), 8))  # errors, judgments, fooled, fakes, missed, reals, D right, D scored
    for j in judgments:
        row, wrong = counts[where[j.session_id]], not j.correct
        kinds = j.kinds.split(",")
        row[0:2] += (wrong, 1)
        if "fake" in kinds:  # single: fake judged real; pair: the fake picked as the real one
            row[2:4] += (wrong, 1)
        if "real" in kinds:
            row[4:6] += (wrong, 1)
        for p, real in ((j.d_real, True), (j.d_fake, False)):
            if p is not None:
                row[6:8] += ((p > 0.5) == real, 1)
    error = rate_interval(counts[:, 0], counts[:, 1], **interval)
    accuracy = dict(error, value=1 - error["value"], low=1 - error["high"], high=1 - error["low"],
                    k=error["n"] - error["k"]) if error["n"] else dict(error)
    return {"judgments": len(judgments), "sessions": len(sessions), "error_rate": error,
            "fooling_rate": rate_interval(counts[:, 2], counts[:, 3], **interval),
            "miss_rate": rate_interval(counts[:, 4], counts[:, 5], **interval),
            "human_accuracy": accuracy,
            "d_accuracy": rate_interval(counts[:, 6], counts[:, 7], **interval)}


def stats(source: JudgmentStore | str | Path | Iterable[Judgment | dict], *, model: str | None = None,
          resamples: int = RESAMPLES, seed: int = 0, min_sessions: int = MIN_BOOTSTRAP_SESSIONS) -> list[dict]:
    """Per model (sorted by id): judgments, sessions, error/fooling/miss rates, human and discriminator accuracy,
    each {value, low, high, k, n, sessions, method}, and the same per class and per mode."""
    if isinstance(source, JudgmentStore):
        judgments = source.judgments(model)
    elif isinstance(source, (str, Path)):
        judgments = read_judgments(source, model)
    else:
        judgments = [j for j in map(to_judgment, source) if model is None or j.model == model]
    interval = {"resamples": resamples, "seed": seed, "min_sessions": min_sessions}
    results = []
    for name in sorted({j.model for j in judgments}):
        mine = [j for j in judgments if j.model == name]
        per_class = []
        for index in sorted({j.class_index for j in mine}):
            of_class = [j for j in mine if j.class_index == index]
            per_class.append({"class_index": index, "class_name": of_class[0].class_name,
                              **_summarize(of_class, **interval)})
        per_mode = [{"mode": m, **_summarize([j for j in mine if j.mode == m], **interval)}
                    for m in MODES if any(j.mode == m for j in mine)]
        results.append({"model": name, **_summarize(mine, **interval), "per_class": per_class,
                        "per_mode": per_mode, "interval": describe_interval(resamples, seed, min_sessions)})
    return results


def describe_interval(resamples: int = RESAMPLES, seed: int = 0, min_sessions: int = MIN_BOOTSTRAP_SESSIONS) -> str:
    """How the intervals were computed, in one sentence."""
    return (f"95% intervals: percentile bootstrap over sessions ({resamples} resamples, seed {seed}); "
            f"Wilson score interval on pooled counts where fewer than {min_sessions} sessions contributed")


def _cell(metric: dict) -> str:
    if metric["value"] is None:
        return "–"
    return f"{metric['value']:.3f} [{metric['low']:.3f}, {metric['high']:.3f}]"


TABLE_HEADERS = ["model", "class", "judgments", "sessions", *METRICS.values(), "interval"]


def stats_table(results: list[dict], *, per_class: bool = True) -> dict[str, list]:
    """{"headers", "data"} for a Gradio Dataframe: a row per model ("all" classes), then one per class."""
    data = []
    for result in results:
        rows = [("all", result)] + ([(r["class_name"], r) for r in result["per_class"]] if per_class else [])
        for label, row in rows:
            method = row["error_rate"]["method"]
            how = f"{method} ({row['error_rate']['sessions']} sessions)" if method else "–"
            data.append([result["model"], label, row["judgments"], row["sessions"],
                         *(_cell(row[key]) for key in METRICS), how])
    return {"headers": list(TABLE_HEADERS), "data": data}


def stats_chart(results: list[dict]) -> list[dict]:
    """Rows {model, metric, value, low, high} of every model's overall rates, for a bar chart."""
    return [{"model": r["model"], "metric": label, "value": r[key]["value"], "low": r[key]["low"],
             "high": r[key]["high"]} for r in results for key, label in METRICS.items() if r[key]["value"] is not None]


def format_table(table: dict[str, list]) -> str:
    """A table as aligned plain text."""
    rows = [table["headers"], *table["data"]]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(table["headers"]))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
