"""Pictures of the chain for ``render_mode="rgb_array"``, drawn with NumPy alone (no pygame).

The picture, top to bottom: a row of ``n`` cells (the last one, which pays ``large``,
framed in gold) with the agent as a dark disc on its state; below it an arrow for the
last action actually carried out (pointing right for FORWARD, left for BACKWARD),
green when the agent did what it chose and red when it slipped.
"""

from __future__ import annotations

import numpy as np

MAX_WIDTH = 1280
"""Pictures are at most this wide: long chains get narrower cells."""
MARGIN = 8
ARROW_BAND = 28

BACKGROUND = (245, 245, 240)
CELL = (200, 220, 240)
CELL_EDGE = (70, 90, 120)
GOAL_EDGE = (215, 160, 0)
AGENT = (30, 30, 40)
ACTED = (40, 160, 60)
SLIPPED = (210, 40, 40)


ROW_HEIGHT = 64


def _pitch(n: int) -> float:
    """Pixels per state along the chain: 66 (a 64-pixel cell and a gap) or less, to fit."""
    return min(66.0, (MAX_WIDTH - 2 * MARGIN) / n)


def picture_shape(n: int) -> tuple[int, int, int]:
    """``(height, width, 3)`` of the picture of a chain of ``n`` states."""
    width = 2 * MARGIN + int(np.ceil(n * _pitch(n)))
    return (2 * MARGIN + ROW_HEIGHT + ARROW_BAND, width, 3)


def draw_chain(n: int, state: int | None, taken: int | None, slipped: bool) -> np.ndarray:
    """An RGB picture (``uint8``, ``picture_shape(n)``) of the chain.

    Short chains are drawn as framed cells with the agent as a disc; chains too long
    for that (more than about 300 states) as one bar with the agent as a dark band.

    Args:
        n: number of states.
        state: the agent's position, or ``None`` before the first reset.
        taken: the last action carried out (0 FORWARD, 1 BACKWARD), or ``None``.
        slipped: whether that action was the flipped one.
    """
    height, width, _ = picture_shape(n)
    pitch = _pitch(n)
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    top, bottom = MARGIN, MARGIN + ROW_HEIGHT

    def span(s: int) -> tuple[int, int]:
        return MARGIN + int(s * pitch), MARGIN + max(int((s + 1) * pitch), int(s * pitch) + 1)

    if pitch >= 4:
        edge = max(1, int(pitch) // 16)
        for s in range(n):
            left, right = span(s)
            right -= 2  # the gap between cells
            image[top:bottom, left:right] = GOAL_EDGE if s == n - 1 else CELL_EDGE
            image[top + edge : bottom - edge, left + edge : right - edge] = CELL
    else:
        image[top:bottom, MARGIN : span(n - 1)[1]] = CELL
        left, right = span(n - 1)
        image[top:bottom, max(MARGIN, right - 3) : right] = GOAL_EDGE
    if state is not None:
        left, right = span(state)
        if pitch >= 12:
            centre_y, centre_x = (top + bottom) / 2, (left + right - 2) / 2
            radius = min(ROW_HEIGHT, right - 2 - left) * 0.3
            ys, xs = np.ogrid[:height, :width]
            image[(ys + 0.5 - centre_y) ** 2 + (xs + 0.5 - centre_x) ** 2 <= radius**2] = AGENT
        else:
            centre = (left + right) // 2
            image[top + 8 : bottom - 8, max(0, centre - 1) : centre + 2] = AGENT
    if taken is not None:
        _draw_arrow(image, bottom + ARROW_BAND // 2 + MARGIN // 2, pointing_right=taken == 0,
                    color=SLIPPED if slipped else ACTED)  # fmt: skip
    return image


def _draw_arrow(image: np.ndarray, centre_y: int, *, pointing_right: bool, color) -> None:
    """A horizontal arrow across the middle of the picture."""
    height, width, _ = image.shape
    length = min(width - 2 * MARGIN, 160)
    x0 = (width - length) // 2
    head = min(18, length // 3)
    shaft = 3
    ys, xs = np.ogrid[:height, :width]
    if pointing_right:
        tip, base = x0 + length, x0 + length - head
        body = (xs >= x0) & (xs < base)
        in_head = (xs >= base) & (xs <= tip) & (np.abs(ys - centre_y) <= (tip - xs) * 0.6)
    else:
        tip, base = x0, x0 + head
        body = (xs >= base) & (xs < x0 + length)
        in_head = (xs >= tip) & (xs <= base) & (np.abs(ys - centre_y) <= (xs - tip) * 0.6)
    image[(body & (np.abs(ys - centre_y) <= shaft)) | in_head] = color
