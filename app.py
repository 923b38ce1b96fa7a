"""The Gradio app: seven tabs (Generate with its copy check, Interpolate, Your image, Directions, Quiz, Stats, Model).

    python app.py [--model PATH_OR_REPO ...] [--host 0.0.0.0] [--port 7860]

Models come from --model (repeatable), else GAN_MODELS (comma-separated) or GAN_MODEL, else a Space README's
`models:` list, else the models shipped in models/ (Fashion-MNIST first, then emoji in colour and MNIST digits),
offered in a picker. This file only lays out the page and wires events; gan/ does the work (demo, explore, quiz).
"""

from __future__ import annotations

import argparse
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

from gan.tools.dependencies import require_extra

require_extra("app", "app.py")  # before gradio is imported: one line naming what to install, not a traceback

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from gan.errors import GanError  # noqa: E402
from gan.explore.invert import MAX_FILE_BYTES, MAX_PIXELS  # noqa: E402
from gan.model_files import SHIPPED_MODEL_NAMES  # noqa: E402
from gan.quiz import JudgmentStore, QuizRegistry, stats, stats_chart, stats_table  # noqa: E402
from gan.sampling import MAX_SEED  # noqa: E402
from gan.serve.demo import (ALL_CLASSES, MAX_FRAMES, MAX_IMAGES, SWEEP_STEPS, DemoModel, ModelRegistry,  # noqa: E402
                            SharedView, class_index_list, describe, enlarge_factor, generate_images, grid_scale,
                            images_archive, interpolation_frames, machine_judge, model_files, model_label,
                            model_record, random_seed, samples_caption, shared_view, single_image, tile_at,
                            truncation_sweep, write_grid)
from gan.serve.display import enlarge, images_html  # noqa: E402
from gan.serve.explorer import (INVERT_SECONDS, NEIGHBOURS, SLIDER_RANGE, CopyCheck, check_copy,  # noqa: E402
                                directions_caption, edit_along_directions, project, projection_record)
from gan.serve.housekeeping import launch_limits, prepare_serving_process, start_cache_sweeper  # noqa: E402
from gan.serve.scratch import write_gif, write_png, write_pngs  # noqa: E402
from gan.tools.space import space_models  # noqa: E402

SHIPPED_MODELS = Path(__file__).resolve().parent / "models"  # beside this file, as a Space has them


def shipped_model_source(name: str) -> str:
    """A shipped model's name as API callers see it in the README when started from the repository root (as a Space
    is): models/NAME; else its absolute path."""
    folder = SHIPPED_MODELS / name
    return f"models/{name}" if (Path.cwd() / "models" / name).resolve() == folder else str(folder)


