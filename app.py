"""The Gradio app: class-conditional generation, latent interpolation and model information.

    python app.py [--model PATH_OR_REPO ...] [--host 0.0.0.0] [--port 7860]

Models come from --model (repeatable), else GAN_MODELS (comma-separated) or GAN_MODEL, else the two models shipped in
models/ (Fashion-MNIST first, then MNIST digits), offered in a picker. This file only lays out the page and wires
events; gan/demo.py does the work.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
import threading
import time
from pathlib import Path

from gan.extras import require_extra

require_extra("app", "app.py")  # before gradio is imported: one line naming what to install, not a traceback

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402

from gan.demo import (ALL_CLASSES, MAX_FRAMES, MAX_IMAGES, ModelRegistry, class_index_list, describe,  # noqa: E402
                      generate_images, images_html, interpolation_frames, machine_judge, model_files, random_seed,
                      samples_caption, write_gif, write_grid, write_pngs)
from gan.errors import GanError  # noqa: E402
from gan.inference import set_threads_for_host  # noqa: E402
from gan.sampling import MAX_SEED  # noqa: E402
from gan.quiz import JudgmentStore, Quiz, stats, stats_chart, stats_table  # noqa: E402
from gan.space import space_models  # noqa: E402

SHIPPED_MODELS = Path(__file__).resolve().parent / "models"
SHIPPED_NAMES = ("fashion-mnist", "mnist")  # the first is the default


def shipped_model_source(name: str) -> str:
    """A shipped model's name as API callers see it in the README when started from the repository root (as a Space
    is): models/NAME; else its absolute path."""
    folder = SHIPPED_MODELS / name
    return f"models/{name}" if (Path.cwd() / "models" / name).resolve() == folder else str(folder)


DEFAULT_MODEL = shipped_model_source(SHIPPED_NAMES[0])
# Model events in flight at once. Their forward passes do not compete: gan/batching.py runs one pass at a time on all
# cores and merges whatever waits into the next one, so more events in flight means bigger, cheaper passes; the
# rest of an event (PNG encoding, files) overlaps with the passes.
MODEL_QUEUE = 16
# Quiz images stay square at every width: a pair shrinks both images alike (never one more than the other, never out
# of square: a stretched garment is a cue that has nothing to do with the model). Galleries drop to 4 columns on
# phones, where 8 would make 40 px thumbnails.
CSS = """
.pixel-grid .image-container, .pixel-grid .image-container > button, .pixel-grid .image-frame {
  width: 100%; height: auto !important; }
.pixel-grid img { image-rendering: pixelated; width: 100% !important; height: auto !important; max-height: 75vh;
                  object-fit: contain !important; }
.quiz-images { display: flex; gap: 16px; justify-content: center; }
.quiz-cell { margin: 0; text-align: center; flex: 0 1 224px; min-width: 0; }
.quiz-image { display: block; width: 100%; max-width: 224px; height: auto; aspect-ratio: 1 / 1; object-fit: contain;
              image-rendering: pixelated; border-radius: 6px; }
