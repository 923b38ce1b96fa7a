"""Benchmark of the demo app's server memory under many calls: does it grow, and what grows?

    python bench/app_memory.py [--calls 3000] [--report-every 100] [--sessions 4] [--visitor-calls 0]
                               [--output bench/results/app_memory.json] [--label NAME] [--append]

Starts `python app.py` with its temp dir, Gradio cache and quiz database in one temporary folder (removed at the
end, also on Ctrl-C), calls every endpoint once per model to load what loads lazily, then `--sessions`
gradio_client sessions in parallel make `--calls` calls between them, each repeating one cycle: /generate,
/interpolate, /quiz_round, /quiz_answer (seeds and classes change with every call, so every image is new).
Every `--report-every` calls it records the server's RSS (VmRSS summed over it and its children; anonymous and
file-backed parts), threads, open descriptors, memory mappings, and the files (count, size, folders) in Gradio's
cache, in gan/serve/scratch.py's `gan-demo-*` scratch folders and elsewhere in its temp dir. `--visitor-calls K` gives each
session a fresh session hash every K calls, as new visitors would; 0 keeps one per session. After the calls it
waits `--idle` seconds and records once more. The JSON holds one entry per run (`--append` keeps the other labels'
runs in the file) and the plot beside it draws them all. Measurements are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.app_latency import free_port, percentile  # noqa: E402

CYCLE = ("/generate", "/interpolate", "/quiz_round", "/quiz_answer")  # what one session repeats
SHIPPED = ["models/fashion-mnist", "models/mnist"]  # served as app.py names them when started from the repo root
ALL_CLASSES = "All classes"  # gan.serve.demo.ALL_CLASSES, without importing it (and torch) here
MB = 1024 * 1024


# ---------------------------------------------------------------------------------------------- what is measured


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc/PID/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    todo += [int(child) for child in handle.read().split()]
        except OSError:  # gone meanwhile
            pass
    return found


def proc_status(pid: int) -> dict[str, int]:
    """The kB fields (and Threads) of /proc/PID/status."""
    values = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit() and (len(parts) == 1 or parts[1] == "kB"):
                values[key] = int(parts[0])
    return values


def tree_usage(folder: Path) -> dict[str, float]:
    """Files (count, MB) and folders (count, empty ones) under folder."""
    files = size = folders = empty = 0
    for root, dirs, names in os.walk(folder):
        folders += len(dirs)
        empty += int(not dirs and not names and Path(root) != folder)
        for name in names:
            try:
                size += os.lstat(os.path.join(root, name)).st_size
                files += 1
            except OSError:  # deleted meanwhile
                pass
    return {"files": files, "mb": size / MB, "folders": folders, "empty_folders": empty}


def server_sample(pid: int, temp: Path) -> dict:
    """Memory, threads, descriptors and mappings of the server (and children), and its files on disk."""
    pids = process_tree(pid)
    statuses = []
    for each in pids:
        try:
            statuses.append(proc_status(each))
        except OSError:
            pass
    main = statuses[0] if statuses else {}
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/maps") as handle:
            maps = sum(1 for _ in handle)
    except OSError:
        fds = maps = -1
    cache = tree_usage(temp / "gradio")
    scratch = [tree_usage(folder) for folder in temp.glob("gan-demo-*")]
    everything = tree_usage(temp)
    quiz = sum(path.stat().st_size for path in temp.glob("quiz.sqlite*") if path.is_file())
    other_files = everything["files"] - cache["files"] - sum(s["files"] for s in scratch) - len(
        list(temp.glob("quiz.sqlite*"))) - int((temp / "server.log").exists())
    return {
        "rss_mb": sum(s.get("VmRSS", 0) for s in statuses) / 1024,
        "rss_anon_mb": main.get("RssAnon", 0) / 1024,
        "rss_file_mb": main.get("RssFile", 0) / 1024,
        "hwm_mb": main.get("VmHWM", 0) / 1024,
        "processes": len(statuses),
        "threads": sum(s.get("Threads", 0) for s in statuses),
        "fds": fds,
        "maps": maps,
        "cache_files": cache["files"], "cache_mb": cache["mb"], "cache_folders": cache["folders"],
        "cache_empty_folders": cache["empty_folders"],
        "scratch_folders": len(scratch), "scratch_files": sum(s["files"] for s in scratch),
        "scratch_mb": sum(s["mb"] for s in scratch),
        "other_temp_files": other_files,
        "quiz_db_mb": quiz / MB,
    }


# ---------------------------------------------------------------------------------------------- the app and its load


def start_server(temp: Path, models: list[str], extra_env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`python app.py` with everything it writes under temp; waits until it answers."""
    from gradio_client import Client

    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "TMPDIR": str(temp),
           "GRADIO_TEMP_DIR": str(temp / "gradio"), "QUIZ_DB": str(temp / "quiz.sqlite"),
           "MPLCONFIGDIR": str(temp / "matplotlib")}
    env.pop("QUIZ_DATASET_REPO", None)  # never mirror benchmark judgments to the Hub
    env.update(extra_env)
    command = [sys.executable, str(REPO / "app.py"), "--port", str(port)]
    for model in models:
        command += ["--model", model]
    with open(temp / "server.log", "wb") as log:  # its own process group: Ctrl-C reaches us, we stop it
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url, start = f"http://127.0.0.1:{port}/", time.perf_counter()
    while True:
        if process.poll() is not None:
            tail = (temp / "server.log").read_text(errors="replace")[-2000:]
            raise SystemExit(f"app.py exited with {process.returncode}:\n{tail}")
        try:
            Client(url, verbose=False, download_files=False)
            return process, url
        except Exception:  # noqa: BLE001 - not up yet
            if time.perf_counter() - start > 300:
                raise SystemExit("app.py did not answer within 300 s") from None
            time.sleep(0.5)


