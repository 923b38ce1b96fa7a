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
import threading
from pathlib import Path

from gan.extras import require_extra

require_extra("app", "app.py")  # before gradio is imported: one line naming what to install, not a traceback

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402

from gan.demo import (ALL_CLASSES, MAX_FRAMES, MAX_IMAGES, ModelRegistry, describe, generate_images,  # noqa: E402
                      images_html, interpolation_frames, machine_judge, model_files, random_seed, write_gif,
                      write_grid, write_pngs)
from gan.errors import GanError  # noqa: E402
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
MODEL_QUEUE = 2  # model events running at once: a 2-vCPU Space stays responsive, torch uses the cores per call
CSS = """
.quiz-images { display: flex; gap: 24px; justify-content: center; }
.quiz-cell { margin: 0; text-align: center; }
.quiz-image { width: 224px; height: 224px; image-rendering: pixelated; border-radius: 6px; }
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

    @user_errors
    def on_generate(model_name, class_choice, seed, count, truncation):
        model = registry.get(model_name)
        images, grid = generate_images(model, class_choice, seed, count, truncation)
        return write_pngs(images), str(write_grid(grid, model.generator.model_config.image_size))

    @user_errors
    def on_interpolate(model_name, start_class, start_seed, end_class, end_seed, steps, mode, truncation):
        frames = interpolation_frames(registry.get(model_name), start_class, start_seed, end_class, end_seed,
                                      steps, mode, truncation)
        return write_pngs(frames), str(write_gif(frames))

    @user_errors
    def on_model(model_name):
        model = registry.get(model_name)
        samples, timelapse = model_files(model)
        choices = [ALL_CLASSES, *model.class_names]
        return (describe(model), samples, timelapse, gr.update(choices=choices, value=ALL_CLASSES),
                gr.update(choices=model.class_names, value=model.class_names[0]),
                gr.update(choices=model.class_names, value=model.class_names[-1]), model.default_truncation)

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

    # Gradio's own file cache is emptied of files older than an hour, every 10 minutes, so a Space never fills up.
    with gr.Blocks(title="Class-conditional GAN", delete_cache=(600, 3600)) as demo:
        gr.Markdown("# Class-conditional GAN\nPick a class and a seed: the same choice always draws the same image.")
        model_name = gr.Dropdown(registry.sources, value=registry.default, label="Model",
                                 visible=len(registry.sources) > 1)
        with gr.Tab("Generate"):
            with gr.Row():
                class_choice = gr.Dropdown(class_choices, value=ALL_CLASSES, label="Class")
                seed = gr.Number(value=0, minimum=0, step=1, label="Seed")
                dice = gr.Button("Random seed", scale=0)
            with gr.Row():
                count = gr.Slider(1, MAX_IMAGES, value=8, step=1, label="Images (per class for all classes)")
                truncation = gr.Slider(0.05, 1.0, value=first.default_truncation, step=0.05,
                                       label="Truncation ψ (lower: more typical, less varied)")
            run = gr.Button("Generate", variant="primary")
            gallery = gr.Gallery(label="Images", columns=8, format="png", object_fit="contain", height="auto")
            grid_file = gr.File(label="Download the grid (PNG)")
        with gr.Tab("Interpolate"):
            with gr.Row():
                start_class = gr.Dropdown(names, value=names[0], label="From class")
                start_seed = gr.Number(value=0, minimum=0, step=1, label="From seed")
                end_class = gr.Dropdown(names, value=names[-1], label="To class")
                end_seed = gr.Number(value=1, minimum=0, step=1, label="To seed")
            with gr.Row():
                steps = gr.Slider(2, MAX_FRAMES, value=16, step=1, label="Steps")
                mode = gr.Radio(["slerp", "lerp"], value="slerp", label="Path through the noise")
                walk_truncation = gr.Slider(0.05, 1.0, value=first.default_truncation, step=0.05, label="Truncation ψ")
            walk = gr.Button("Interpolate", variant="primary")
            animation = gr.Image(label="Animation", type="filepath", format="gif", height=320)
            frames = gr.Gallery(label="Frames", columns=8, format="png", object_fit="contain", height="auto")
        with gr.Tab("Quiz"):
            gr.Markdown("Can you tell the model's images from real ones? Real images come from a held-out test set "
                        "the model never saw. After each guess you see the truth and the discriminator's verdict.")
            session = gr.State(None)  # the visitor's score and the round's answer: on the server only
            with gr.Row():
                quiz_mode = gr.Radio(QUIZ_MODES, value="single", label="Mode")
                new_round = gr.Button("New round", variant="primary")
            round_id = gr.Textbox(visible=False)  # which round a guess answers (not secret: the answer is not in it)
            prompt = gr.Markdown()
            shown = gr.HTML()
            with gr.Row():
                real_button = gr.Button("Real", visible=False)
                fake_button = gr.Button("Fake", visible=False)
                left_button = gr.Button("Left is real", visible=False)
                right_button = gr.Button("Right is real", visible=False)
            feedback = gr.Markdown()
            guess = gr.Textbox(visible=False)
            api_answer = gr.Button(visible=False)  # the API's way to answer: /quiz_answer(model, round_id, guess)
        with gr.Tab("Stats") as stats_tab:
            stats_summary = gr.Markdown()
            refresh = gr.Button("Refresh")
            stats_frame = gr.Dataframe(label="Human error rate (HYPE∞ style), fooling and miss rates, 95% intervals")
            stats_plot = gr.BarPlot(x="metric", y="value", color="model", y_lim=[0, 1], label="Rates")
        with gr.Tab("Model"):
            info = gr.Markdown(describe(first))
            samples_path, timelapse_path = model_files(first)
            with gr.Row():
                samples = gr.Image(samples_path, label="Samples: one row per class, seeds 0 to 7", type="filepath")
                timelapse = gr.Image(timelapse_path, label="Training timelapse", type="filepath", format="gif")

        run.click(on_generate, [model_name, class_choice, seed, count, truncation], [gallery, grid_file],
                  api_name="generate", concurrency_limit=MODEL_QUEUE, concurrency_id="model")
        dice.click(random_seed, None, seed, api_name="random_seed", queue=False)
        walk.click(on_interpolate, [model_name, start_class, start_seed, end_class, end_seed, steps, mode,
                                    walk_truncation], [frames, animation], api_name="interpolate",
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
        model_name.change(on_model, model_name, [info, samples, timelapse, class_choice, start_class, end_class,
                                                 truncation], api_name="model_info")
    demo.queue(max_size=64, default_concurrency_limit=MODEL_QUEUE)
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="model folder or Hub repo id (repeat to offer several)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), help="address to serve on")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), help="port")
    args = parser.parse_args()
    try:
        demo = build_demo(ModelRegistry(model_sources(args.model)))
    except GanError as error:
        raise SystemExit(f"error: {error}") from None
    demo.launch(server_name=args.host, server_port=args.port, css=CSS)


if __name__ == "__main__":
    main()
