"""API fuzzer of the demo app: every public endpoint called with valid and hostile values; reports what it answers.

    python bench/app_fuzz.py [--model models/fashion-mnist] [--model models/emoji ...] [--calls 1000] [--seed 0]
        [--quick] [--out bench/results/app_fuzz.json]

1. starts `python app.py` with the given models (as bench/app_latency.py starts it, its output captured to a file);
2. discovers the endpoints and their parameters from gradio_client's view_api (nothing here lists them) and the
   components' limits (minimum, maximum, step) from the app's config; one valid call per endpoint comes first (it
   also builds what a first call builds, e.g. a copy check's index, under a longer timeout);
3. --calls calls, the endpoints taken in turn, from a few client threads (each its own session). A call's values come
   from random.Random(seed), so a run is reproducible: all valid, or one or two hostile values among valid ones (to
   reach past the first check), or any mix. Hostile: wrong types, huge and negative numbers, NaN/inf (as strings:
   gradio_client's JSON refuses float NaN), empty, long and odd strings, another model's classes, models that are
   not served, and for pictures every format and mode PIL writes, a 1x1 image, a decompression bomb, damaged,
   empty and mislabelled files, editor values of the wrong shape and paths that were never uploaded;
4. each call is `ok` (it returned), `named_error` (the app refused it with a sentence) or `anonymous_error` (Gradio's
   "The upstream Gradio app has raised an exception", an empty or generic message, a timeout, any other exception);
5. the server's output is scanned for tracebacks: those of the app's own refusals (gradio.exceptions.Error, printed
   for every named error) are counted apart; every other one is a `server_traceback`;
6. each distinct anonymous error is replayed alone (its traceback read from the server's output) and shrunk: its
   hostile values are put back to valid ones while the same failure remains, giving a minimal reproduction.
This reports, never asserts (exit code 0); tests/test_fuzz.py asserts on its --quick run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.app_latency import free_port  # noqa: E402
from bench.report import report  # noqa: E402

THREADS = 4
CALL_TIMEOUT_S = 120
WARMUP_TIMEOUT_S = 600  # a first call may build something (a model's neighbour index for the copy check)
START_TIMEOUT_S = 300
QUICK_CALLS = 60
ANONYMOUS = "The upstream Gradio app has raised an exception"
GENERIC_MESSAGES = {"", "error", "error raised.", "none", "exception", "internal server error"}
MAX_REPLAYS = 24  # distinct anonymous errors replayed alone and shrunk
KEEP_TRACEBACKS = 8  # distinct server tracebacks kept in the report
# Free-text inputs with no choices listed: words the app's text inputs understand (the quiz's guesses).
FREE_TEXT_WORDS = ("real", "fake", "left", "right")
FILE_COMPONENTS = {"image", "file", "files", "video", "audio", "model3d", "gallery", "uploadbutton"}


# ----------------------------------------------------------------------------------------------- the server

def start_server(models: list[str], log_path: Path, env_extra: dict[str, str]) -> tuple[subprocess.Popen, str, float]:
    """`python app.py --model M ...` with its stdout and stderr in log_path; returns (process, url, cold start s) once
    a client can read its API."""
    from gradio_client import Client

    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
           **env_extra}
    command = [sys.executable, str(REPO / "app.py"), *[a for m in models for a in ("--model", m)], "--port", str(port)]
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    while True:
        if process.poll() is not None:
            output = log_path.read_text(errors="replace")[-3000:]
            raise SystemExit(f"app.py exited with {process.returncode}:\n{output}")
        try:
            Client(url, verbose=False, analytics_enabled=False, download_files=False).view_api(print_info=False)
            return process, url, time.perf_counter() - start
        except Exception:  # noqa: BLE001 - not up yet
            if time.perf_counter() - start > START_TIMEOUT_S:
                process.kill()
                raise SystemExit(f"app.py did not answer within {START_TIMEOUT_S} s")
            time.sleep(0.25)


def model_argument(model: str) -> str:
    """A model as app.py is given it: a local folder inside the repository relative to it (the names API callers see
    in the README), other folders absolute, anything else (a Hub id) as is."""
    path = Path(model).expanduser()
    if not path.exists():
        return model
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


# ----------------------------------------------------------------------------------------------- endpoints

class Param:
    """One parameter of one endpoint, from view_api, with its component's props where the config has them."""

    def __init__(self, info: dict, props: dict):
        self.name = info.get("parameter_name") or info.get("label") or "?"
        self.label = info.get("label") or self.name
        self.component = (info.get("component") or "").lower()
        self.schema = info.get("type") if isinstance(info.get("type"), dict) else {}
        self.python_type = str((info.get("python_type") or {}).get("type", ""))
        self.default = info.get("parameter_default") if info.get("parameter_has_default") else None
        self.has_default = bool(info.get("parameter_has_default"))
        self.props = props
        self.enum = list(self.schema.get("enum") or [])
        self.kind = self._kind()

    def _kind(self) -> str:
        name = self.name.lower()
        if "imageeditor" in self.component or "sketchpad" in self.component or "paint" in self.component:
            return "editor"
        if self.component in FILE_COMPONENTS or "filepath" in self.python_type:
            return "file"
        if "model" in name:
            return "model"
        if "class" in name:
            return "class"
        if self.enum:
            return "choice"
        kind = self.schema.get("type")
        if kind == "integer" or self.python_type == "int":
            return "int"
        if kind == "number" or self.python_type == "float":
            return "number"
        if kind == "string" or self.python_type == "str":
            return "text"
        if kind == "boolean":
            return "bool"
        return "any"

    def bounds(self) -> tuple[float | None, float | None, float | None]:
        """(minimum, maximum, step) from the component's props, else from view_api's "between A and B"."""
        low, high, step = self.props.get("minimum"), self.props.get("maximum"), self.props.get("step")
        if low is None or high is None:
            found = re.search(r"between (-?[\d.e+]+) and (-?[\d.e+]+)", self.schema.get("description", ""))
            if found:
                low, high = float(found.group(1)), float(found.group(2))
        if self.props.get("precision") == 0 and step is None:
            step = 1
        return low, high, step

    def describe(self) -> dict:
        low, high, step = self.bounds()
        return {"name": self.name, "kind": self.kind, "component": self.component,
                **({"choices": self.enum} if self.enum else {}),
                **({"minimum": low, "maximum": high, "step": step} if low is not None else {})}