DEFAULT_MODEL = shipped_model_source(SHIPPED_MODEL_NAMES[0])  # the first shipped model is the default
# Model events in flight at once. Their forward passes do not compete: gan/serve/batching.py runs one pass at a time
# on all cores and merges whatever waits into the next one, so more events in flight means bigger, cheaper passes;
# the rest of an event (PNG encoding, files) overlaps with the passes.
MODEL_QUEUE = 16
# Long jobs get queues of their own: one inversion at a time (seconds of gradient steps on both cores, paused
# whenever a generation pass waits: gan/serve/batching.py, Turns), two copy-check searches. A fifth looping inverter
# then waits for its turn instead of slowing everyone's grids (bench/app_fairness.py).
QUEUES = {"model": MODEL_QUEUE, "invert": 1, "search": 2}
# Quiz images stay square at every width: a pair shrinks both images alike (never one more than the other, never out
# of square: a stretched garment is a cue that has nothing to do with the model). Galleries drop to 4 columns on
# phones, where 8 would make 40 px thumbnails.
CSS = """
.pixel-grid .image-container, .pixel-grid .image-container > button, .pixel-grid .image-frame {
  height: auto !important; }
.pixel-grid img { image-rendering: pixelated; width: auto !important; height: auto !important; max-width: 100%;
                  max-height: 80vh; }
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
LARGEST_NUMBER = 2**64  # no number input takes more (seeds end at 2**32 - 1): anything larger is refused as such
QUIZ_MODES = [("One image: real or fake?", "single"), ("Two images: which one is real?", "pair")]
# The drawing brush: greys for the grey models, and the colours emoji are drawn in for the colour one.
BRUSH_COLOURS = ["#ffffff", "#808080", "#000000", "#ffcc4d", "#f4900c", "#dd2e44", "#78b159", "#55acee", "#aa8dd8",
                 "#c1694f"]


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
    shipped = [shipped_model_source(n) for n in SHIPPED_MODEL_NAMES[1:]
               if (SHIPPED_MODELS / n / "config.json").is_file()]
    return [DEFAULT_MODEL, *shipped]


def refusal(message: str) -> gr.Error:
    """A refused input: the sentence goes to the caller, and no traceback to the server's log, which stays for real
    faults (one fuzz run of 1,000 calls printed 681 tracebacks of refusals)."""
    return gr.Error(message, print_exception=False)


def checked_number(component, *, whole: bool = False):
    """A number input (gr.Number or gr.Slider) that refuses, naming itself, what Gradio would pass on or round:
    a missing value, a string, a list, or (whole=True) a fraction, where gr.Number(precision=0) would round 2.5 to 2
    and draw another seed than the one asked for, and a slider would fail with an anonymous server error. (Wrapped
    rather than subclassed: Gradio writes a .pyi stub beside the file of every component subclass it meets.)"""
    gradio_preprocess = component.preprocess

    def preprocess(payload):
        if (isinstance(payload, bool) or not isinstance(payload, (int, float))
                or (whole and not float(payload).is_integer())):
            raise refusal(f"{component.label} must be {'a whole number' if whole else 'a number'}, got {payload!r}")
        if not abs(payload) <= LARGEST_NUMBER:  # also NaN; 10**400 would overflow Gradio's float comparisons
            raise refusal(f"{component.label} is out of range ({str(payload)[:20]}...); see its limits")
        try:
            return gradio_preprocess(payload)
        except gr.Error as error:  # Gradio's own bounds check ("Value 99 is greater than maximum value 16.")
            raise refusal(f"{component.label}: {error.message}") from None

    component.preprocess = preprocess
    return component


def checked_picture(component):
    """An image input whose unreadable uploads (corrupt, not an image, too many pixels) are refused with a sentence a
    visitor can act on: Gradio decodes uploads before any handler runs and would answer with an anonymous error."""
    gradio_preprocess = component.preprocess

    def preprocess(payload):
        try:
            return gradio_preprocess(payload)
        except OSError:
            # Gradio's editor writes the RGBA layer back in the upload's own format, which fails for JPEG ("cannot
            # write mode RGBA as JPEG"): every photo a script sends. gan.explore.invert reads the uploaded file itself.
            uploaded = editor_upload_path(payload)
            if uploaded is None:
                raise refusal("this file is not an image this app can read (or it is damaged); upload a PNG, "
                               "JPEG, GIF, WebP or BMP") from None
            return {"background": uploaded, "layers": [], "composite": uploaded}
        except Image.DecompressionBombError:
            raise refusal(f"this image has too many pixels (over {MAX_PIXELS // 1_000_000} million); shrink it and "
                           "upload it again") from None
        except (SyntaxError, ValueError, EOFError, IndexError):
            raise refusal("this file is not an image this app can read (or it is damaged); upload a PNG, JPEG, "
                           "GIF, WebP or BMP") from None

    component.preprocess = preprocess
    return component


def editor_upload_path(payload) -> str | None:
    """The file an image-editor payload uploaded (its composite, else its background), if it is one on disk."""
    for key in ("composite", "background"):
        value = getattr(payload, key, None) if not isinstance(payload, dict) else payload.get(key)
        path = getattr(value, "path", None) if not isinstance(value, dict) else value.get("path")
        if isinstance(path, str) and Path(path).is_file():
            return path
    return None


def user_errors(function):
    """Show GanError (bad input, a model that cannot load) as a Gradio error message; the server keeps serving."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except GanError as error:
            raise refusal(str(error)) from None

    return wrapper


def name_unreadable_files(demo: gr.Blocks) -> gr.Blocks:
    """File inputs that Gradio cannot take in (the wrong shape for an image editor's value, a server path that was
    never uploaded, a URL it may not fetch) fail before any component or handler code runs, with the anonymous
    "upstream app has raised an exception": say instead which input it was and what to send. Gradio's own refusals
    (a value not among a radio's choices) stay sentences, without a traceback in the log. (Wrapped on this
    instance, not patched into Gradio: other Blocks in the process keep Gradio's own behaviour.)"""
    gradio_preprocess_data = demo.preprocess_data

    async def preprocess_data(block_fn, inputs, *args, **kwargs):
        try:
            return await gradio_preprocess_data(block_fn, inputs, *args, **kwargs)
        except gr.Error as error:  # Gradio's own checks ("not in the list of choices") log a traceback otherwise
            raise refusal(error.message) from None
        except ValueError:  # pydantic's ValidationError, Gradio's InvalidPathError and URL checks among them
            files = [block for block in block_fn.inputs if getattr(block, "data_model", None)]
            if not files:
                raise
            names = " or ".join(f"'{getattr(block, 'label', None) or 'file'}'" for block in files)
            raise refusal(f"{names}: not a file this app can take. Send a file from your machine (gradio_client's "
                           "handle_file(path)); an image editor takes {'background': handle_file(path), 'layers': "
                           "[], 'composite': None}, and /invert_image a plain image file.") from None

    demo.preprocess_data = preprocess_data
    return demo


