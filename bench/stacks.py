"""What a py-spy profile says, in two lines: ``summarise(path)``.

py-spy's raw output (``-f raw``) is one line per distinct stack, ``frame;frame;... N``,
each frame ``function (file:line)``. A sample's CPU belongs to its innermost frame;
this groups those by layer (the file the innermost frame is in) and names the
functions that took most, so ``bench.endpoints --profile`` can say where an endpoint
that misses its target spends its time.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

# The layer of a frame, by the first marker its file contains (order matters).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("driver (asyncpg)", ("asyncpg/",)),
    ("framework (FastAPI, Starlette)", ("fastapi/", "starlette/")),
    ("validation (pydantic)", ("pydantic",)),
    # asyncio/runners.py is uvloop's loop itself: socket I/O and callbacks run in C there.
    ("server (uvicorn, event loop, sockets)", ("uvicorn/", "httptools", "uvloop", "asyncio/")),
    ("logging and metrics", ("structlog/", "prometheus_client/", "app/core/logging.py")),
    ("request path (app/core)", ("app/core/",)),
    ("endpoint (domain code)", ("app/",)),
)
OTHER = "other"
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def layer_of(file: str) -> str:
    for name, markers in LAYERS:
        if any(marker in file for marker in markers):
            return name
    return OTHER


def summarise(path: Path, top: int = 6) -> str:
    """Shares of the samples by layer, then the ``top`` functions by own samples."""
    layers: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        match = _FRAME.match(leaf)
        function, file = (match["function"], match["file"]) if match else (leaf, "")
        samples = int(count)
        total += samples
        layers[layer_of(file)] += samples
        functions[f"{function} ({file.rsplit('site-packages/', 1)[-1]})"] += samples
    if not total:
        return "  profile: no samples"
    by_layer = ", ".join(f"{name} {100 * n / total:.0f}%" for name, n in layers.most_common())
    by_function = ", ".join(
        f"{name} {100 * n / total:.0f}%" for name, n in functions.most_common(top)
    )
    return f"  profile ({total} samples) by layer: {by_layer}\n  most own time: {by_function}"