def discover(url: str) -> dict[str, list[Param]]:
    """Every named endpoint and its parameters (view_api), with their components' props (the app's config)."""
    from gradio_client import Client

    client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
    api = client.view_api(print_info=False, return_format="dict")
    components = {c["id"]: c for c in client.config.get("components", [])}
    endpoints = {}
    for name, info in api["named_endpoints"].items():
        dependency = next((d for d in client.config.get("dependencies", [])
                           if f"/{d.get('api_name')}" == name), {})
        shown = [components.get(i, {}) for i in dependency.get("inputs", [])]
        shown = [c for c in shown if not c.get("skip_api", c.get("type") in ("state",))]
        props = [c.get("props", {}) for c in shown] if len(shown) == len(info["parameters"]) else []
        endpoints[name] = [Param(p, props[i] if props else {}) for i, p in enumerate(info["parameters"])]
    return endpoints


def model_classes(url: str, models: list[str], endpoints: dict[str, list[Param]]) -> dict[str, list[str]]:
    """Each model's class names: from an endpoint answering a model's record (/model_info) when there is one, else
    the class choices listed for the default model."""
    from gradio_client import Client

    client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
    listed = next((p.enum for ps in endpoints.values() for p in ps if p.kind == "class" and p.enum), [])
    classes = {}
    for model in models:
        for name, params in endpoints.items():
            if len(params) == 1 and params[0].kind == "model" and "info" in name:
                try:
                    record = client.predict(model, api_name=name)
                    if isinstance(record, dict) and isinstance(record.get("classes"), list):
                        classes[model] = [str(c) for c in record["classes"]]
                        break
                except Exception:  # noqa: BLE001 - fall back to the listed choices
                    pass
        classes.setdefault(model, [c for c in listed if c != "All classes"])
    return classes


# ----------------------------------------------------------------------------------------------- test files