@dataclass
class Page:
    """What every tab's builder needs: the models, the picker, and the first model (loaded before visitors come)."""

    registry: ModelRegistry
    model_name: gr.Dropdown
    first: DemoModel
    # Every class input with its default (ALL_CLASSES, or a position in the class list): a model switch offers the
    # new model's classes in each of them.
    class_inputs: list[tuple[gr.Dropdown, str | int]] = field(default_factory=list)

    @property
    def class_api(self) -> str:
        return (f"Class inputs take a class name or index of the chosen model (/model_info lists its classes); "
                f"the default model's: {class_index_list(self.first)}.")

    def examples_of_default(self, examples, inputs, outputs, fn, labels) -> gr.Examples:
        return gr.Examples(examples, inputs, outputs, fn=fn, cache_examples=False, run_on_click=True,
                           api_visibility="private", label="Examples (the default model)", example_labels=labels)

    def class_dropdown(self, label: str, default: str | int = 0) -> gr.Dropdown:
        """A class input of the first model's classes (default: ALL_CLASSES, offered first, or a position)."""
        names = self.first.class_names
        choices = [ALL_CLASSES, *names] if default == ALL_CLASSES else names
        value = ALL_CLASSES if default == ALL_CLASSES else names[default]
        # allow_custom_value: Gradio would check API values against the choices of the page's first model; the
        # handlers check them against the chosen model instead (names or indices).
        dropdown = gr.Dropdown(choices, value=value, label=label, allow_custom_value=True)
        self.class_inputs.append((dropdown, default))
        return dropdown


def seed_input(value, label) -> gr.Number:
    return checked_number(gr.Number(value=value, minimum=0, maximum=MAX_SEED, step=1, precision=0, label=label),
                          whole=True)


def truncation_slider(value, label="Truncation ψ (lower: more typical, less varied)") -> gr.Slider:
    return checked_number(gr.Slider(0.05, 1.0, value=value, step=0.05, label=label))


def model_event(trigger, fn, inputs, outputs, api_name, description, *, queue: str = "model") -> None:
    """An event that runs the generator: in the shared "model" queue, whose passes gan/serve/batching.py merges, or in a
    queue of long jobs of its own (QUEUES), so that those never fill the slots visitors' quick requests need."""
    trigger(fn, inputs, outputs, api_name=api_name, api_description=description, concurrency_limit=QUEUES[queue],
            concurrency_id=queue)


def generate_tab(page: Page) -> dict:
    """Images of a class (or of every class) from consecutive seeds, as one grid."""

    @user_errors
    def on_generate(model_name, class_choice, seed, count, truncation):
        model = page.registry.get(model_name)
        grid = generate_images(model, class_choice, seed, count, truncation)
        return str(write_grid(grid)), grid.layout(model.class_names)

    names = page.first.class_names
    with gr.Row():
        class_choice = page.class_dropdown("Class", ALL_CLASSES)
        seed = seed_input(0, "Seed (first of consecutive seeds)")
        dice = gr.Button("Random seed", scale=0)
    with gr.Row():
        count = checked_number(gr.Slider(1, MAX_IMAGES, value=8, step=1, label="Images (per class for all classes)"),
                               whole=True)
        truncation = truncation_slider(page.first.default_truncation)
    run = gr.Button("Generate", variant="primary")
    # One PNG for all images (a whole-factor enlargement, shown with crisp pixels, never enlarged further by the
    # page, so a click lands on the right tile); the layout says which tile is which.
    grid_image = gr.Image(label="Images (one row per class, or 8 to a row)", type="filepath", format="png",
                          interactive=False, buttons=["download", "fullscreen"], elem_classes="pixel-grid",
                          elem_id="generate-grid")
    link = gr.Markdown(elem_id="share-link")
    download = gr.DownloadButton("Download these images (zip: a PNG each at its own pixels)", size="sm",
                                 elem_id="download-images")
    with gr.Accordion("Which image is which (tile layout)", open=False):
        layout = gr.JSON(label="Tile layout")
    inputs, outputs = [page.model_name, class_choice, seed, count, truncation], [grid_image, layout]
    default = page.registry.default
    examples = [[default, ALL_CLASSES, 0, 8, 1.0], [default, names[-1], 42, 16, 0.7], [default, names[0], 7, 8, 0.5]]
    page.examples_of_default(examples, inputs, outputs, on_generate,
                             [f"{c}: {n} from seed {s}, ψ {t}" for _, c, s, n, t in examples])
    model_event(run.click, on_generate, inputs, outputs, "generate",
                f"Images of one class (seeds seed..seed+count-1, 8 to a row) or one row per class (seeds seed.., "
                f"count per class), tiled into one PNG at their own resolution, and the tile layout (rows, columns, "
                f"tile_size, padding; class and seed of each tile, row by row). {page.class_api}")
    # The link to exactly these images, written once they are shown (its query opens the page on them: see on_open).
    layout.change(share_link, inputs, link, api_visibility="private", queue=False)

    wire_archive(page, layout, inputs, download)
    dice.click(random_seed, None, seed, api_name="random_seed", queue=False)
    with gr.Accordion("One image: download it at its own pixels, see it across ψ", open=False):
        one_image = one_image_section(page, truncation)
    with gr.Accordion("Is it copying? An image beside its nearest training images", open=True):
        copy_check = copy_check_section(page, truncation)
    wire_tile_picks(grid_image, layout, copy_check, one_image)
    return {"class_choice": class_choice, "truncation": truncation, "seed": seed, "count": count, "grid": grid_image,
            "layout": layout, "fn": on_generate}


