"""Benchmark of the demo app on this machine: model time, API latency, concurrent throughput, cold start.

    python bench/app_latency.py [--model models/fashion-mnist] [--quick] [--out bench/results/app.json]

1. model time: `generate` of a 64-image grid in-process (torch threads = all cores), median of repeats;
2. API round trip: `/generate` of 16 images through gradio_client against `python app.py`, p50 / p95;
3. throughput: 8 and 32 concurrent clients, each sending requests of 16 images: requests/s and images/s;
4. cold start: from starting `python app.py` to the first answered `/generate`.
Timings are reported, never asserted: this is a benchmark, not a test. `--quick` runs a few repetitions only.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import report  # noqa: E402
from gan.hub import load_generator  # noqa: E402
from gan.sampling import generate  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def model_time(model: str, repeats: int) -> dict:
    """Median wall time of generating 64 images in-process, after a warm-up."""
    generator = load_generator(model)
    classes = [i % generator.model_config.num_classes for i in range(64)]
    seeds = list(range(64))
    generate(generator, classes, seeds)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        generate(generator, classes, seeds)
        times.append(time.perf_counter() - start)
    return {"images": 64, "threads": torch.get_num_threads(), "median_ms": 1000 * statistics.median(times),
            "min_ms": 1000 * min(times), "repeats": repeats}


def free_port() -> int:
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


def round_trips(url: str, model: str, class_name: str, count: int) -> list[float]:
    """Sequential /generate calls of 16 images; seconds each."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    times = []
    for seed in range(count):
        start = time.perf_counter()
        client.predict(model, class_name, seed, 16, 1.0, api_name="/generate")
        times.append(time.perf_counter() - start)
    return times


def throughput(url: str, model: str, class_name: str, clients: int, per_client: int) -> dict:
    """`clients` clients in parallel, each sending per_client requests of 16 images."""
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [t for ts in pool.map(lambda _: round_trips(url, model, class_name, per_client), range(clients))
                     for t in ts]
    elapsed = time.perf_counter() - start
    requests = clients * per_client
    return {"clients": clients, "requests": requests, "requests_per_s": requests / elapsed,
            "images_per_s": 16 * requests / elapsed, "p50_ms": 1000 * percentile(latencies, 50),
            "p95_ms": 1000 * percentile(latencies, 95)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(REPO / "models" / "fashion-mnist"))
    parser.add_argument("--quick", action="store_true", help="a few repetitions: checks that the benchmark runs")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    repeats, calls, per_client = (3, 5, 2) if args.quick else (30, 100, 10)
    class_name = load_generator(args.model).model_config.class_names[0]
    results = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "torch": torch.__version__},
        "model": args.model,
        "quick": args.quick,
        "model_time_64": model_time(args.model, repeats),
    }
    process, url, cold = start_app(args.model)
    try:
        results["cold_start_s"] = cold
        latencies = round_trips(url, args.model, class_name, calls)
        results["api_16"] = {"calls": calls, "p50_ms": 1000 * percentile(latencies, 50),
                             "p95_ms": 1000 * percentile(latencies, 95)}
        results["throughput"] = [throughput(url, args.model, class_name, n, per_client) for n in (8, 32)]
    finally:
        process.terminate()
        process.wait(timeout=30)
    report(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
