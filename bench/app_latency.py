"""Benchmark of the demo app on this machine: model time, API latency under load, throughput, cold start, memory.

    python bench/app_latency.py [--model models/fashion-mnist] [--clients 1 8 32] [--quick]
        [--out bench/results/app.json] [--plot bench/results/app.png]

1. model time: a 64-image grid in-process (torch threads = all cores, glibc's allocator set as app.py sets it), eager
   generator vs the optimised one (gan/inference.py, as gan.generate and the server run it), taking turns, median;
2. cold start: from starting `python app.py` to the first answered `/generate`;
3. for 1, 8 and 32 concurrent gradio_client clients (each its own session, as visitors are), `/generate` of 16 images
   and `/quiz_round`: latency p50 / p95 (with the client's default download of the returned files), requests/s;
4. the server's resident memory after start and at the end.
Clients run on the same machine as the server, so their own work (HTTP, TLS contexts, downloads) takes CPU from it.
Timings are reported, never asserted: this is a benchmark, not a test. `--quick` runs a few repetitions only.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.generation import paired_times  # noqa: E402
from bench.report import report  # noqa: E402
from gan.models import load_generator  # noqa: E402
from gan.serve.housekeeping import tune_malloc_for_serving  # noqa: E402

ENDPOINTS = {"/generate": lambda model, class_name, i: (model, class_name, i, 16, 1.0),
             "/quiz_round": lambda model, class_name, i: (model, "single")}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def model_time(model: str, repeats: int) -> dict:
    """Median wall time of generating 64 images in-process: the eager generator and the optimised one that gan.generate
    and the server use, in turns."""
    times = paired_times(load_generator(model), 64, repeats)
    medians = {name: 1000 * statistics.median(values) for name, values in times.items()}
    return {"images": 64, "threads": torch.get_num_threads(), "repeats": repeats,
            **{f"{name}_median_ms": ms for name, ms in medians.items()},
            **{f"{name}_best_ms": 1000 * min(values) for name, values in times.items()},
            "speedup": medians["eager"] / medians["library"]}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(model: str) -> tuple[subprocess.Popen, str, float]:
    """Start `python app.py` and wait for its first answered /generate; returns (process, url, cold start s)."""
    from gradio_client import Client

    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--model", model, "--port", str(port)],
                               cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    while True:
        if process.poll() is not None:
            raise SystemExit(f"app.py exited with {process.returncode}")
        try:
            Client(url, verbose=False).predict(model, "All classes", 0, 1, 1.0, api_name="/generate")
            return process, url, time.perf_counter() - start
        except Exception:  # noqa: BLE001 - not up yet
            if time.perf_counter() - start > 120:
                process.kill()
                raise SystemExit("app.py did not answer within 120 s")
            time.sleep(0.05)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_test(url: str, model: str, class_name: str, endpoint: str, clients: int, per_client: int) -> dict:
    """`clients` sessions in parallel, each sending per_client requests one after another; all start together."""
    from gradio_client import Client

    sessions = [Client(url, verbose=False) for _ in range(clients)]  # connecting is not part of a request
    for session in sessions:  # each session's first call (a quiz session starts on it) is not timed
        session.predict(*ENDPOINTS[endpoint](model, class_name, 0), api_name=endpoint)
    barrier = threading.Barrier(clients)

    def run(index: int) -> list[float]:
        barrier.wait()
        times = []
        for i in range(per_client):
            start = time.perf_counter()
            sessions[index].predict(*ENDPOINTS[endpoint](model, class_name, 1000 * index + i), api_name=endpoint)
            times.append(time.perf_counter() - start)
        return times

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [t for ts in pool.map(run, range(clients)) for t in ts]
    elapsed = time.perf_counter() - start
    return {"endpoint": endpoint, "clients": clients, "requests": len(latencies),
            "requests_per_s": len(latencies) / elapsed, "p50_ms": 1000 * percentile(latencies, 50),
            "p95_ms": 1000 * percentile(latencies, 95), "mean_ms": 1000 * statistics.mean(latencies)}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, throughput) = plt.subplots(1, 2, figsize=(10, 4))
    for endpoint in ENDPOINTS:
        rows = [r for r in results["load"] if r["endpoint"] == endpoint]
        clients = [r["clients"] for r in rows]
        latency.plot(clients, [r["p50_ms"] for r in rows], "o-", label=f"{endpoint} p50")
        latency.plot(clients, [r["p95_ms"] for r in rows], "o--", label=f"{endpoint} p95")
        throughput.plot(clients, [r["requests_per_s"] for r in rows], "o-", label=endpoint)
    for axis, title in ((latency, "latency through gradio_client (ms)"), (throughput, "requests per second")):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrent clients")
        axis.set_title(title)
        axis.legend()
        axis.grid(alpha=0.3)
    latency.set_yscale("log")
    figure.suptitle(f"app.py on {results['machine']['cpus']} CPUs: /generate of 16 images and /quiz_round")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(REPO / "models" / "fashion-mnist"))
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--quick", action="store_true", help="a few repetitions: checks that the benchmark runs")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--plot", type=Path, default=None, help="draw latency and throughput against clients here")
    args = parser.parse_args()
    tune_malloc_for_serving()  # as app.py does: the in-process model time is the served one's
    repeats, requests = (3, 4) if args.quick else (30, 64)  # requests per load level, shared by its clients
    class_name = load_generator(args.model).model_config.class_names[0]
    results = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "torch": torch.__version__},
        "model": os.path.relpath(args.model, REPO) if Path(args.model).is_absolute() else args.model,
        "quick": args.quick,
        "model_time_64": model_time(args.model, repeats),
    }
    process, url, cold = start_app(args.model)
    try:
        results["cold_start_s"] = cold
        results["rss_after_start_mb"] = rss_mb(process.pid)
        results["load"] = [load_test(url, args.model, class_name, endpoint, clients, max(2, requests // clients))
                           for endpoint in ENDPOINTS for clients in args.clients]
        results["rss_at_end_mb"] = rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
    report(results, args.out)
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