def wire_archive(page: Page, layout: gr.JSON, inputs: list, download: gr.DownloadButton) -> None:
    """The grid's images as a zip: the page fills the button once the grid is shown; API callers ask /images
    directly (same inputs as /generate)."""

    @user_errors
    def on_archive(model_name, class_choice, seed, count, truncation):
        return str(images_archive(page.registry.get(model_name), class_choice, seed, count, truncation))

    model_event(layout.change, on_archive, inputs, download, "images",
                "The images of /generate as one zip: a PNG per image at its own pixels (named by position, class and "
                f"seed) and layout.json (the tile layout, the model and psi). {page.class_api}")


def wire_tile_picks(grid_image: gr.Image, layout: gr.JSON, copy_check: dict, one_image: dict) -> None:
    """A click on a tile of the grid picks its class and seed for the copy check (which then runs) and for the
    one-image section."""

    def on_pick(layout_value, event: gr.SelectData):
        tile = tile_at(layout_value, *(event.index if isinstance(event.index, (list, tuple)) else (-1, -1)))
        if tile is None:
            raise refusal("click on an image of the grid (not between images)")
        chosen = layout_value["tiles"][tile]
        return chosen["class"], chosen["seed"], chosen["class"], chosen["seed"]

    grid_image.select(on_pick, layout, copy_check["picked"] + one_image["picked"], api_visibility="private").success(
        copy_check["fn"], copy_check["inputs"], copy_check["outputs"], api_visibility="private",
        concurrency_limit=QUEUES["search"], concurrency_id="search")


def share_link(model_name, class_choice, seed, count, truncation) -> str:
    """A Markdown link whose query (?model=&class=&seed=&n=&psi=) reopens the page on the images shown."""
    try:
        view = SharedView(model_name, str(class_choice), int(seed), int(count), float(truncation))
    except (TypeError, ValueError):
        return ""
    return f"[Link to exactly these images]({view.query()}) (copy it to share them: the same pixels everywhere)"


def wire_shared_links(demo: gr.Blocks, page: Page, generate: dict) -> None:
    """A link with ?model=&class=&seed=&n=&psi= opens the page on those images, generated on load; a bad link says
    what is wrong and leaves the page as it is."""

    def on_open(request: gr.Request):
        keep = [gr.skip()] * 7
        try:
            view = shared_view(dict(request.query_params), page.registry)
        except GanError as error:
            gr.Warning(f"This link cannot be shown: {error}")
            return keep
        if view is None:
            return keep
        grid, layout = generate["fn"](view.model, view.class_choice, view.seed, view.count, view.truncation)
        return view.model, view.class_choice, view.seed, view.count, view.truncation, grid, layout

    demo.load(on_open, None, [page.model_name, generate["class_choice"], generate["seed"], generate["count"],
                              generate["truncation"], generate["grid"], generate["layout"]],
              api_visibility="private", concurrency_limit=MODEL_QUEUE, concurrency_id="model")


def one_image_section(page: Page, truncation: gr.Slider) -> dict:
    """One (class, seed): its PNG at its own pixels, and the same seed across psi (a truncation sweep)."""

    @user_errors
    def on_image(model_name, class_choice, seed, truncation):
        image, stem = single_image(page.registry.get(model_name), class_choice, seed, truncation)
        return str(write_png(image, stem=stem))

    @user_errors
    def on_sweep(model_name, class_choice, seed, steps):
        grid, psis = truncation_sweep(page.registry.get(model_name), class_choice, seed, steps)
        caption = f"ψ, left to right: {', '.join(f'{psi:g}' for psi in psis)}"
        return str(write_grid(grid)), psis, caption

    gr.Markdown("Click an image in the grid above, or choose a class and seed. Lower ψ draws the noise closer to "
                "its centre: more typical, plainer images; 1 is the model's full variety.")
    with gr.Row():
        one_class = page.class_dropdown("Class")
        one_seed = seed_input(0, "Seed")
        steps = checked_number(gr.Slider(*SWEEP_STEPS, value=10, step=1, label="Values of ψ in the sweep"),
                               whole=True)
        show = gr.Button("Show this image")
    image_file = gr.DownloadButton("Download this image (PNG at its own pixels, at the ψ above)", size="sm",
                                   elem_id="download-image")
    sweep = gr.Image(label="The same seed as ψ grows, left to right", type="filepath", format="png",
                     interactive=False, elem_classes="pixel-grid", elem_id="truncation-sweep")
    caption = gr.Markdown()
    psis = gr.JSON(visible=False, label="ψ values")
    model_event(show.click, on_image, [page.model_name, one_class, one_seed, truncation], image_file, "image",
                f"One image (class, seed, truncation) as a PNG at its own pixels, named after what it shows. "
                f"{page.class_api}")
    model_event(show.click, on_sweep, [page.model_name, one_class, one_seed, steps], [sweep, psis, caption],
                "truncation_sweep",
                f"One seed's image at psi = 1/steps, 2/steps, ..., 1 ({SWEEP_STEPS[0]}-{SWEEP_STEPS[1]} steps), left "
                f"to right in one PNG (layout as /generate's, one row), the psi values, and a caption. "
                f"{page.class_api}")
    return {"picked": [one_class, one_seed]}


