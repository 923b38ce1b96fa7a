"""The Gradio app: class-conditional generation, latent interpolation and model information.

    python app.py [--model PATH_OR_REPO ...] [--host 0.0.0.0] [--port 7860]

Models come from --model (repeatable), else GAN_MODELS (comma-separated) or GAN_MODEL, else the model shipped in
models/fashion-mnist. This file only lays out the page and wires events; gan/demo.py does the work.
"""

from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path

import gradio as gr

from gan.demo import (ALL_CLASSES, MAX_FRAMES, MAX_IMAGES, ModelRegistry, describe, generate_images,
                      interpolation_frames, model_files, random_seed, write_gif, write_grid, write_pngs)
from gan.errors import GanError

DEFAULT_MODEL = str(Path(__file__).resolve().parent / "models" / "fashion-mnist")
MODEL_QUEUE = 2  # model events running at once: a 2-vCPU Space stays responsive, torch uses the cores per call


def model_sources(cli_models: list[str] | None = None) -> list[str]:
    """Which models to serve: --model, then GAN_MODELS, then GAN_MODEL, then the shipped one."""
    if cli_models:
        return cli_models
    listed = [m.strip() for m in os.environ.get("GAN_MODELS", "").split(",") if m.strip()]
    return listed or [os.environ.get("GAN_MODEL") or DEFAULT_MODEL]


def user_errors(function):
    """Show GanError (bad input, a model that cannot load) as a Gradio error message; the server keeps serving."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except GanError as error:
            raise gr.Error(str(error)) from None

    return wrapper


def build_demo(registry: ModelRegistry) -> gr.Blocks:
    """Lay out the page and wire every event (each with an api_name) to gan/demo.py."""
    first = registry.get(registry.default)  # loaded once, before the first visitor arrives
    names = first.class_names
    class_choices = [ALL_CLASSES, *names]

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
    demo.launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