@media (max-width: 640px) {
  .gallery-grid .grid-container { grid-template-columns: repeat(4, minmax(0, 1fr)) !important;
                                  grid-auto-rows: auto !important; }
  .gallery-grid .thumbnail-item { height: auto !important; aspect-ratio: 1 / 1; }
}
"""
QUIZ_MODES = [("One image: real or fake?", "single"), ("Two images: which one is real?", "pair")]


def model_sources(cli_models: list[str] | None = None) -> list[str]:
    """Which models to serve: --model, then GAN_MODELS, then GAN_MODEL, then the `models:` list of the README.md
    beside this file (a Space made by `python -m gan.space deploy`), then the shipped ones."""
    if cli_models:
        return cli_models
    listed = [m.strip() for m in os.environ.get("GAN_MODELS", "").split(",") if m.strip()]
    if listed:
        return listed
    if os.environ.get("GAN_MODEL"):
        return [os.environ["GAN_MODEL"]]
    if readme_models := space_models(Path(__file__).resolve().parent / "README.md"):
        return readme_models
    shipped = [shipped_model_source(n) for n in SHIPPED_NAMES[1:] if (SHIPPED_MODELS / n / "config.json").is_file()]
    return [DEFAULT_MODEL, *shipped]


def checked_number(component, *, whole: bool = False):
    """A number input (gr.Number or gr.Slider) that refuses, naming itself, what Gradio would pass on or round:
    a missing value, a string, a list, or (whole=True) a fraction, where gr.Number(precision=0) would round 2.5 to 2
    and draw another seed than the one asked for, and a slider would fail with an anonymous server error. (Wrapped
    rather than subclassed: Gradio writes a .pyi stub beside the file of every component subclass it meets.)"""
    gradio_preprocess = component.preprocess

    def preprocess(payload):
        if (isinstance(payload, bool) or not isinstance(payload, (int, float))
                or (whole and not float(payload).is_integer())):
            raise gr.Error(f"{component.label} must be {'a whole number' if whole else 'a number'}, got {payload!r}")
        return gradio_preprocess(payload)

    component.preprocess = preprocess
    return component


def user_errors(function):
    """Show GanError (bad input, a model that cannot load) as a Gradio error message; the server keeps serving."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except GanError as error:
            raise gr.Error(str(error)) from None

    return wrapper


class QuizRegistry:
    """One quiz per model, sharing one judgment store; a model without a real-image pool has no quiz."""

    def __init__(self, registry: ModelRegistry, store: JudgmentStore):
        self.registry, self.store = registry, store
        self._quizzes: dict[str, Quiz] = {}
        self._lock = threading.Lock()

    def get(self, name: str | None) -> Quiz:
        name = name or self.registry.default
        with self._lock:
            if name not in self._quizzes:
                self._quizzes[name] = Quiz(self.registry.get(name), self.store, model_id=name)
            return self._quizzes[name]