def copy_check(model: DemoModel, class_choice, seed, psi, progress: gr.Progress) -> tuple[str, CopyCheck]:
    """gan/explore.check_copy with its progress on the page (the first check of a model builds its index), and the
    picture as a PNG path."""
    progress(0, desc="Loading the training images' index (built once per model, the first time)")
    check = check_copy(model, class_choice, seed, psi, log=lambda message: progress(0.5, desc=message))
    return str(write_png(check.picture, scale=grid_scale(check.picture))), check


def copy_check_section(page: Page, truncation: gr.Slider) -> dict:
    """The nearest training images of one generated image (by evaluator features and by pixels), and how its
    closeness compares with real unseen images'. Returns its handler, inputs and outputs, and the class and seed
    inputs a click on the grid fills."""

    @user_errors
    def on_check(model_name, class_choice, seed, psi, progress=gr.Progress()):
        picture, check = copy_check(page.registry.get(model_name), class_choice, seed, psi, progress)
        return picture, check.summary, check.result.to_dict()

    gr.Markdown("Click an image in the grid above, or choose a class and seed: its nearest training images are "
                "found among all of the model's training data, and its distance is compared with how close real "
                "images the model never saw come to the training data.")
    with gr.Row():
        copy_class = page.class_dropdown("Class of the image to check")
        copy_seed = seed_input(0, "Its seed")
        check = gr.Button("Find its nearest training images")
    picture = gr.Image(label="The image, then its nearest training images (top: by features; bottom: by pixels)",
                       type="filepath", format="png", interactive=False, elem_classes="pixel-grid")
    summary = gr.Markdown(label="Copy check")
    record = gr.JSON(visible=False, label="Neighbours")
    inputs, outputs = [page.model_name, copy_class, copy_seed, truncation], [picture, summary, record]
    model_event(check.click, on_check, inputs, outputs, "nearest_real",
                f"The generated image (class, seed, truncation) beside its {NEIGHBOURS} nearest training images in "
                "evaluator features and in pixels, a verdict, and the distances with the share of real unseen images "
                f"that lie closer to the training data (percentile). {page.class_api}", queue="search")
    return {"fn": on_check, "inputs": inputs, "outputs": outputs, "picked": [copy_class, copy_seed]}


def interpolate_tab(page: Page) -> None:
    """A walk from one (class, seed) to another: frames and their GIF."""

    @user_errors
    def on_interpolate(model_name, start_class, start_seed, end_class, end_seed, steps, mode, truncation):
        frames = interpolation_frames(page.registry.get(model_name), start_class, start_seed, end_class, end_seed,
                                      steps, mode, truncation)
        return write_pngs(frames), str(write_gif(frames))

    names = page.first.class_names
    with gr.Row():
        start_class = page.class_dropdown("From class")
        start_seed = seed_input(0, "From seed")
        end_class = page.class_dropdown("To class", -1)
        end_seed = seed_input(1, "To seed")
    with gr.Row():
        steps = checked_number(gr.Slider(2, MAX_FRAMES, value=16, step=1, label="Steps"), whole=True)
        mode = gr.Radio(["slerp", "lerp"], value="slerp", label="Path through the noise")
        truncation = truncation_slider(page.first.default_truncation, "Truncation ψ")
    walk = gr.Button("Interpolate", variant="primary")
    animation = gr.Image(label="Animation", type="filepath", format="gif", height=320, elem_id="interpolate-animation")
    frames = gr.Gallery(label="Frames", columns=8, format="png", object_fit="contain", height="auto",
                        elem_classes="gallery-grid")
    inputs = [page.model_name, start_class, start_seed, end_class, end_seed, steps, mode, truncation]
    default = page.registry.default
    examples = [[default, names[0], 0, names[-1], 1, 16, "slerp", 1.0],
                [default, names[1], 3, names[1], 4, 24, "lerp", 0.8]]
    page.examples_of_default(examples, inputs, [frames, animation], on_interpolate,
                             [f"{a} seed {s} → {b} seed {e}, {n} steps, {m}" for _, a, s, b, e, n, m, _ in examples])
    model_event(walk.click, on_interpolate, inputs, [frames, animation], "interpolate",
                f"Frames from (class, seed) to (class, seed) and their GIF. {page.class_api}")