def make_files(folder: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """(pictures any image input should take, files it should refuse), written with PIL and numpy."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (64, 48, 3), dtype=np.uint8), "RGB")
    grey = Image.fromarray((np.add.outer(np.arange(40), np.arange(40)) * 3).astype(np.uint8), "L")
    good, bad = {}, {}

    def save(name, image, **options):
        good[name] = folder / name
        image.save(good[name], **options)

    save("rgb.png", rgb)
    save("grey.png", grey)
    save("photo.jpg", rgb, quality=85)
    save("cmyk.jpg", rgb.convert("CMYK"))
    save("grey16.png", Image.fromarray((np.arange(32 * 32).reshape(32, 32) * 60).astype(np.uint16)))
    save("anim.gif", rgb.convert("P"), save_all=True, append_images=[grey.convert("P")], duration=100, loop=0)
    save("image.webp", rgb)
    save("image.bmp", rgb)
    save("image.tiff", rgb)
    alpha = rgb.convert("RGBA")
    alpha.putalpha(Image.fromarray(np.where(np.arange(48)[None, :] < 24, 0, 255).repeat(64, 0).astype(np.uint8)))
    save("transparent.png", alpha)
    save("one.png", Image.new("RGB", (1, 1), (200, 10, 10)))
    save("wide.png", Image.new("L", (2000, 3), 128))
    save("big.jpg", rgb.resize((2400, 1800)))
    save("palette.png", rgb.convert("P"))
    save("la.png", grey.convert("LA"))
    save("bilevel.png", grey.convert("1"))
    save("float.tiff", Image.fromarray(rng.random((20, 20)).astype(np.float32), "F"))
    good["png_named.jpg"] = folder / "png_named.jpg"
    shutil.copy(good["rgb.png"], good["png_named.jpg"])
    bad["bomb.png"] = folder / "bomb.png"  # over the app's pixel limit, a few kB on disk
    Image.new("1", (9000, 9000)).save(bad["bomb.png"])
    bad["truncated.png"] = folder / "truncated.png"
    bad["truncated.png"].write_bytes(good["rgb.png"].read_bytes()[:200])
    bad["text.png"] = folder / "text.png"
    bad["text.png"].write_text("this is not an image\n" * 20)
    bad["empty.png"] = folder / "empty.png"
    bad["empty.png"].write_bytes(b"")
    bad["garbage.jpg"] = folder / "garbage.jpg"
    bad["garbage.jpg"].write_bytes(b"\xff\xd8\xff\xe0" + bytes(rng.integers(0, 256, 3000, dtype=np.uint8)))
    bad["notes.txt"] = folder / "notes.txt"
    bad["notes.txt"].write_text("plain text with a .txt name")
    return good, bad


# ----------------------------------------------------------------------------------------------- values

LONG = "x" * 100_000
COMMON_HOSTILE = [None, True, False, 0, -1, "", " ", LONG, "Ωmega 👾 \u202e\u0000 ∂", ["a", 1], [], {},
                  {"a": [1, {"b": None}]}, 10**200, 2**64, -2**63, 1e308, -1e308, "NaN", "Infinity", "-Infinity",
                  "../../etc/passwd", "nope/nope", "<script>alert(1)</script>", "%s%n{0}", "\x00", "1e999"]
BAD_MODELS = ["../../etc/passwd", "nope/nope", "models/mnist", "models", "/", "/etc/passwd", "evaluators",
              "https://example.com/model", "gpt2", "models/fashion-mnist/", "MODELS/FASHION-MNIST", " "]


class NotUploadedMeta(dict):
    """File metadata that gradio_client does not take for a file to upload (it checks .get("_type")), but that is
    sent as {"_type": "gradio.FileData"}: a path on the server the client never uploaded reaches the app."""

    def get(self, key, default=None):
        return None if key == "_type" else super().get(key, default)


def not_uploaded(path: str) -> dict:
    return {"path": path, "meta": NotUploadedMeta(_type="gradio.FileData")}


class Caller:
    """Values for each kind of parameter; `valid` and `hostile` return a value (placeholders: see resolve)."""

    def __init__(self, models: list[str], classes: dict[str, list[str]], good: dict, bad: dict):
        from gradio_client import handle_file

        self.models, self.classes = models, classes
        self.handle_file = handle_file
        self.good, self.bad = sorted(good.values()), sorted(bad.values())
        self.all_classes = sorted({c for cs in classes.values() for c in cs})
        self.decks: dict[tuple[str, str], list[int]] = {}

    def file(self, path: Path) -> dict:
        return self.handle_file(str(path))

    def valid(self, param: Param, rng: random.Random, model: str):
        kind = param.kind
        if kind == "model":
            return model
        if kind == "class":
            names = self.classes.get(model) or self.all_classes
            options = [*names, *(c for c in param.enum if c not in self.all_classes)]  # e.g. "All classes"
            roll = rng.random()
            if roll < 0.7 or not names:
                return rng.choice(options or ["0"])
            return rng.randrange(len(names)) if roll < 0.85 else str(rng.randrange(len(names)))
        if kind == "choice":
            return rng.choice(param.enum)
        if kind in ("int", "number"):
            low, high, step = param.bounds()
            if kind == "int" or step == 1 and low is not None and float(low).is_integer():
                low = int(low) if low is not None else 0
                high = int(high) if high is not None else 2**32 - 1
                return rng.choice([low, min(low + 1, high), high, rng.randint(low, min(high, low + 1000)),
                                   rng.randint(low, high)])
            if low is None:
                return rng.choice([0.0, 0.5, 1.0, rng.uniform(-3, 3)])
            if step:
                steps = int(round((high - low) / step))
                return round(low + step * rng.randint(0, steps), 10)
            return rng.uniform(low, high)
        if kind == "text":
            return {"$remembered": param.label, "fallback": rng.choice(FREE_TEXT_WORDS)}
        if kind == "bool":
            return rng.random() < 0.5
        if kind == "editor":
            background = self.file(rng.choice(self.good))
            if rng.random() < 0.15:  # what a drawing on an upload sends: a layer and a composite
                return {"background": background, "layers": [self.file(rng.choice(self.good))],
                        "composite": self.file(rng.choice(self.good))}
            return {"background": background, "layers": [], "composite": None}
        if kind == "file":
            return self.file(rng.choice(self.good))
        return param.default

    def hostile(self, endpoint: str, param: Param, rng: random.Random, model: str):
        """A hostile value, dealt from a shuffled deck of the parameter's options: each comes up in turn."""
        options = self.hostile_options(param, rng, model)
        deck = self.decks.setdefault((endpoint, param.name), [])
        if not deck:
            deck.extend(rng.sample(range(len(options)), len(options)))
        return options[deck.pop() % len(options)]

    def hostile_options(self, param: Param, rng: random.Random, model: str) -> list:
        kind = param.kind
        own = rng.choice(COMMON_HOSTILE)
        if kind == "model":
            return [*BAD_MODELS, own, own]
        if kind == "class":
            names = self.classes.get(model) or ["X"]
            others = [c for c in self.all_classes if c not in names] or ["Nope"]
            return [*others, len(names), -1, str(len(names)), 2**64, 1.5, "1.5", names[0].upper(), f" {names[0]} ",
                    own, own, own]
        if kind in ("int", "number"):
            low, high, step = param.bounds()
            step = step or (1 if kind == "int" else 0.01)
            edges = [low - step, high + step] if low is not None and high is not None else []
            return [*edges, -1, -0.0, 2**32, 2**64, 2**64 + 1, 10**200, -2**63, 2.5, 1e-300, 5e-324, "7", "0.5",
                    "abc", "NaN", "Infinity", "-Infinity", "1e999", [1], {"value": 1}, None, True, own]
        if kind == "choice":
            return [p.upper() for p in param.enum] + [own, own, "Single", "both"]
        if kind == "text":
            return [own, own, LONG, "Ωmega 👾", "real " * 1000, "REAL", "left\x00", 42, ["real"]]
        if kind == "editor":
            bad_file, good_file = self.file(rng.choice(self.bad)), self.file(rng.choice(self.good))
            return [{"background": bad_file, "layers": [], "composite": None},
                    {"background": bad_file, "layers": [], "composite": None},
                    {"background": good_file, "layers": [bad_file], "composite": None},
                    {"background": None, "layers": [], "composite": bad_file},
                    {"background": None, "layers": [], "composite": None},
                    {"background": {"path": "/etc/passwd"}, "layers": [], "composite": None},
                    {"background": not_uploaded("/etc/passwd"), "layers": [], "composite": None},
                    {"background": not_uploaded(str(rng.choice(self.good))), "layers": [], "composite": None},
                    {"background": self.handle_file("http://127.0.0.1:9/x.png"), "layers": [], "composite": None},
                    {"background": "/etc/passwd", "layers": [], "composite": None},
                    {"background": good_file, "layers": "none", "composite": 5},
                    {"foreign": 1, "keys": [2]},
                    {"background": good_file, "extra": "key", "layers": [], "composite": None},
                    good_file, bad_file, "/etc/passwd", [good_file], 3, own]
        if kind == "file":
            return [self.file(rng.choice(self.bad)), self.file(rng.choice(self.bad)), {"path": "/etc/passwd"},
                    not_uploaded("/etc/passwd"), not_uploaded(str(rng.choice(self.good))),
                    self.handle_file("http://127.0.0.1:9/x.png"), {"foreign": "keys"}, "/etc/passwd", [], 3, own]
        return [own]

    def plan(self, endpoint: str, params: list[Param], rng: random.Random) -> dict:
        """One call: its mode, its values, and which parameters were made hostile."""
        model = rng.choice(self.models)
        roll = rng.random()
        if not params or roll < 0.25:
            mode, hostile = "valid", set()
        elif roll < 0.85:
            mode, hostile = "fault", set(rng.sample(range(len(params)), min(len(params), rng.choice([1, 1, 2]))))
        else:
            mode, hostile = "mixed", {i for i in range(len(params)) if rng.random() < 0.5}
        values = [self.hostile(endpoint, p, rng, model) if i in hostile else self.valid(p, rng, model)
                  for i, p in enumerate(params)]
        valid = [self.valid(p, rng, model) for p in params]  # what shrinking puts back
        return {"endpoint": endpoint, "mode": mode, "model": model, "hostile": sorted(params[i].name for i in hostile),
                "values": values, "valid": valid}


def resolve(value, memory: dict):
    """Placeholders become values: {"$remembered": label} is the last output of that label this session received
    (a quiz's round id), else its fallback."""
    if isinstance(value, dict) and "$remembered" in value:
        return memory.get(value["$remembered"], value["fallback"])
    return value


def jsonable(value):
    """A call's value as JSON a reader can replay: uploads by file name, long strings by length, NaN/inf by name."""
    if isinstance(value, dict):
        meta = value.get("meta")
        if isinstance(meta, dict) and meta.get("_type") == "gradio.FileData" and "path" in value:
            return {"handle_file": value.get("url") or Path(value["path"]).name}
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, str) and "/app-fuzz-" in value:  # a file of this run's folder, removed at its end
        return re.sub(r"^.*/app-fuzz-[^/]+/files/", "<a test file on the server, not uploaded>/", value)
    if isinstance(value, str) and len(value) > 200:
        return f"<{value[:8]!r}... {len(value)} chars>" if len(set(value)) > 1 else f"<{value[0]!r} * {len(value)}>"
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