def stop_server(process: subprocess.Popen) -> None:
    """Stop the server's process group (ours: started with start_new_session)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def class_names(model: str) -> list[str]:
    return json.loads((REPO / model / "config.json").read_text())["class_names"]


class Load:
    """The calls: counted as they finish, with latencies and errors per endpoint."""

    def __init__(self, args: argparse.Namespace, url: str, models: list[str], download: Path | bool):
        self.args, self.url, self.models, self.download = args, url, models, download
        self.done, self.visitors = 0, 0
        self.latencies: dict[str, list[float]] = {name: [] for name in CYCLE}
        self.errors: dict[str, int] = {name: 0 for name in CYCLE}
        self.last_error: str | None = None
        self.changed = threading.Condition()

    def call(self, client, endpoint: str, *inputs):
        start = time.perf_counter()
        try:
            result = client.predict(*inputs, api_name=endpoint)
        except Exception as error:  # noqa: BLE001 - counted; the load goes on
            result, self.last_error = None, f"{endpoint}: {error}"[:300]
            with self.changed:
                self.errors[endpoint] += 1
        with self.changed:
            self.latencies[endpoint].append(time.perf_counter() - start)
            self.done += 1
            self.changed.notify_all()
        return result

    def session(self, index: int, calls: int) -> None:
        """One client making `calls` calls of the cycle, on model number `index` (mod the number of models)."""
        from gradio_client import Client

        model = self.models[index % len(self.models)]
        names = class_names(model)
        client = Client(self.url, verbose=False, download_files=self.download)
        with self.changed:
            self.visitors += 1
        per_visitor = max(1, math.ceil(self.args.visitor_calls / len(CYCLE))) if self.args.visitor_calls else 0
        round_id = mode = None
        for j in range(calls):
            cycle, step = divmod(j, len(CYCLE))
            seed = index * 1_000_003 + j  # every call draws new images
            if step == 0 and cycle and per_visitor and cycle % per_visitor == 0:
                client.reset_session()  # a new visitor: a new session hash, a new gr.State
                with self.changed:
                    self.visitors += 1
            if step == 0:
                choices = [ALL_CLASSES, *names]  # "All classes" one generate in len(names) + 1
                self.call(client, "/generate", model, choices[cycle % len(choices)], seed, self.args.images, 1.0)
            elif step == 1:
                start_class, end_class = names[cycle % len(names)], names[(cycle + 3) % len(names)]
                self.call(client, "/interpolate", model, start_class, seed, end_class, seed + 1, self.args.frames,
                          ("slerp", "lerp")[cycle % 2], 1.0)
            elif step == 2:
                mode = ("single", "pair")[cycle % 2]
                result = self.call(client, "/quiz_round", model, mode)
                round_id = result[0] if result else None
            else:
                guess = ("real", "left")[mode == "pair"] if cycle % 3 else ("fake", "right")[mode == "pair"]
                self.call(client, "/quiz_answer", model, round_id or "none", guess)
        client.close()  # ends its heartbeat: the server marks the session closed, as when a browser tab closes


def run_load(args: argparse.Namespace, process: subprocess.Popen, url: str, temp: Path, models: list[str]) -> dict:
    """Warm up, then the calls with samples every --report-every of them, then an idle sample."""
    download = temp / "client" if args.download else False
    # Warm-up: every endpoint once per model (the second model, its quiz and its real pool load on first use).
    warm = Load(args, url, models, download)
    for index in range(len(models)):
        warm.session(index, len(CYCLE))
    time.sleep(2)
    load = Load(args, url, models, download)
    start = time.perf_counter()
    samples = [{"calls": 0, "elapsed_s": 0.0, "visitors": 0, **server_sample(process.pid, temp)}]
    print_sample(samples[0])
    shares = [args.calls // args.sessions + (i < args.calls % args.sessions) for i in range(args.sessions)]
    workers = [threading.Thread(target=load.session, args=(i, shares[i]), daemon=True) for i in range(args.sessions)]
    for worker in workers:
        worker.start()
    mark = args.report_every
    while True:
        with load.changed:
            load.changed.wait_for(lambda: load.done >= min(mark, args.calls) or not any(w.is_alive() for w in workers),
                                  timeout=5)
            done, visitors = load.done, load.visitors
        finished = done >= args.calls or not any(w.is_alive() for w in workers)
        if done >= mark or finished:
            if process.poll() is not None:
                tail = (temp / "server.log").read_text(errors="replace")[-2000:]
                raise SystemExit(f"app.py died after {done} calls:\n{tail}")
            sample = {"calls": done, "elapsed_s": time.perf_counter() - start, "visitors": visitors,
                      **server_sample(process.pid, temp)}
            recent = [t for ts in load.latencies.values() for t in ts[-args.report_every:]]
            sample["p50_ms"] = 1000 * percentile(recent, 50) if recent else None
            samples.append(sample)
            print_sample(sample)
            mark = (done // args.report_every + 1) * args.report_every
        if finished:
            break
    time.sleep(args.idle)
    idle = {"calls": load.done, "elapsed_s": time.perf_counter() - start, "visitors": load.visitors,
            "idle_s": args.idle, **server_sample(process.pid, temp)}
    print_sample(idle, "idle")
    return {"samples": samples, "idle": idle, "errors": load.errors, "last_error": load.last_error,
            "latency_ms": {name: {"calls": len(ts), "p50": 1000 * percentile(ts, 50), "p95": 1000 * percentile(ts, 95)}
                           for name, ts in load.latencies.items() if ts},
            "summary": summarise(samples, idle)}


COLUMNS = ("calls", "rss_mb", "rss_anon_mb", "threads", "fds", "maps", "cache_files", "cache_mb", "scratch_files",
           "scratch_mb", "visitors")


def print_sample(sample: dict, note: str = "") -> None:
    if sample["calls"] == 0 and not note:
        print(" ".join(f"{name:>12}" for name in COLUMNS))
    cells = [f"{sample[name]:12.1f}" if isinstance(sample[name], float) else f"{sample[name]:12d}" for name in COLUMNS]
    print(" ".join(cells), note, flush=True)


def slope(samples: list[dict], key: str) -> float | None:
    """Least-squares growth of `key` per 1,000 calls over samples."""
    if len(samples) < 2:
        return None
    xs, ys = [s["calls"] for s in samples], [s[key] for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 1000 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else None


def summarise(samples: list[dict], idle: dict) -> dict:
    """Growth from the first to the last sample, and per 1,000 calls in the first and second half: a thing that
    levels off grows much less in the second half."""
    first, last = samples[0], samples[-1]
    half = last["calls"] / 2
    early, late = [s for s in samples if s["calls"] <= half], [s for s in samples if s["calls"] >= half]
    summary = {"calls": last["calls"], "seconds": last["elapsed_s"], "calls_per_s": last["calls"] / last["elapsed_s"]}
    for key in ("rss_mb", "rss_anon_mb", "cache_files", "cache_mb", "cache_folders", "scratch_files", "scratch_mb",
                "fds", "threads", "maps"):
        summary[key] = {"start": first[key], "end": last[key], "idle": idle[key], "growth": last[key] - first[key],
                        "per_1000_first_half": slope(early, key), "per_1000_second_half": slope(late, key)}
    return summary


# ---------------------------------------------------------------------------------------------- results


def plot(runs: list[dict], path: Path) -> None:
    """Four panels against calls, one colour per run: RSS, files, MB on disk, descriptors and threads."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    panels = [(axes[0][0], "server RSS, MB (dotted: anonymous)", ("rss_mb", "rss_anon_mb")),
              (axes[0][1], "files in Gradio's cache (dotted: in gan-demo-* scratch)", ("cache_files", "scratch_files")),
              (axes[1][0], "MB in Gradio's cache (dotted: in scratch)", ("cache_mb", "scratch_mb")),
              (axes[1][1], "open descriptors (dotted: threads)", ("fds", "threads"))]
    for number, run in enumerate(runs):
        calls = [s["calls"] for s in run["samples"]]
        for axis, _, (solid, dotted) in panels:
            axis.plot(calls, [s[solid] for s in run["samples"]], "-", color=f"C{number}",
                      label=run["label"] if axis is axes[0][0] else None)
            axis.plot(calls, [s[dotted] for s in run["samples"]], ":", color=f"C{number}")
    for axis, title, _ in panels:
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("calls")
        axis.grid(alpha=0.3)
    fig.legend(loc="lower center", ncol=2, fontsize=8)
    fig.suptitle("python app.py under many calls (bench/app_memory.py)")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=100)