def quiz_tab(page: Page, quizzes: QuizRegistry) -> None:
    """Fake or real? Rounds, answers and the score, all kept on the server (gr.State)."""

    @user_errors
    def on_round(model_name, mode, session):
        quiz = quizzes.get(model_name)
        session = quiz.ensure_session(session)
        view = quiz.next_round(session, mode)
        single = view.mode == "single"
        labels = () if single else ("left", "right")
        return (session, view.round_id, images_html(view.images, labels=labels),
                f"**Round {view.number}.** {view.prompt}", gr.update(visible=single), gr.update(visible=single),
                gr.update(visible=not single), gr.update(visible=not single), "")

    @user_errors
    def on_answer(model_name, round_id, guess, session):
        quiz = quizzes.get(model_name)
        session = quiz.ensure_session(session)
        return session, quiz.answer(session, round_id, guess).message

    gr.Markdown("Can you tell the model's images from real ones? Real images come from a held-out test set the model "
                "never saw. After each guess you see the truth and the discriminator's verdict.")
    session = gr.State(None)  # the visitor's score and the round's answer: on the server only
    with gr.Row():
        quiz_mode = gr.Radio(QUIZ_MODES, value="single", label="Mode")
        new_round = gr.Button("New round", variant="primary")
    round_id = gr.Textbox(visible=False, label="Round id")  # which round a guess answers (not secret)
    prompt = gr.Markdown(label="Prompt")
    shown = gr.HTML(label="Images")
    with gr.Row():
        buttons = {"real": gr.Button("Real", visible=False), "fake": gr.Button("Fake", visible=False),
                   "left": gr.Button("Left is real", visible=False), "right": gr.Button("Right is real", visible=False)}
    feedback = gr.Markdown(label="Result")
    guess = gr.Textbox(visible=False, label="Guess")
    api_answer = gr.Button(visible=False)  # the API's way to answer: /quiz_answer(model, round_id, guess)
    outputs = [session, round_id, shown, prompt, *buttons.values(), feedback]
    new_round.click(on_round, [page.model_name, quiz_mode, session], outputs, api_name="quiz_round",
                    concurrency_limit=MODEL_QUEUE, concurrency_id="model")
    for value, button in buttons.items():
        button.click(functools.partial(lambda value, name, rid, state: on_answer(name, rid, value, state), value),
                     [page.model_name, round_id, session], [session, feedback], api_visibility="private")
    api_answer.click(on_answer, [page.model_name, round_id, guess, session], [session, feedback],
                     api_name="quiz_answer")

    @user_errors
    def on_fake_check(model_name, session, progress=gr.Progress()):
        if getattr(session, "last_fake", None) is None:
            raise GanError("answer a round that showed a fake image first: its nearest training images come next")
        picture, check = copy_check(page.registry.get(model_name), *session.last_fake, progress)
        return picture, check.summary

    with gr.Accordion("Was that fake a copy?", open=False):
        fake_check = gr.Button("Show the last fake beside its nearest training images")
        fake_picture = gr.Image(label="The fake, then its nearest training images (top: features; bottom: pixels)",
                                type="filepath", format="png", interactive=False, elem_classes="pixel-grid")
        fake_summary = gr.Markdown()
    fake_check.click(on_fake_check, [page.model_name, session], [fake_picture, fake_summary],
                     api_visibility="private", concurrency_limit=MODEL_QUEUE, concurrency_id="model")


def stats_tab(page: Page, store: JudgmentStore, tab: gr.Tab) -> None:
    """People's error rates beside the machine judge's, refreshed on opening the tab."""

    @user_errors
    def on_stats(model_name):
        results = stats(store)
        chart = pd.DataFrame(stats_chart(results), columns=["model", "metric", "value", "low", "high"])
        note = "" if store.saving else f"\n\n**Results are not being saved right now**: {store.problem}"
        summary = (f"{machine_judge(page.registry.get(model_name))}\n\n"
                   f"{sum(r['judgments'] for r in results)} judgments from {sum(r['sessions'] for r in results)} "
                   f"sessions. {results[0]['interval'] if results else ''}{note}")
        return summary, stats_table(results), chart.dropna(subset=["value"])

    summary = gr.Markdown(label="Summary")
    refresh = gr.Button("Refresh")
    table = gr.Dataframe(label="Human error rate (HYPE∞ style), fooling and miss rates, 95% intervals")
    plot = gr.BarPlot(x="metric", y="value", color="model", y_lim=[0, 1], label="Rates")
    refresh.click(on_stats, page.model_name, [summary, table, plot], api_name="quiz_stats")
    tab.select(on_stats, page.model_name, [summary, table, plot], api_visibility="private")