def build_demo(registry: ModelRegistry, store: JudgmentStore | None = None) -> gr.Blocks:
    """Lay out the page and wire every event (each with an api_name) to gan/demo.py and gan/quiz."""
    first = registry.get(registry.default)  # loaded once, before the first visitor arrives
    names = first.class_names
    class_choices = [ALL_CLASSES, *names]
    store = store or JudgmentStore()
    store.start_hub_sync()  # only with QUIZ_DATASET_REPO and HF_TOKEN set; never at import time
    quizzes = QuizRegistry(registry, store)
    class_api = (f"Class inputs take a class name or index of the chosen model (/model_info lists its classes); "
                 f"the default model's: {class_index_list(first)}.")

    @user_errors
    def on_generate(model_name, class_choice, seed, count, truncation):
        model = registry.get(model_name)
        grid = generate_images(model, class_choice, seed, count, truncation)
        return str(write_grid(grid)), grid.layout(model.class_names)

    @user_errors
    def on_interpolate(model_name, start_class, start_seed, end_class, end_seed, steps, mode, truncation):
        frames = interpolation_frames(registry.get(model_name), start_class, start_seed, end_class, end_seed,
                                      steps, mode, truncation)
        return write_pngs(frames), str(write_gif(frames))

    @user_errors
    def on_model(model_name, class_value=None, start_value=None, end_value=None):
        """Show a model and offer exactly its classes, keeping the chosen ones where the new model has them (an
        example that sets the model and a class at once keeps its class)."""
        model = registry.get(model_name)
        samples, timelapse = model_files(model)
        names = model.class_names

        def keep(value, default):
            return value if value in names or value == ALL_CLASSES and default == ALL_CLASSES else default

        def classes(choices, value):
            return gr.update(choices=choices, value=value)

        return (describe(model), gr.update(value=samples, label=samples_caption(model)), timelapse,
                classes([ALL_CLASSES, *names], keep(class_value, ALL_CLASSES)),
                classes(names, keep(start_value, names[0])), classes(names, keep(end_value, names[-1])),
                model.default_truncation)

    @user_errors
    def on_round(model_name, mode, session):
        quiz = quizzes.get(model_name)
        session = quiz.ensure_session(session)
        view = quiz.next_round(session, mode)
        single = view.mode == "single"
        labels = () if single else ("left", "right")
        return (session, view.round_id, images_html(view.images, labels=labels), f"**Round {view.number}.** {view.prompt}",
                gr.update(visible=single), gr.update(visible=single), gr.update(visible=not single),
                gr.update(visible=not single), "")

    @user_errors
    def on_answer(model_name, round_id, guess, session):
        quiz = quizzes.get(model_name)
        session = quiz.ensure_session(session)
        return session, quiz.answer(session, round_id, guess).message

    def answer_with(guess):
        return lambda model_name, round_id, session: on_answer(model_name, round_id, guess, session)

    @user_errors
    def on_stats(model_name):
        results = stats(store)
        chart = pd.DataFrame(stats_chart(results), columns=["model", "metric", "value", "low", "high"])
        note = "" if store.saving else f"\n\n**Results are not being saved right now**: {store.problem}"
        summary = (f"{machine_judge(registry.get(model_name))}\n\n"
                   f"{sum(r['judgments'] for r in results)} judgments from {sum(r['sessions'] for r in results)} "
                   f"sessions. {results[0]['interval'] if results else ''}{note}")
        return summary, stats_table(results), chart.dropna(subset=["value"])

    def class_dropdown(choices, value, label):
        # allow_custom_value: Gradio would check API values against the choices of the page's first model; the
        # handlers check them against the chosen model instead (names or indices).
        return gr.Dropdown(choices, value=value, label=label, allow_custom_value=True)

    def seed_input(value, label):
        return checked_number(gr.Number(value=value, minimum=0, maximum=MAX_SEED, step=1, precision=0, label=label),
                              whole=True)

    # Gradio's own file cache is emptied of files older than 15 minutes (time enough to download a grid), every two:
    # at ~8 files a call, a one-hour age kept up to 350,000 files and their paths in memory at full load.
    with gr.Blocks(title="Class-conditional GAN", delete_cache=(120, 900)) as demo:
        gr.Markdown("# Class-conditional GAN\nPick a class and a seed: the same choice always draws the same image.")
        model_name = gr.Dropdown(registry.sources, value=registry.default, label="Model",
                                 visible=len(registry.sources) > 1)
        with gr.Tab("Generate"):
            with gr.Row():
                class_choice = class_dropdown(class_choices, ALL_CLASSES, "Class")
                seed = seed_input(0, "Seed (first of consecutive seeds)")
                dice = gr.Button("Random seed", scale=0)
            with gr.Row():
                count = checked_number(gr.Slider(1, MAX_IMAGES, value=8, step=1,
                                                 label="Images (per class for all classes)"), whole=True)
                truncation = checked_number(gr.Slider(0.05, 1.0, value=first.default_truncation, step=0.05,
                                                      label="Truncation ψ (lower: more typical, less varied)"))
            run = gr.Button("Generate", variant="primary")
            # One PNG at the images' own resolution, enlarged by the page without smoothing (CSS): one small file
            # per response. Its download button gives the exact pixels; the layout says which tile is which.
            grid_image = gr.Image(label="Images (one row per class, or 8 to a row)", type="filepath", format="png",
                                  interactive=False, buttons=["download", "fullscreen"], elem_classes="pixel-grid")
            with gr.Accordion("Which image is which (tile layout)", open=False):
                layout = gr.JSON(label="Tile layout")
            generate_inputs = [model_name, class_choice, seed, count, truncation]
            examples = [[registry.default, ALL_CLASSES, 0, 8, 1.0], [registry.default, names[-1], 42, 16, 0.7],
                        [registry.default, names[0], 7, 8, 0.5]]
            gr.Examples(examples, generate_inputs, [grid_image, layout], fn=on_generate, cache_examples=False,
                        run_on_click=True, api_visibility="private", label="Examples (the default model)",
                        example_labels=[f"{c}: {n} from seed {s}, ψ {t}" for _, c, s, n, t in examples])
        with gr.Tab("Interpolate"):
            with gr.Row():
                start_class = class_dropdown(names, names[0], "From class")
                start_seed = seed_input(0, "From seed")
                end_class = class_dropdown(names, names[-1], "To class")
                end_seed = seed_input(1, "To seed")
            with gr.Row():
                steps = checked_number(gr.Slider(2, MAX_FRAMES, value=16, step=1, label="Steps"), whole=True)
                mode = gr.Radio(["slerp", "lerp"], value="slerp", label="Path through the noise")
                walk_truncation = checked_number(gr.Slider(0.05, 1.0, value=first.default_truncation, step=0.05,
                                                           label="Truncation ψ"))
            walk = gr.Button("Interpolate", variant="primary")
            animation = gr.Image(label="Animation", type="filepath", format="gif", height=320)
            frames = gr.Gallery(label="Frames", columns=8, format="png", object_fit="contain", height="auto",
                                elem_classes="gallery-grid")
            walk_inputs = [model_name, start_class, start_seed, end_class, end_seed, steps, mode, walk_truncation]
            examples = [[registry.default, names[0], 0, names[-1], 1, 16, "slerp", 1.0],
                        [registry.default, names[1], 3, names[1], 4, 24, "lerp", 0.8]]
            gr.Examples(examples, walk_inputs, [frames, animation], fn=on_interpolate, cache_examples=False,
                        run_on_click=True, api_visibility="private", label="Examples (the default model)",
                        example_labels=[f"{a} seed {s} → {b} seed {e}, {n} steps, {m}"
                                        for _, a, s, b, e, n, m, _ in examples])
        with gr.Tab("Quiz"):
            gr.Markdown("Can you tell the model's images from real ones? Real images come from a held-out test set "
                        "the model never saw. After each guess you see the truth and the discriminator's verdict.")
            session = gr.State(None)  # the visitor's score and the round's answer: on the server only
            with gr.Row():
                quiz_mode = gr.Radio(QUIZ_MODES, value="single", label="Mode")
                new_round = gr.Button("New round", variant="primary")
            # Which round a guess answers (not secret: the answer is not in it).
            round_id = gr.Textbox(visible=False, label="Round id")
            prompt = gr.Markdown(label="Prompt")
            shown = gr.HTML(label="Images")
            with gr.Row():
                real_button = gr.Button("Real", visible=False)
                fake_button = gr.Button("Fake", visible=False)
                left_button = gr.Button("Left is real", visible=False)
                right_button = gr.Button("Right is real", visible=False)
            feedback = gr.Markdown(label="Result")
            guess = gr.Textbox(visible=False, label="Guess")
            api_answer = gr.Button(visible=False)  # the API's way to answer: /quiz_answer(model, round_id, guess)
        with gr.Tab("Stats") as stats_tab:
            stats_summary = gr.Markdown(label="Summary")
            refresh = gr.Button("Refresh")
            stats_frame = gr.Dataframe(label="Human error rate (HYPE∞ style), fooling and miss rates, 95% intervals")
            stats_plot = gr.BarPlot(x="metric", y="value", color="model", y_lim=[0, 1], label="Rates")
        with gr.Tab("Model"):
            info = gr.Markdown(describe(first), label="Model description")
            samples_path, timelapse_path = model_files(first)
            with gr.Row():
                samples = gr.Image(samples_path, label=samples_caption(first), type="filepath")
                timelapse = gr.Image(timelapse_path, label="Training timelapse", type="filepath", format="gif")

        run.click(on_generate, generate_inputs, [grid_image, layout], api_name="generate",
                  api_description=f"Images of one class (seeds seed..seed+count-1, 8 to a row) or one row per class "
                                  f"(seeds seed.., count per class), tiled into one PNG at their own resolution, and "
                                  f"the tile layout (rows, columns, tile_size, padding; class and seed of each tile, "
                                  f"row by row). {class_api}", concurrency_limit=MODEL_QUEUE, concurrency_id="model")
        dice.click(random_seed, None, seed, api_name="random_seed", queue=False)
        walk.click(on_interpolate, walk_inputs, [frames, animation], api_name="interpolate",
                   api_description=f"Frames from (class, seed) to (class, seed) and their GIF. {class_api}",
                   concurrency_limit=MODEL_QUEUE, concurrency_id="model")
        round_outputs = [session, round_id, shown, prompt, real_button, fake_button, left_button, right_button,
                         feedback]
        new_round.click(on_round, [model_name, quiz_mode, session], round_outputs, api_name="quiz_round",
                        concurrency_limit=MODEL_QUEUE, concurrency_id="model")
        for button, value in ((real_button, "real"), (fake_button, "fake"), (left_button, "left"),
                              (right_button, "right")):
            button.click(answer_with(value), [model_name, round_id, session], [session, feedback],
                         api_visibility="private")
        api_answer.click(on_answer, [model_name, round_id, guess, session], [session, feedback],
                         api_name="quiz_answer")
        refresh.click(on_stats, model_name, [stats_summary, stats_frame, stats_plot], api_name="quiz_stats")
        stats_tab.select(on_stats, model_name, [stats_summary, stats_frame, stats_plot], api_visibility="private")
        model_name.change(on_model, [model_name, class_choice, start_class, end_class],
                          [info, samples, timelapse, class_choice, start_class, end_class, truncation],
                          api_name="model_info",
                          api_description="A model's description and sample grids, and the class choices it takes.")
    demo.queue(max_size=128, default_concurrency_limit=MODEL_QUEUE)
    return demo