def interrupt(*_) -> None:
    raise KeyboardInterrupt


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000, help="calls in all, shared by the sessions")
    parser.add_argument("--report-every", type=int, default=100, help="record the server every this many calls")
    parser.add_argument("--sessions", type=int, default=4, help="gradio_client sessions calling in parallel")
    parser.add_argument("--visitor-calls", type=int, default=0,
                        help="a fresh session hash every this many calls of a session (0: one per session)")
    parser.add_argument("--model", action="append", help="models app.py serves (default: the two shipped ones); "
                        "session i uses model i modulo their number")
    parser.add_argument("--images", type=int, default=8, help="`count` of /generate (per class for All classes)")
    parser.add_argument("--frames", type=int, default=16, help="`steps` of /interpolate")
    parser.add_argument("--download", action="store_true", help="clients download every file, as browsers do")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for the server (repeatable), e.g. MALLOC_ARENA_MAX=2")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds after the calls before the last sample")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "app_memory.json",
                        help="JSON results; the plot goes beside it as .png")
    parser.add_argument("--label", default=None, help="this run's name in the JSON and the plot")
    parser.add_argument("--append", action="store_true", help="keep the other labels' runs already in --output")
    parser.add_argument("--replot", action="store_true", help="only redraw the plot from --output's runs")
    return parser