def invert_tab(page: Page) -> None:
    """Bring your own image: the model's closest image to an upload or a drawing, morphed and walked."""

    @user_errors
    def on_invert(model_name, picture, walk_seed, progress=gr.Progress()):
        model = page.registry.get(model_name)
        found = project(model, picture, walk_seed, progress=lambda f: progress(f, desc="Searching the model"))
        scale = enlarge_factor(model)
        return (str(write_png(found.target, scale=scale)), str(write_png(found.inversion.reconstruction, scale=scale)),
                found.summary, str(write_png(found.morphs, scale=grid_scale(found.morphs))),
                str(write_gif([enlarge(frame) for frame in found.walk])), projection_record(model, found.inversion))

    gr.Markdown(f"Upload a picture or draw one (white on the dark canvas suits digits and clothes; colours suit the "
                "emoji model, whose background is white, as empty canvas becomes): the model searches its noise and "
                f"class mixture for the closest image it can make (at most {INVERT_SECONDS:g} seconds), then turns it "
                "into every class and walks from it to a seed of your choice.")
    with gr.Row():
        picture = checked_picture(gr.ImageEditor(
            label="Your picture", type="filepath", sources=["upload", "clipboard"], canvas_size=(280, 280),
            brush=gr.Brush(colors=BRUSH_COLOURS, default_color="#ffffff", default_size=18),
            layers=False, elem_id="your-picture"))
        with gr.Column():
            walk_seed = seed_input(1, "Then walk to the image of seed")
            run = gr.Button("Find it in the model", variant="primary")
            summary = gr.Markdown(label="What the model made of it")
    with gr.Row():
        seen = gr.Image(label="Your picture as the model sees it", type="filepath", interactive=False)
        found = gr.Image(label="The model's closest image", type="filepath", interactive=False)
        walk = gr.Image(label="Walk to the seed", type="filepath", format="gif", interactive=False)
    morphs = gr.Image(label="Turned into each class (one row per class)", type="filepath", format="png",
                      interactive=False, elem_classes="pixel-grid")
    with gr.Accordion("Its latent and class mixture", open=False):
        record = gr.JSON(label="Inversion")
    model_event(run.click, on_invert, [page.model_name, picture, walk_seed],
                [seen, found, summary, morphs, walk, record], "invert",
                "Project a picture (an image editor value: {background, layers, composite}; any size, mode or "
                "format) into the model: the picture as the model sees it, the model's closest image, a summary, "
                "the closest image turned into each class (one row per class), a GIF walking to the seed's image, "
                "and the latent z and class mixture found. Bounded in steps and seconds per request; one inversion "
                "runs at a time, the next waits in a queue of its own.", queue="invert")
    # Scripts send a plain image file (handle_file("photo.jpg")) to /invert_image; the editor stays for the page.
    picture_file = gr.File(label="A picture file", type="filepath", visible=False)
    run_file = gr.Button(visible=False)
    model_event(run_file.click, on_invert, [page.model_name, picture_file, walk_seed],
                [seen, found, summary, morphs, walk, record], "invert_image",
                "As /invert, for a plain image file (PNG, JPEG incl. EXIF-rotated and CMYK, WebP, GIF, BMP, TIFF, "
                "16-bit, transparent): the picture as the model sees it, the closest image, a summary, the class "
                "morphs, the walk GIF and the latent z and class mixture.", queue="invert")


def directions_tab(page: Page) -> None:
    """The model's main directions of variation (GANSpace) as sliders that edit one image."""

    @user_errors
    def on_edit(model_name, class_choice, seed, psi, direction_1=0.0, direction_2=0.0, direction_3=0.0,
                direction_4=0.0, direction_5=0.0):
        # Named, not *amounts: the API documents each slider by its parameter's name.
        amounts = [direction_1, direction_2, direction_3, direction_4, direction_5]
        model = page.registry.get(model_name)
        image = edit_along_directions(model, class_choice, seed, psi, amounts[:len(sliders)])
        return str(write_png(image, scale=enlarge_factor(model)))

    gr.Markdown("The directions in the noise along which this model's images vary most (principal components of its "
                "first layer, as in GANSpace). Move a slider to push the image along one; 0 is the image itself.")
    with gr.Row():
        class_choice = page.class_dropdown("Class")
        seed = seed_input(0, "Seed")
        psi = truncation_slider(page.first.default_truncation, "Truncation ψ")
    labels = directions_caption(page.first)
    with gr.Row():
        with gr.Column():
            sliders = [checked_number(gr.Slider(-SLIDER_RANGE, SLIDER_RANGE, value=0.0, step=0.25, label=label))
                       for label in labels]
            show = gr.Button("Show", variant="primary")
        image = gr.Image(label="The edited image", type="filepath", format="png", interactive=False,
                         elem_classes="pixel-grid", elem_id="directions-image")
    inputs = [page.model_name, class_choice, seed, psi, *sliders]
    model_event(show.click, on_edit, inputs, image, "directions",
                f"The image (class, seed, truncation) moved along the model's first {len(sliders)} directions by "
                f"the given amounts (standard deviations of the noise, -{SLIDER_RANGE:g} to {SLIDER_RANGE:g}). "
                f"{page.class_api}")
    for control in [*sliders, class_choice, seed, psi]:
        trigger = control.release if isinstance(control, gr.Slider) else control.change
        trigger(on_edit, inputs, image, api_visibility="private", concurrency_limit=MODEL_QUEUE,
                concurrency_id="model", trigger_mode="always_last")