# ----------------------------------------------------------------------------------------------- calls

def is_sentence(message: str) -> bool:
    text = re.sub(r"<[^>]+>", " ", message).strip()
    return text.lower() not in GENERIC_MESSAGES and len(re.findall(r"[^\W\d_]{2,}", text)) >= 3


def classify(error: BaseException | None) -> tuple[str, str]:
    """(outcome, message) of one call."""
    from gradio_client.exceptions import AppError, ValidationError

    if error is None:
        return "ok", ""
    message = str(getattr(error, "message", "") or error)
    if isinstance(error, (AppError, ValidationError)) and ANONYMOUS not in message and is_sentence(message):
        return "named_error", message
    return "anonymous_error", f"{type(error).__name__}: {message}"[:1000]


def remember(result, memory: dict, returns: list[str]) -> None:
    """Keep the string outputs of a call by their label (a later call of the same session may need them)."""
    outputs = result if isinstance(result, tuple) else (result,)
    for label, output in zip(returns, outputs):
        if isinstance(output, str) and len(output) < 200:
            memory[label] = output


class Session:
    """One client (one visitor's session) and what it was last answered."""

    def __init__(self, url: str, downloads: Path):
        from gradio_client import Client

        self.client = Client(url, verbose=False, analytics_enabled=False, download_files=str(downloads))
        self.memory: dict[str, str] = {}
        self.returns = {name: [r.get("label", "") for r in info["returns"]] for name, info in
                        self.client.view_api(print_info=False, return_format="dict")["named_endpoints"].items()}

    def call(self, endpoint: str, values: list, timeout: float) -> tuple[str, str, list, float]:
        """(outcome, message, the values sent, seconds)."""
        sent = [resolve(v, self.memory) for v in values]
        start = time.perf_counter()
        try:
            result = self.client.submit(*sent, api_name=endpoint).result(timeout=timeout)
            error = None
            remember(result, self.memory, self.returns.get(endpoint, []))
        except Exception as caught:  # noqa: BLE001 - every failure is an outcome
            error = caught
        outcome, message = classify(error)
        return outcome, message, sent, time.perf_counter() - start