def __getattr__(name: str):
    """`app.demo`, built on first use (PEP 562): what `gradio app.py` (reload mode) and Spaces look for, without
    loading models or starting the quiz sync when tests or tools merely import this module."""
    if name == "demo":
        globals()["demo"] = build_demo(ModelRegistry(model_sources()))
        return globals()["demo"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


SESSION_CAPACITY = 1000  # sessions whose state Gradio keeps (~130 KB each: a copy of the page's config); its default
#                         of 10,000 lets them grow to ~1.3 GB. The least recently active visitor beyond it starts over.
CACHE_SWEEP_S = 120  # how often empty folders are removed from Gradio's cache


def serve(demo: gr.Blocks, **launch_options) -> None:
    """Launch with the page's CSS (Gradio 6 takes CSS at launch, not in Blocks), a bounded number of sessions, and a
    sweeper for the empty folders Gradio's cache cleanup leaves."""
    launch_options.setdefault("state_session_capacity", SESSION_CAPACITY)
    threading.Thread(target=sweep_empty_folders_forever, args=(Path(demo.GRADIO_CACHE),), daemon=True,
                     name="cache-sweeper").start()
    demo.launch(css=CSS, **launch_options)


def remove_empty_folders(root: Path, *, older_than_s: float = 60.0) -> int:
    """Remove empty subfolders of root not touched for older_than_s: Gradio makes one folder per file content and
    its cache cleanup deletes only the files (~8 folders a call were left forever). Returns how many went."""
    cutoff, removed = time.time() - older_than_s, 0
    for folder in root.glob("*/") if root.is_dir() else []:
        try:
            if folder.stat().st_mtime < cutoff:
                folder.rmdir()  # fails, harmlessly, if the folder is not empty (or was just reused)
                removed += 1
        except OSError:
            pass
    return removed


def sweep_empty_folders_forever(root: Path) -> None:
    while True:
        time.sleep(CACHE_SWEEP_S)
        remove_empty_folders(root)


def limit_malloc_arenas() -> None:
    """glibc gives each of Gradio's worker threads its own malloc arena and keeps freed image buffers in them: RSS
    grew ~150 MB more over 3,000 calls with the default arenas than with 2 (bench/app_memory.py). Must run before
    the worker threads start; a no-op off glibc."""
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, 2)  # M_ARENA_MAX
        libc.mallopt(-3, 65536)  # M_MMAP_THRESHOLD: large buffers go back to the system when freed
    except (OSError, AttributeError):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="model folder or Hub repo id (repeat to offer several)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), help="address to serve on")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), help="port")
    args = parser.parse_args()
    # A Space (and `docker stop`) ends the app with SIGTERM, which would skip atexit handlers: exit normally instead,
    # so the scratch folder is removed and the quiz store closes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    limit_malloc_arenas()
    set_threads_for_host()
    try:
        demo = globals()["demo"] = build_demo(ModelRegistry(model_sources(args.model)))
    except GanError as error:
        raise SystemExit(f"error: {error}") from None
    serve(demo, server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