def main() -> int:
    parser = build_parser()
    args = parser.parse_args()
    if args.calls < 1 or args.report_every < 1 or args.sessions < 1:
        parser.error("--calls, --report-every and --sessions must be at least 1")
    if any("=" not in item for item in args.env):
        parser.error("--env takes NAME=VALUE")
    extra_env = dict(item.split("=", 1) for item in args.env)
    if args.replot:
        plot(json.loads(args.output.read_text())["runs"], args.output.with_suffix(".png"))
        return 0
    models = args.model or SHIPPED
    label = args.label or (f"{args.sessions} sessions" + (f", new visitor every {args.visitor_calls} calls"
                                                          if args.visitor_calls else "")
                           + "".join(f", {item}" for item in args.env))

    # Ctrl-C or SIGTERM: the finally below stops the server and removes the temp folder.
    signal.signal(signal.SIGTERM, interrupt)
    temp = Path(tempfile.mkdtemp(prefix="app-memory-"))
    process = None
    try:
        process, url = start_server(temp, models, extra_env)
        run = {"label": label,
               "settings": {"calls": args.calls, "report_every": args.report_every, "sessions": args.sessions,
                            "visitor_calls": args.visitor_calls, "models": models, "images": args.images,
                            "frames": args.frames, "download": args.download,
                            "env": extra_env, "cycle": list(CYCLE)},
               **run_load(args, process, url, temp, models)}
    except KeyboardInterrupt:
        print("interrupted: stopping the server and removing", temp, file=sys.stderr)
        return 130
    finally:
        if process is not None:
            stop_server(process)
        shutil.rmtree(temp, ignore_errors=True)
    save_results(run, args.output, append=args.append)
    print_summary(run)
    print(f"wrote {args.output} and {args.output.with_suffix('.png')}")
    return 0


def save_results(run: dict, output: Path, *, append: bool) -> None:
    """Write `run` (replacing a run of the same label when appending) to the JSON and redraw the plot beside it."""
    import gradio
    import torch

    previous = json.loads(output.read_text()) if append and output.is_file() else {}
    runs = [r for r in previous.get("runs", []) if r["label"] != run["label"]] + [run]
    results = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                           "python": platform.python_version(), "torch": torch.__version__,
                           "gradio": gradio.__version__},
               "runs": runs}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    plot(runs, output.with_suffix(".png"))


def print_summary(run: dict) -> None:
    """One line per recorded quantity: start, end and idle values, and growth per 1,000 calls in each half."""
    print(f"\n{'':14} {'start':>9} {'end':>9} {'idle':>9} {'/1k calls, 1st half':>20} {'2nd half':>9}")
    for key, row in run["summary"].items():
        if isinstance(row, dict):
            halves = [f"{v:9.1f}" if v is not None else f"{'-':>9}" for v in (row["per_1000_first_half"],
                                                                              row["per_1000_second_half"])]
            print(f"{key:14} {row['start']:9.1f} {row['end']:9.1f} {row['idle']:9.1f} {halves[0]:>20} {halves[1]}")
    print(f"errors: {run['errors']}" + (f" (last: {run['last_error']})" if run["last_error"] else ""))


if __name__ == "__main__":
    sys.exit(main())