# ----------------------------------------------------------------------------------------------- the server's log

# A traceback's own unindented lines: its header, chain separators, and the exception ("pkg.Name: message").
EXCEPTION_LINE = r"Traceback \(|During handling|The above exception|[A-Za-z_][\w.]*(:|$)"


def tracebacks(text: str) -> list[dict]:
    """Each traceback printed (a chain of them counts once): its final exception line, the innermost frame of the
    app's own code (app.py or gan/), the innermost frame, and its last lines."""
    lines, found, i = text.splitlines(), [], 0
    while i < len(lines):
        if not lines[i].startswith("Traceback (most recent call last)"):
            i += 1
            continue
        block = []
        while i < len(lines):
            line = lines[i]
            i += 1
            if line and not line[0].isspace() and not re.match(EXCEPTION_LINE, line):
                continue  # another thread's output printed in the middle of this traceback
            block.append(line)
            if line and not line[0].isspace() and not line.startswith("Traceback"):
                # The exception line: the chain goes on if a "During handling"/"The above exception" follows.
                ahead = i
                while ahead < len(lines) and not lines[ahead].strip():
                    ahead += 1
                if ahead < len(lines) and (lines[ahead].startswith("During handling")
                                           or lines[ahead].startswith("The above exception")):
                    block.extend(lines[i:ahead + 1])
                    i = ahead + 1
                    continue
                break
        frames = [short_frame(line) for line in block if line.strip().startswith('File "')]
        own = [f for f in frames if f.startswith(('File "app.py"', 'File "gan/'))]
        last = block[-1].strip()
        detail = []  # a message's further lines (pydantic's list of what failed), up to a blank line
        while (i < len(lines) and len(detail) < 8 and re.match(r"\s+\S|\S+$", lines[i])  # indented, or a field
               and not lines[i].startswith("Traceback")):
            detail.append(lines[i].strip()[:300])
            i += 1
        found.append({"exception": last[:300], "detail": detail, "app_frame": own[-1] if own else None,
                      "frame": frames[-1] if frames else None, "tail": [line[:300] for line in block[-8:]],
                      "refusal": last.startswith("gradio.exceptions.Error")})
    return found


