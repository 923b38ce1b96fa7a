"""How images are shown: enlarged by whole factors (small images stay crisp) and, for the quiz, inlined as PNG data
URIs in HTML. No model and no Gradio here."""

from __future__ import annotations

import base64
import io

import numpy as np

from ..sampling import to_pil

DISPLAY_SIZE = 160  # small images are enlarged (by a whole factor) to about this many pixels


def enlarge(image: np.ndarray, target: int = DISPLAY_SIZE) -> np.ndarray:
    """For display: nearest-neighbour upscaling by the whole factor that brings the image closest to `target`
    pixels; grey images become (H, W), the shape image widgets take for one channel."""
    factor = max(1, round(target / image.shape[0]))
    image = image[..., 0] if image.shape[-1] == 1 else image
    return image.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else image


def png_bytes(image: np.ndarray) -> bytes:
    """An (H, W[, C]) uint8 image as the bytes of a PNG with no metadata (PIL writes no text chunks)."""
    buffer = io.BytesIO()
    to_pil(image if image.ndim == 3 else image[..., None]).save(buffer, format="PNG")
    return buffer.getvalue()


def png_data_uri(image: np.ndarray) -> str:
    """An image as a data: URI of a PNG with no metadata: no file, no URL, nothing that outlives the page."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def images_html(images: tuple[np.ndarray, ...] | list[np.ndarray], *, labels: tuple[str, ...] = ()) -> str:
    """Images side by side as HTML, each through the same encoding (the quiz shows real and fake images alike)."""
    cells = []
    for i, image in enumerate(images):
        caption = f"<figcaption>{labels[i]}</figcaption>" if i < len(labels) else ""
        cells.append(f'<figure class="quiz-cell"><img class="quiz-image" alt="image {i + 1}" '
                     f'src="{png_data_uri(image)}">{caption}</figure>')
    return f'<div class="quiz-images">{"".join(cells)}</div>'