def model_tab(page: Page) -> dict:
    """The model's description, measured quality, samples and training timelapse."""
    info = gr.Markdown(describe(page.first), label="Model description")
    samples_path, timelapse_path = model_files(page.first)
    with gr.Row():
        samples = gr.Image(samples_path, label=samples_caption(page.first), type="filepath")
        timelapse = gr.Image(timelapse_path, label="Training timelapse", type="filepath", format="gif")
    return {"info": info, "samples": samples, "timelapse": timelapse}


def wire_model_picker(page: Page, model: dict) -> None:
    """Switching models shows the new one and offers exactly its classes in every class input, keeping the chosen
    ones where the new model has them (an example or a shared link that sets the model and a class at once keeps its
    class), and the chosen truncation."""
    dropdowns = [dropdown for dropdown, _ in page.class_inputs]

    @user_errors
    def on_model(model_name, *class_values):
        chosen = page.registry.get(model_name)
        samples, timelapse = model_files(chosen)
        names = chosen.class_names

        def offer(value, default):
            if default == ALL_CLASSES:
                return gr.update(choices=[ALL_CLASSES, *names], value=value if value in names else ALL_CLASSES)
            return gr.update(choices=names, value=value if value in names else names[default])

        return (describe(chosen), gr.update(value=samples, label=samples_caption(chosen)), timelapse,
                *(offer(value, default) for value, (_, default) in zip(class_values, page.class_inputs)))

    # The page's update dicts are no API: /model_info (below) answers scripts with plain data.
    page.model_name.change(on_model, [page.model_name, *dropdowns],
                           [model["info"], model["samples"], model["timelapse"], *dropdowns], api_visibility="private")

    @user_errors
    def model_info(model_name: str = "") -> dict:
        """A model as plain JSON: source, label, hub_url, image_size, channels, classes, class_frequencies,
        default_truncation, metrics (its metrics.json) and description (the page's Markdown). Without a model
        name: the model the page opens on."""
        return model_record(page.registry.get(model_name or page.registry.default))

    gr.api(model_info, api_name="model_info", concurrency_limit=MODEL_QUEUE, concurrency_id="model")


def build_demo(registry: ModelRegistry, store: JudgmentStore | None = None) -> gr.Blocks:
    """Lay out the page, one builder per tab; every event has an api_name and calls gan/ (demo, quiz)."""
    first = registry.get(registry.default)  # loaded once, before the first visitor arrives
    store = store or JudgmentStore()
    store.start_hub_sync()  # only with QUIZ_DATASET_REPO and HF_TOKEN set; never at import time
    # Gradio's own file cache is emptied of files older than 15 minutes (time enough to download a grid), every two:
    # at ~8 files a call, a one-hour age kept up to 350,000 files and their paths in memory at full load.
    with gr.Blocks(title="Class-conditional GAN", delete_cache=(120, 900)) as demo:
        gr.Markdown("# Class-conditional GAN\nPick a class and a seed: the same choice always draws the same image.")
        model_name = gr.Dropdown([(model_label(s), s) for s in registry.sources], value=registry.default,
                                 label="Model", visible=len(registry.sources) > 1)
        page = Page(registry, model_name, first)
        with gr.Tab("Generate"):
            generate = generate_tab(page)
        with gr.Tab("Interpolate"):
            interpolate_tab(page)
        with gr.Tab("Your image"):
            invert_tab(page)
        with gr.Tab("Directions"):
            directions_tab(page)
        with gr.Tab("Quiz"):
            quiz_tab(page, QuizRegistry(registry.quiz_model, registry.default, store))
        with gr.Tab("Stats") as tab:
            stats_tab(page, store, tab)
        with gr.Tab("Model"):
            model = model_tab(page)
        wire_model_picker(page, model)
        wire_shared_links(demo, page, generate)
    demo.queue(max_size=128, default_concurrency_limit=MODEL_QUEUE)
    return name_unreadable_files(demo)


def __getattr__(name: str):
    """`app.demo`, built on first use (PEP 562): what `gradio app.py` (reload mode) and Spaces look for, without
    loading models or starting the quiz sync when tests or tools merely import this module."""
    if name == "demo":
        globals()["demo"] = build_demo(ModelRegistry(model_sources()))
        return globals()["demo"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def serve(demo: gr.Blocks, **launch_options) -> None:
    """Launch with the page's CSS (Gradio 6 takes CSS at launch, not in Blocks), bounded sessions and uploads, and a
    sweeper for the empty folders Gradio's cache cleanup leaves (gan/serve/housekeeping.py)."""
    for key, value in launch_limits(MAX_FILE_BYTES, MAX_PIXELS).items():
        launch_options.setdefault(key, value)
    start_cache_sweeper(Path(demo.GRADIO_CACHE))
    demo.launch(css=CSS, **launch_options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="model folder or Hub repo id (repeat to offer several)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), help="address to serve on")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), help="port")
    args = parser.parse_args()
    prepare_serving_process()
    try:
        demo = globals()["demo"] = build_demo(ModelRegistry(model_sources(args.model)))
    except GanError as error:
        raise SystemExit(f"error: {error}") from None
    serve(demo, server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