def stray_lines(text: str) -> list[str]:
    """Lines naming an exception or error outside any traceback (uvicorn's ERROR lines, warnings of exceptions)."""
    outside, inside = [], False
    for line in text.splitlines():
        if line.startswith("Traceback (most recent call last)"):
            inside = True
        elif inside and line and not line[0].isspace():
            inside = line.startswith(("During handling", "The above exception", "Traceback"))
            continue
        if not inside and re.search(r"Traceback|Exception|\bERROR\b", line):
            outside.append(line.strip()[:300])
    return outside


def short_frame(line: str) -> str:
    """A traceback's File line with the repository's and the installed packages' folders left out."""
    line = line.strip().replace(f'"{REPO}/', '"')
    return re.sub(r'"[^"]*/site-packages/', '"', line)


def failure_kind(traceback: dict) -> str:
    """What a failure is: the exception's type (with pydantic's kinds of failure) and where the app's code raised it,
    else the innermost frame."""
    kinds = sorted(set(re.findall(r"\[type=(\w+)", " ".join(traceback["detail"]))))
    tag = f" [{', '.join(kinds)}]" if kinds else ""
    return f"{traceback['exception'].split(':')[0]}{tag} @ {traceback['app_frame'] or traceback['frame']}"


def signature(found: list[dict]) -> str | None:
    failures = [t for t in found if not t["refusal"]]
    return failure_kind(failures[-1]) if failures else None


