"""Render report HTML in headless Chromium: screenshot, DOM dump, JavaScript errors.

Uses Debian's ``chromium`` package (``apt-get install chromium``; CI installs it in
``.ci/run``). Flags: ``--headless --no-sandbox --disable-gpu`` plus switches that keep the
browser off the network and away from the user's profile. ``--virtual-time-budget`` lets
the report's JavaScript (React) finish rendering before the screenshot / DOM dump.

JavaScript errors are caught two ways: Chromium's console log on stderr
(``--enable-logging=stderr --v=0`` prints ``Uncaught ...`` lines) and an error hook
injected into a copy of the page (:func:`instrument_html`) that writes every error into a
``<pre id="greenpath-js-errors">`` element, read back from ``--dump-dom``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Executables tried, in order, when ``GREENPATH_CHROMIUM`` is not set.
CHROMIUM_NAMES: tuple[str, ...] = ("chromium", "chromium-browser", "google-chrome")

#: Flags for a headless, offline, profile-free run (see the module doc).
BASE_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
)

ERROR_ELEMENT_ID = "greenpath-js-errors"

#: Injected first in <head>: collects errors and unhandled rejections into the DOM.
_ERROR_HOOK = (
    "<script>(function(){var errs=[];"
    "function show(){var el=document.getElementById('" + ERROR_ELEMENT_ID + "');"
    "if(!el&&document.body){el=document.createElement('pre');el.id='" + ERROR_ELEMENT_ID + "';"
    "el.style.display='none';document.body.appendChild(el);}"
    "if(el){el.textContent=errs.join('\\n');}}"
    "window.addEventListener('error',function(e){errs.push('error: '+(e.message||e));show();});"
    "window.addEventListener('unhandledrejection',function(e){errs.push('rejection: '+e.reason);"
    "show();});window.addEventListener('load',show);})();</script>"
)

_CONSOLE_ERROR = re.compile(r"(Uncaught|SyntaxError|ReferenceError|TypeError)[^\n]*")


class ChromiumMissing(RuntimeError):
    """No Chromium executable was found."""


@dataclass
class RenderResult:
    """Outcome of :func:`render`.

    Attributes:
        returncode: Chromium's exit status.
        dom: the serialised DOM after scripts ran (``--dump-dom``).
        js_errors: errors from the injected hook and the console log (empty = clean).
        screenshot: the PNG written, or ``None``.
        stderr: Chromium's stderr (console log), for diagnostics.
    """

    returncode: int
    dom: str
    js_errors: list[str] = field(default_factory=list)
    screenshot: Path | None = None
    stderr: str = ""


def find_chromium() -> str | None:
    """Path of a Chromium executable: ``$GREENPATH_CHROMIUM`` or the first on ``PATH``."""
    env = os.environ.get("GREENPATH_CHROMIUM")
    if env:
        return env if Path(env).is_file() else shutil.which(env)
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def instrument_html(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], extra_js: str = ""
) -> Path:
    """Copy an HTML page, injecting the error hook (and ``extra_js``, run after load).

    Args:
        src: the page (e.g. ``results/report.html``).
        dst: where to write the instrumented copy.
        extra_js: JavaScript run 300 ms after the ``load`` event (e.g. to open a result).
    """
    text = Path(src).read_text(encoding="utf-8")
    hook = _ERROR_HOOK
    if extra_js:
        hook += (
            "<script>window.addEventListener('load',function(){setTimeout(function(){"
            f"try{{{extra_js}}}catch(e){{window.dispatchEvent(new ErrorEvent('error',"
            "{message:'greenpath hook: '+e}));}},300);});</script>"
        )
    m = re.search(r"<head[^>]*>", text, flags=re.IGNORECASE)
    text = text[: m.end()] + hook + text[m.end() :] if m else hook + text
    out = Path(dst)
    out.write_text(text, encoding="utf-8")
    return out


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def render(
    html_path: str | os.PathLike[str],
    screenshot: str | os.PathLike[str] | None = None,
    *,
    window_size: tuple[int, int] = (1400, 1000),
    virtual_time_ms: int = 5000,
    extra_js: str = "",
    chromium: str | None = None,
    timeout_s: float = 120.0,
) -> RenderResult:
    """Load ``html_path`` in headless Chromium; dump the DOM and optionally screenshot it.

    Args:
        html_path: page to load (a local file).
        screenshot: PNG path for a screenshot of the viewport, or ``None``.
        window_size: viewport (width, height) in CSS pixels.
        virtual_time_ms: virtual time the page's scripts get before the dump/screenshot.
        extra_js: JavaScript to run after load (see :func:`instrument_html`).
        chromium: executable; default :func:`find_chromium`.
        timeout_s: wall-clock limit per Chromium call.

    Returns:
        A :class:`RenderResult`; ``js_errors`` lists every error seen.

    Raises:
        ChromiumMissing: no Chromium found (install Debian's ``chromium``).
        FileNotFoundError: ``html_path`` does not exist.
        RuntimeError: Chromium exits non-zero or writes no screenshot (stderr tail included).
    """
    exe = chromium or find_chromium()
    if not exe:
        raise ChromiumMissing(
            "no Chromium found: install Debian's 'chromium' (apt-get install chromium) "
            "or set GREENPATH_CHROMIUM to the executable"
        )
    src = Path(html_path)
    if not src.is_file():
        raise FileNotFoundError(f"page to render not found: {src}")
    with tempfile.TemporaryDirectory(prefix="greenpath-chromium-") as tmp:
        page = instrument_html(src, Path(tmp) / "page.html", extra_js)
        url = page.resolve().as_uri()
        common = [
            exe,
            *BASE_FLAGS,
            f"--user-data-dir={tmp}/profile",
            f"--window-size={window_size[0]},{window_size[1]}",
            f"--virtual-time-budget={virtual_time_ms}",
        ]
        dump = _run([*common, "--dump-dom", url], timeout_s)
        if dump.returncode != 0:
            raise RuntimeError(
                f"chromium --dump-dom failed with exit {dump.returncode}: {dump.stderr[-2000:]}"
            )
        stderr = dump.stderr
        shot: Path | None = None
        if screenshot is not None:
            shot = Path(screenshot).resolve()
            shot.parent.mkdir(parents=True, exist_ok=True)
            if shot.exists():
                shot.unlink()
            res = _run([*common, f"--screenshot={shot}", url], timeout_s)
            stderr += res.stderr
            if res.returncode != 0 or not shot.is_file():
                raise RuntimeError(
                    f"chromium --screenshot failed (exit {res.returncode}, file "
                    f"{'present' if shot.is_file() else 'missing'}): {res.stderr[-2000:]}"
                )
    errors = dom_errors(dump.stdout) + console_errors(stderr)
    return RenderResult(dump.returncode, dump.stdout, errors, shot, stderr)


def dom_errors(dom: str) -> list[str]:
    """Errors written by the injected hook into ``#greenpath-js-errors``."""
    m = re.search(rf'<pre id="{ERROR_ELEMENT_ID}"[^>]*>(.*?)</pre>', dom, flags=re.DOTALL)
    if not m:
        return []
    return [line for line in m.group(1).splitlines() if line.strip()]


def console_errors(stderr: str) -> list[str]:
    """``Uncaught ...``-style JavaScript errors in Chromium's console log."""
    return [
        m.group(0)
        for line in stderr.splitlines()
        if "CONSOLE" in line
        for m in [_CONSOLE_ERROR.search(line)]
        if m
    ]


def nonblank_fraction(
    png: str | os.PathLike[str],
    threshold: int = 245,
    box: tuple[int, int, int, int] | None = None,
) -> float:
    """Fraction of pixels that are not (near-)white in a PNG screenshot.

    A pixel is blank when each of its R, G, B values (0-255) is >= ``threshold``.
    ``box`` = (x0, y0, x1, y1) restricts the count to that region.
    """
    import matplotlib.image as mpimg

    img = mpimg.imread(str(png))
    if box is not None:
        x0, y0, x1, y1 = box
        img = img[y0:y1, x0:x1]
    rgb = np.asarray(img[..., :3], dtype=np.float64)
    if rgb.max() <= 1.0:
        rgb = rgb * 255.0
    blank = (rgb >= threshold).all(axis=-1)
    return float(1.0 - blank.mean())


def colour_count(png: str | os.PathLike[str], box: tuple[int, int, int, int] | None = None) -> int:
    """Number of distinct RGB colours in a PNG (optionally in box = x0, y0, x1, y1).

    A rendered matplotlib figure has dozens of colours (anti-aliased lines, palette);
    a blank or broken image has one or two.
    """
    import matplotlib.image as mpimg

    img = mpimg.imread(str(png))
    rgb = np.asarray(img[..., :3])
    if box is not None:
        x0, y0, x1, y1 = box
        rgb = rgb[y0:y1, x0:x1]
    if rgb.dtype != np.uint8:
        rgb = np.round(rgb * 255).astype(np.uint8)
    flat = rgb.reshape(-1, 3)
    return int(len(np.unique(flat, axis=0)))


#: JavaScript that opens the first report result whose path contains ``needle``
#: (Snakemake 9's report app: global ``results`` and ``app.setView``).
def open_result_js(needle: str) -> str:
    """JS for :func:`render` ``extra_js``: show a Snakemake report result as the main view."""
    n = needle.replace("\\", "\\\\").replace("'", "\\'")
    return (
        "var key=Object.keys(results).find(function(k){return k.indexOf('" + n + "')>=0;});"
        "if(!key){throw new Error('no report result matching " + n + "');}"
        "app.setView({content:'img',contentPath:results[key].data_uri,resultPath:key});"
    )