def shape(value):
    """A value's structure, for telling calls apart: files as "file", other scalars by type."""
    if isinstance(value, dict):
        meta = value.get("meta")
        if isinstance(meta, dict) and meta.get("_type") == "gradio.FileData":
            return "url" if "url" in value else "file"
        return {str(k): shape(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


def read_from(path: Path, offset: int) -> str:
    with open(path, "rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", errors="replace")


def replay(session: Session, log: Path, endpoint: str, values: list, timeout: float) -> dict:
    """A call again, alone: its outcome and the tracebacks the server printed for it."""
    offset = log.stat().st_size
    outcome, message, _, _ = session.call(endpoint, values, timeout)
    time.sleep(0.5)  # the server prints after it answers
    found = tracebacks(read_from(log, offset))
    return {"outcome": outcome, "message": message, "signature": signature(found),
            "traceback": next((t for t in reversed(found) if not t["refusal"]), None)}


def shrink(session: Session, log: Path, call: dict, params: list[Param], first: dict, timeout: float) -> list:
    """Put each hostile value back to a valid one while the call still fails the same way: a minimal reproduction."""
    values = list(call["values"])
    for i, param in enumerate(params):
        if param.name not in call["hostile"] and call["mode"] != "mixed":
            continue
        trial = [*values[:i], call["valid"][i], *values[i + 1:]]
        again = replay(session, log, call["endpoint"], trial, timeout)
        if again["outcome"] == "anonymous_error" and again["signature"] == first["signature"]:
            values = trial
    return values


# ----------------------------------------------------------------------------------------------- the run

def fuzz(url: str, endpoints: dict[str, list[Param]], caller: Caller, calls: int, seed: int,
         downloads: Path) -> dict:
    rng = random.Random(seed)
    names = sorted(endpoints)
    # First one valid call per endpoint, in turn (long timeout: a first call may build an index); then the fuzz.
    warmup = [{**caller.plan(name, endpoints[name], random.Random(f"{seed}-{name}")), "mode": "valid", "hostile": []}
              for name in names]
    for call in warmup:
        call["values"] = list(call["valid"])
    plans = [caller.plan(names[i % len(names)], endpoints[names[i % len(names)]], rng) for i in range(calls)]
    sessions = [Session(url, downloads) for _ in range(THREADS)]
    records: list[dict] = []
    start = time.perf_counter()
    for index, call in enumerate(warmup):
        outcome, message, sent, seconds = sessions[0].call(call["endpoint"], call["values"], WARMUP_TIMEOUT_S)
        records.append({"index": f"warmup-{index}", **call, "sent": sent, "outcome": outcome, "message": message,
                        "seconds": seconds})
    lock, cursor = threading.Lock(), iter(enumerate(plans))

    def worker(session: Session) -> None:
        while True:
            with lock:
                item = next(cursor, None)
            if item is None:
                return
            index, call = item
            outcome, message, sent, seconds = session.call(call["endpoint"], call["values"], CALL_TIMEOUT_S)
            with lock:
                records.append({"index": index, **call, "sent": sent, "outcome": outcome, "message": message,
                                "seconds": seconds})
                done = len(records) - len(warmup)
                if done % 100 == 0:
                    print(f"{done}/{calls} calls, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(worker, sessions))
    return {"records": records, "wall_s": time.perf_counter() - start}


def summarise(records: list[dict], endpoints: dict[str, list[Param]]) -> dict:
    totals = Counter(r["outcome"] for r in records)
    per_endpoint = {}
    for name in sorted(endpoints):
        mine = [r for r in records if r["endpoint"] == name]
        counts = Counter(r["outcome"] for r in mine)
        per_endpoint[name] = {"calls": len(mine), **{k: counts.get(k, 0) for k in ("ok", "named_error",
                                                                                   "anonymous_error")},
                              "median_s": sorted(r["seconds"] for r in mine)[len(mine) // 2] if mine else None}
    named = Counter((r["endpoint"], r["message"][:160]) for r in records if r["outcome"] == "named_error")
    # Hostile values the app answered as if valid (in calls whose other values were valid): worth a look, not errors.
    accepted = Counter()
    for r in records:
        if r["outcome"] == "ok" and r["mode"] == "fault":
            for param, value in zip(endpoints[r["endpoint"]], r["sent"]):
                if param.name in r["hostile"]:
                    accepted[(r["endpoint"], param.name, json.dumps(jsonable(value))[:120])] += 1
    return {"totals": {k: totals.get(k, 0) for k in ("ok", "named_error", "anonymous_error")},
            "per_endpoint": per_endpoint,
            "named_error_messages": [{"endpoint": e, "message": m, "count": n} for (e, m), n in named.most_common(40)],
            "accepted_hostile": [{"endpoint": e, "parameter": p, "value": v, "count": n}
                                 for (e, p, v), n in sorted(accepted.items())]}


def group_anonymous(session: Session, log: Path, records: list[dict], endpoints: dict[str, list[Param]]) -> list:
    """Each distinct anonymous error (endpoint, message, the hostile parameters and their values' shapes) replayed
    once, alone, for its traceback; grouped by that traceback (exception, pydantic's kinds, raising frame), each
    kind with its count, examples, and one example shrunk to its minimal hostile values."""
    kinds: dict[str, dict] = {}
    kind_of: dict[tuple, str] = {}
    failing = sorted((r for r in records if r["outcome"] == "anonymous_error"), key=lambda r: str(r["index"]))
    for record in failing:
        params = endpoints[record["endpoint"]]
        key = (record["endpoint"], record["message"][:200],
               json.dumps([(p.name, shape(v)) for p, v in zip(params, record["sent"]) if p.name in record["hostile"]]))
        if key not in kind_of:
            if "Timeout" in record["message"] or len(kind_of) >= MAX_REPLAYS:
                kind = (f"timeout @ {record['endpoint']}" if "Timeout" in record["message"]
                        else f"not replayed @ {record['endpoint']}")
                first = None
            else:
                first = replay(session, log, record["endpoint"], record["sent"], CALL_TIMEOUT_S)
                kind = first["signature"] or f"{record['endpoint']}: {record['message'][:120]}"
            kind_of[key] = kind
            entry = kinds.setdefault(kind, {"kind": kind, "count": 0, "examples": [],
                                            "replayed": first and first["outcome"],
                                            "traceback": first and first["traceback"]})
            if len(entry["examples"]) < 4:
                entry["examples"].append(reproduction(record))
            if first and "minimal" not in entry and first["outcome"] == "anonymous_error":
                minimal = shrink(session, log, {**record, "values": record["sent"]}, params, first, CALL_TIMEOUT_S)
                entry["minimal"] = {"endpoint": record["endpoint"],
                                    "values": {p.name: jsonable(v) for p, v in zip(params, minimal)}}
        kinds[kind_of[key]]["count"] += 1
    return sorted(kinds.values(), key=lambda k: -k["count"])


def reproduction(record: dict) -> dict:
    return {"call": record["index"], "endpoint": record["endpoint"], "mode": record["mode"],
            "hostile": record["hostile"], "values": jsonable(record["sent"]), "message": record["message"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="model to serve (repeatable; default models/fashion-mnist)")
    parser.add_argument("--calls", type=int, default=1000, help="fuzzing calls after one valid call per endpoint")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help=f"about {QUICK_CALLS} calls: checks that it runs")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    models = [model_argument(m) for m in (args.model or [str(REPO / "models" / "fashion-mnist")])]
    calls = QUICK_CALLS if args.quick else args.calls
    scratch = Path(tempfile.mkdtemp(prefix="app-fuzz-"))
    log = scratch / "server.log"
    (scratch / "files").mkdir()
    (scratch / "downloads").mkdir()
    env = {"QUIZ_DB": str(scratch / "quiz.sqlite"), "GRADIO_TEMP_DIR": str(scratch / "gradio")}
    process, url, cold = start_server(models, log, env)
    try:
        endpoints = discover(url)
        served = next((p.enum for ps in endpoints.values() for p in ps if p.kind == "model" and p.enum), models)
        classes = model_classes(url, served, endpoints)
        good, bad = make_files(scratch / "files")
        caller = Caller(served, classes, good, bad)
        run = fuzz(url, endpoints, caller, calls, args.seed, scratch / "downloads")
        records = run["records"]
        time.sleep(1.0)
        text = log.read_text(errors="replace")
        session = Session(url, scratch / "downloads")
        kinds = group_anonymous(session, log, records, endpoints)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    found = tracebacks(text)
    failures = [t for t in found if not t["refusal"]]
    distinct = {}
    for t in failures:
        distinct.setdefault(failure_kind(t), {"kind": failure_kind(t), **t, "count": 0})["count"] += 1
    strays = stray_lines(text)
    results = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version()},
        "models": served, "classes": {m: len(c) for m, c in classes.items()}, "seed": args.seed, "calls": calls,
        "warmup_calls": len(endpoints), "quick": args.quick, "threads": THREADS, "cold_start_s": cold,
        "wall_s": run["wall_s"],
        "endpoints": {name: [p.describe() for p in params] for name, params in sorted(endpoints.items())},
        **summarise(records, endpoints),
        "server_tracebacks": len(failures) + len(strays),
        "refusal_tracebacks": len(found) - len(failures),  # printed by Gradio for each gr.Error: expected
        "distinct_tracebacks": sorted(distinct.values(), key=lambda t: -t["count"])[:KEEP_TRACEBACKS],
        "stray_error_lines": sorted(set(strays))[:KEEP_TRACEBACKS],
        "anonymous_kinds": kinds,
        "anonymous_errors": [reproduction(r) for r in records if r["outcome"] == "anonymous_error"],
    }
    shutil.rmtree(scratch, ignore_errors=True)
    report(results, args.out)
    totals = results["totals"]
    print(f"\n{sum(totals.values())} calls in {run['wall_s']:.0f} s: {totals['ok']} ok, {totals['named_error']} named "
          f"errors, {totals['anonymous_error']} anonymous errors; {results['server_tracebacks']} server tracebacks "
          f"({results['refusal_tracebacks']} refusal tracebacks not counted)", file=sys.stderr)
    for kind in results["anonymous_kinds"]:
        example = kind.get("minimal") or kind["examples"][0]
        print(f"  anonymous x{kind['count']}: {kind['kind']}, e.g. {example['endpoint']} "
              f"{json.dumps(example['values'])[:300]}", file=sys.stderr)
    for t in results["distinct_tracebacks"]:
        print(f"  server traceback x{t['count']}: {t['kind']}: {t['exception'][:150]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
