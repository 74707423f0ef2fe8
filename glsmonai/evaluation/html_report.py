"""``report.html``: a static page of an evaluation to look at, opened from disk with no server and no network.

The page ``<name>.html`` holds its CSS inline and draws the Dice distribution as inline SVG; its only
other files are small PNG thumbnails (and, where ``predict`` wrote no overlay, full-size overlays) in
the folder ``<name>_files/`` beside it, linked relatively, so the page and that folder can be moved
together. Links to ``predict``'s overlays are relative to the page too. There is no script: the cases
come in a fixed order, worst Dice first.

HTML is written by hand with :func:`html.escape` on every text that comes from a file name or a
config: no template engine is among the package's dependencies, and the page is a few tables.
"""

from __future__ import annotations

import html
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
from PIL import Image

from glsmonai.utils import atomic_write
from glsmonai.visualize import CYAN, GREEN, RED, YELLOW, save_overlay

logger = logging.getLogger(__name__)

__all__ = [
    "THUMBNAIL_SIDE",
    "CaseFigures",
    "dice_plot_svg",
    "files_folder",
    "shrink_overlay",
    "worst_first",
    "write_compare_report",
    "write_evaluate_report",
]

#: the longer side of a case thumbnail, in pixels
THUMBNAIL_SIDE = 160
#: the overlay colours, in the order they are painted (later ones on top, as in :func:`~glsmonai.visualize.save_overlay`)
_COLOURS = (GREEN, RED, CYAN, YELLOW)
_FIGURE_NAME = re.compile(r"^case\d{5}\.png$")

#: how many decimals a metric is shown with (others: 4)
_DIGITS = {"n": 0, "n_cases": 0, "hd95": 2, "kp_error": 2, "kp_err_mean": 2, "kp_err_median": 2, "kp_err_max": 2, "ref_mm2": 2,
           "pred_mm2": 2, "kp_missed": 3, "tp": 1, "fp": 1, "fn": 1, "ref_px": 1, "pred_px": 1, "params_M": 3,
           "gflops": 3, "train_min": 2, "infer_img_s": 2}
#: column headings of the metrics
LABELS = {"dice": "Dice", "iou": "IoU", "hd95": "HD95 (px)", "key_dice": "key-region Dice", "key_iou": "key-region IoU",
          "tp": "TP (px)", "fp": "FP (px)", "fn": "FN (px)", "ref_px": "reference (px)", "pred_px": "prediction (px)",
          "ref_mm2": "reference (mm²)", "pred_mm2": "prediction (mm²)", "kp_error": "keypoint error (px)",
          "kp_missed": "keypoints missed (rate)", "dice_std": "Dice std", "iou_std": "IoU std",
          "kp_err_mean": "keypoint error mean (px)", "kp_err_median": "keypoint error median (px)",
          "kp_err_max": "keypoint error max (px)", "params_M": "parameters (M)", "gflops": "GFLOPs",
          "train_min": "training (min)", "infer_img_s": "prediction (images/s)", "n_cases": "cases"}

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1d1d1f; background: #fff; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 17px; margin: 28px 0 8px; }
table { border-collapse: collapse; margin: 4px 0; }
th, td { border: 1px solid #d0d0d6; padding: 3px 8px; text-align: right; vertical-align: middle; }
th { background: #f1f1f5; } td.name, th.name { text-align: left; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin: 0; }
dt { font-weight: 600; } dd { margin: 0; word-break: break-all; }
.thumb img { display: block; image-rendering: auto; background: #000; }
.map img { image-rendering: pixelated; width: 512px; max-width: 100%; height: auto; border: 1px solid #ccc; }
.note { color: #555; max-width: 60em; }
.legend span { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; vertical-align: -1px; }
code { background: #f4f4f6; padding: 0 3px; }
details { margin: 6px 0; } summary { cursor: pointer; }
"""


def files_folder(page: str | os.PathLike) -> Path:
    """The folder of a page's figures: ``<page stem>_files`` beside it."""
    page = Path(page)
    return page.with_name(f"{page.stem}_files")


def _url(target: Path, page_dir: Path) -> str:
    """A link from a page in ``page_dir`` to ``target``: relative, with every path part percent-encoded
    (a file name may hold ``#``, ``?``, ``%`` or spaces); a ``file://`` URI when no relative path exists
    (another drive)."""
    try:
        relative = os.path.relpath(Path(target).resolve(), Path(page_dir).resolve())
    except ValueError:
        return Path(target).resolve().as_uri()
    return "/".join(quote(part) for part in Path(relative).parts)


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def shrink_overlay(source: str | os.PathLike, target: str | os.PathLike, max_side: int = THUMBNAIL_SIDE) -> Path:
    """Write a thumbnail of an overlay PNG on which the contours, keypoints and windows stay visible.

    A plain area shrink of a 1024-pixel overlay to 160 pixels averages its one-pixel contours into faint
    tints, so the grey picture is shrunk by area and every thumbnail pixel whose block holds a pixel of
    an overlay colour (reference green, prediction red, window cyan, keypoint yellow) is painted that
    colour, in the order :func:`~glsmonai.visualize.save_overlay` painted them.

    Args:
        source: an RGB PNG (``predict``'s ``overlays/<name>.png``, a ``compare`` panel).
        target: the PNG to write.
        max_side: the thumbnail's longer side at most (a picture less than half as long is enlarged by a
            whole factor, nearest neighbour).

    Raises:
        OSError: ``source`` cannot be read as a picture (message naming it).
    """
    try:
        with Image.open(source) as opened:
            picture = opened.convert("RGB")
    except (OSError, ValueError) as err:
        raise OSError(f"{source}: cannot be read as an overlay picture ({err})") from None
    longest = max(picture.size)
    if longest * 2 <= max_side:  # a small scan: enlarged by a whole factor, pixels kept square and sharp
        factor = max_side // longest
        small = picture.resize((picture.width * factor, picture.height * factor), Image.Resampling.NEAREST)
    elif longest <= max_side:
        small = picture
    else:
        scale = max_side / longest
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        rgb = np.asarray(picture).astype(np.int32)
        code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]  # one number per colour: one comparison each
        small_rgb = np.asarray(picture.resize(size, Image.Resampling.BOX)).copy()
        for colour in _COLOURS:
            hit = code == ((colour[0] << 16) | (colour[1] << 8) | colour[2])
            if hit.any():  # BOX averages the block: above 0 where any of its pixels has the colour
                covered = np.asarray(Image.fromarray(hit.astype(np.float32)).resize(size, Image.Resampling.BOX)) > 0
                small_rgb[covered] = colour
        small = Image.fromarray(small_rgb)
    small = small.quantize(palette=_PALETTE, dither=Image.Dither.NONE)  # 8 bits a pixel: about half the bytes
    return atomic_write(target, lambda tmp: small.save(tmp, format="PNG", optimize=True))


def _palette() -> Image.Image:
    """The thumbnails' palette: the four overlay colours exactly, and 252 greys (steps of at most 2 levels,
    finer than a screen shows) for the scan they are drawn on, which is grey wherever no colour is."""
    greys = np.round(np.linspace(0, 255, 256 - len(_COLOURS))).astype(np.uint8)
    entries = [*_COLOURS, *((g, g, g) for g in greys)]
    palette = Image.new("P", (1, 1))
    palette.putpalette([channel for entry in entries for channel in entry])
    return palette


_PALETTE = _palette()


class CaseFigures:
    """The thumbnails (and, where ``predict`` drew none, the overlays) of a page's cases, written into
    ``<page stem>_files/thumbs`` and ``<page stem>_files/overlays`` as ``case<5 digits>.png``.

    Earlier figures of that name pattern in those two folders are removed first, so a page never links a
    stale figure of another run; nothing else in them is touched.
    """

    def __init__(self, page: str | os.PathLike, thumbnail_side: int = THUMBNAIL_SIDE) -> None:
        self.page = Path(page)
        self.folder = files_folder(self.page)
        self.thumbnail_side = thumbnail_side
        for sub in ("thumbs", "overlays"):
            folder = self.folder / sub
            if folder.is_dir():
                for entry in folder.iterdir():
                    if _FIGURE_NAME.match(entry.name):
                        entry.unlink()

    def _name(self, index: int) -> str:
        return f"case{index:05d}.png"

    def link(self, path: Path) -> str:
        """The page's link to ``path``."""
        return _url(path, self.page.parent)

    def from_overlay(self, index: int, overlay: str | os.PathLike) -> dict[str, str]:
        """A thumbnail of an existing overlay PNG; ``{"thumbnail", "overlay"}`` links, the overlay itself
        as the full-size one."""
        thumb = shrink_overlay(overlay, self.folder / "thumbs" / self._name(index), self.thumbnail_side)
        return {"thumbnail": self.link(thumb), "overlay": self.link(Path(overlay))}

    def draw(
        self,
        index: int,
        pred: np.ndarray,
        ref: np.ndarray,
        image: np.ndarray | None = None,
        keypoints: np.ndarray | None = None,
        window: Sequence[float] | None = None,
    ) -> dict[str, str]:
        """Draw a case's overlay with :func:`~glsmonai.visualize.save_overlay` (full size, at most
        :data:`~glsmonai.visualize.OVERLAY_MAX_SIDE`) and its thumbnail; ``{"thumbnail", "overlay"}`` links.

        Args:
            pred, ref: ``(rows, cols)`` masks (foreground ``> 0``).
            image: ``(rows, cols)`` the scan, or ``None``: the masks' areas in grey then stand for it
                (both: light, reference only: dark, prediction only: mid grey).
            keypoints: ``(K, 2)`` ``[row, col]`` drawn as crosses, with ``window`` ``(h, w)`` boxes around.
        """
        pred, ref = np.asarray(pred) > 0, np.asarray(ref) > 0
        if image is None or np.shape(image) != ref.shape:
            image = 0.4 * ref + 0.6 * pred + 0.15 * (pred & ref)  # 1.0 both, 0.4 reference only, 0.6 prediction only
        window = tuple(window) if window is not None else None
        full = save_overlay(self.folder / "overlays" / self._name(index), image, pred, ref, keypoints, window)
        return self.from_overlay(index, full)


def worst_first(values: pd.Series) -> list:
    """Index labels ordered by value, lowest first, NaN last (ties keep their order)."""
    return list(values.sort_values(kind="stable", na_position="last").index)


def _number(value: object, metric: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _esc(value)
    if math.isnan(number):
        return "–"
    return f"{number:.{_DIGITS.get(metric, 4)}f}"


def _signed(value: float, metric: str) -> str:
    if value is None or not math.isfinite(float(value)):
        return "–"
    return f"{float(value):+.{_DIGITS.get(metric, 4)}f}"


def _table(headings: Sequence[str], rows: Sequence[Sequence[str]], table_id: str, name_columns: Sequence[int] = (0,),
           row_attrs: Sequence[str] | None = None) -> str:
    """A ``<table>`` from cells already escaped or formatted (HTML)."""
    head = "".join(f'<th class="name">{h}</th>' if i in name_columns else f"<th>{h}</th>" for i, h in enumerate(headings))
    body = []
    for r, row in enumerate(rows):
        cells = "".join(f'<td class="name">{c}</td>' if i in name_columns else f"<td>{c}</td>" for i, c in enumerate(row))
        attrs = row_attrs[r] if row_attrs else ""
        body.append(f"<tr{attrs}>{cells}</tr>")
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>\n' + "\n".join(body) + "\n</tbody></table>"


def _statistics_table(statistics: pd.DataFrame, table_id: str = "summary") -> str:
    """The ``metric, n, mean, std, median, min, max`` table of :func:`~glsmonai.evaluation.scoring.summarise_cases`."""
    columns = ["n", "mean", "std", "median", "min", "max"]
    rows = []
    for row in statistics.to_dict("records"):
        metric = str(row["metric"])
        rows.append([_esc(LABELS.get(metric, metric)), *(_number(row.get(c), "n" if c == "n" else metric) for c in columns)])
    return _table(["metric", *columns], rows, table_id)


def dice_plot_svg(groups: Mapping[str, Sequence[float]], bins: int = 20, width: int = 640) -> str:
    """Inline SVG of the Dice distribution of each group (model): one histogram lane per group on a shared
    Dice axis, its mean marked. Drawn by hand: no plotting library is among the dependencies, and a
    histogram is a few rectangles.

    The axis runs from the lowest tenth below every group's lowest Dice (at most 0.9) to 1, so the usual
    0.85 - 0.95 spread is not squeezed into two bars. NaN Dice (both masks empty) are counted in the
    lane's label, not drawn.
    """
    finite = {name: np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64)
              for name, values in groups.items()}
    lowest = min((float(v.min()) for v in finite.values() if v.size), default=0.0)
    lo = max(0.0, min(0.9, math.floor(np.clip(lowest, 0.0, 1.0) * 10) / 10))
    left, right, lane_h, top, axis_h = 150, 16, 64, 10, 34
    plot_w = width - left - right
    height = top + lane_h * len(groups) + axis_h

    def x(v: float) -> float:
        return left + (v - lo) / (1.0 - lo) * plot_w

    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" id="dice-plot" role="img" width="{width}" height="{height}" '
              f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">'),
             f"<title>Dice distribution per {'model' if len(groups) > 1 else 'evaluation'}</title>"]
    for i, (name, values) in enumerate(finite.items()):
        y0 = top + i * lane_h
        n_nan = len(groups[name]) - values.size
        parts.append(f'<line x1="{left}" y1="{y0 + lane_h - 6}" x2="{left + plot_w}" y2="{y0 + lane_h - 6}" stroke="#999"/>')
        label = f"{name}" if len(groups) > 1 else "cases"
        parts.append(f'<text x="{left - 8}" y="{y0 + lane_h / 2}" text-anchor="end">{_esc(label)}</text>')
        parts.append(f'<text x="{left - 8}" y="{y0 + lane_h / 2 + 13}" text-anchor="end" fill="#666">n = {values.size}'
                     f'{f", {n_nan} undefined" if n_nan else ""}</text>')
        if not values.size:
            continue
        counts, edges = np.histogram(np.clip(values, lo, 1.0), bins=bins, range=(lo, 1.0))
        scale = (lane_h - 14) / counts.max()
        for count, a, b in zip(counts, edges[:-1], edges[1:]):
            if count:
                h = count * scale
                parts.append(f'<rect x="{x(a) + 0.5:.1f}" y="{y0 + lane_h - 6 - h:.1f}" width="{max(x(b) - x(a) - 1, 1):.1f}" '
                             f'height="{h:.1f}" fill="#4a78c2"><title>Dice {a:.3f}–{b:.3f}: {count} case(s)</title></rect>')
        mean = float(values.mean())
        parts.append(f'<line x1="{x(mean):.1f}" y1="{y0 + 4}" x2="{x(mean):.1f}" y2="{y0 + lane_h - 6}" stroke="#d03030" '
                     f'stroke-width="2" stroke-dasharray="4 2"><title>mean Dice {mean:.4f}</title></line>')
        parts.append(f'<text x="{x(mean) - 4:.1f}" y="{y0 + 12}" text-anchor="end" fill="#d03030">mean {mean:.3f}</text>')
    axis_y = top + lane_h * len(groups)
    step = 0.1 if 1.0 - lo > 0.3 else 0.05 if 1.0 - lo > 0.1 else 0.02
    for tick in np.arange(lo, 1.0 + step / 2, step):
        parts.append(f'<line x1="{x(tick):.1f}" y1="{axis_y - 6}" x2="{x(tick):.1f}" y2="{axis_y}" stroke="#333"/>')
        parts.append(f'<text x="{x(tick):.1f}" y="{axis_y + 12}" text-anchor="middle">{tick:.2f}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{axis_y + 28}" text-anchor="middle">Dice</text></svg>')
    return "\n".join(parts)


def _page(title: str, sections: Sequence[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_esc(title)}</title>"
            f"<style>{_CSS}</style></head>\n<body>\n<h1>{_esc(title)}</h1>\n" + "\n".join(sections) + "\n</body></html>\n")


def _write(page: Path, text: str) -> Path:
    return atomic_write(page, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _facts(items: Mapping[str, object]) -> str:
    """A ``<dl>`` of what was evaluated (values escaped; ``None`` left out)."""
    cells = [f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in items.items() if v is not None]
    return '<dl id="evaluated">' + "".join(cells) + "</dl>"


def _failures(failures: Sequence[Mapping[str, str]]) -> str:
    if not failures:
        return '<p id="failures">No failures.</p>'
    items = "".join(f"<li><code>{_esc(f['file'])}</code>: {_esc(f['reason'])}</li>" for f in failures)
    return f'<h2>Failures ({len(failures)})</h2><ul id="failures">{items}</ul>'


_LEGEND = (f'<p class="legend note">Thumbnails: <span style="background:rgb{GREEN}"></span>reference '
           f'<span style="background:rgb{RED}"></span>prediction <span style="background:rgb{YELLOW}"></span>keypoint '
           f'<span style="background:rgb{CYAN}"></span>window. Click a thumbnail for the full-size overlay.</p>')
_SUMMARY_NOTE = ('<p class="note">Over the cases scored; NaN (both masks empty, or HD95 with one empty) left out of '
                 'each metric, <em>n</em> counts the rest. Pixel counts are per case.</p>')
_MODELS_NOTE = ('<p class="note">Means over all cases (each tested once, by a model that never saw its group); HD95 '
                'and keypoint errors in pixels.</p>')
_PAIRED_NOTE = ('<p class="note">Mean per-case difference model − reference over the cases both scored, with its '
                '95 % cluster-bootstrap interval (whole groups resampled; with several training seeds, each model\'s '
                'seeds too, within each group). Dice: above 0 is better; HD95: below 0 is '
                'better. An interval that contains 0 does not tell the two apart.</p>')
_PANELS_NOTE = ('<p class="note">Dice of each model; panels (every model\'s contour in red over the reference in '
                'green, models left to right as in the table) for the cases <code>compare --panels</code> drew.</p>')


def _thumbnail_cell(figure: Mapping[str, str] | None, alt: str) -> str:
    if not figure:
        return "–"
    img = f'<img src="{_esc(figure["thumbnail"])}" alt="{_esc(alt)}" loading="lazy">'
    if not figure.get("overlay"):
        return f'<span class="thumb">{img}</span>'
    return f'<a class="thumb" href="{_esc(figure["overlay"])}">{img}</a>'


def write_evaluate_report(
    page: str | os.PathLike,
    summary: Mapping,
    statistics: pd.DataFrame,
    figures: Sequence[Mapping[str, str] | None] | None = None,
    error_map: str | os.PathLike | None = None,
) -> Path:
    """Write the page of a ``glsmonai evaluate`` run.

    Args:
        page: the HTML file to write.
        summary: the ``summary.json`` document (:func:`~glsmonai.evaluation.reports.evaluate_summary`):
            its ``evaluated``, ``failures`` and ``cases`` are shown.
        statistics: the summary table (``metric, n, mean, std, median, min, max``).
        figures: ``{"thumbnail", "overlay"}`` links of each case of ``summary["cases"]`` (in its order;
            ``None``: no figure), from :class:`CaseFigures`.
        error_map: an error-frequency map PNG (``glsmonai errormap``) to show, copied into the page's folder.

    Returns:
        ``page``.
    """
    page = Path(page)
    cases = pd.DataFrame(list(summary["cases"]))
    figures = list(figures or [None] * len(cases))
    metrics = [m for m in ("dice", "iou", "hd95", "key_dice", "tp", "fp", "fn", "ref_px", "pred_px", "ref_mm2", "pred_mm2")
               if m in cases and (m not in ("ref_mm2", "pred_mm2") or cases[m].notna().any())]
    evaluated = summary.get("evaluated", {})
    facts = {"predictions": evaluated.get("predictions"), "references": evaluated.get("labels"),
             "split": evaluated.get("split") if str(evaluated.get("labels", "")).endswith(".json") else None,
             "label value": evaluated.get("label_value"), "key-region rule": evaluated.get("key_rule"),
             "key-region window (px)": evaluated.get("window"), "cases scored": summary.get("n_cases"),
             "failures": summary.get("n_failures"), "summary.json": evaluated.get("summary_json"),
             "glsmonai": summary.get("glsmonai_version")}
    sections = ['<h2>What was evaluated</h2>', _facts(facts), _failures(summary.get("failures", [])),
                "<h2>Summary</h2>", _SUMMARY_NOTE,
                _statistics_table(statistics),
                "<h2>Dice distribution</h2>", dice_plot_svg({"cases": cases["dice"].tolist() if "dice" in cases else []})]
    if error_map is not None:
        source = Path(error_map)
        if source.is_file():
            copy = files_folder(page) / f"errormap{source.suffix.lower()}"
            atomic_write(copy, lambda tmp: tmp.write_bytes(source.read_bytes()))
            sections += [('<h2>Error-frequency map</h2><p class="note">Where, relative to the object, the predictions '
                          f'err (<code>{_esc(source.name)}</code>, <code>glsmonai errormap</code>): the mean fraction '
                          'of each cell that is wrong, black to white.</p>'),
                         (f'<p class="map"><img id="error-map" src="{_esc(_url(copy, page.parent))}" '
                          'alt="error-frequency map"></p>')]
        else:
            logger.warning("error map %s not found: left out of %s", source, page)
    order = worst_first(cases["dice"]) if "dice" in cases else list(cases.index)
    rows, attrs = [], []
    for rank, i in enumerate(order, 1):
        case = cases.loc[i]
        name = str(case["image"])
        rows.append([str(rank), _esc(name), *(_number(case.get(m), m) for m in metrics),
                     _thumbnail_cell(figures[i], f"overlay of {name}")])
        attrs.append(f' class="case" data-image="{_esc(name)}" data-dice="{_number(case.get("dice"), "dice")}"')
    sections += [f"<h2>Cases, worst Dice first ({len(rows)})</h2>", _LEGEND,
                 _table(["#", "image", *(_esc(LABELS.get(m, m)) for m in metrics), "overlay"], rows, "cases",
                        name_columns=(1,), row_attrs=attrs)]
    title = f"glsmonai evaluate: {Path(str(evaluated.get('predictions', ''))).name or 'predictions'}"
    return _write(page, _page(title, sections))


def write_compare_report(
    page: str | os.PathLike,
    summary: Mapping,
    table: pd.DataFrame,
    paired: pd.DataFrame,
    cases: pd.DataFrame,
    levers: pd.DataFrame | None = None,
    panels: Mapping[str, str | os.PathLike] | None = None,
) -> Path:
    """Write the page of a ``glsmonai compare`` run.

    Args:
        page: the HTML file to write.
        summary: the ``summary.json`` document (its ``evaluated`` part is shown).
        table: ``table.csv``, one row per model.
        paired: ``paired.csv``; ``levers``: ``levers.csv`` (or ``None``).
        cases: ``cases.csv``: ``model, fold, image, group`` (and ``seed``) and the metrics, one row per model and case
            (and training seed: the case table then shows each model's mean over its seeds).
        panels: ``{image: panel PNG}`` of the cases drawn as panels (every model's contour over the reference).

    Returns:
        ``page``.
    """
    page = Path(page)
    evaluated = summary.get("evaluated", {})
    models = list(dict.fromkeys(cases["model"])) if len(cases) else list(table["model"])
    facts = {"datalist": evaluated.get("datalist"), "dataset folder": evaluated.get("dataset_dir"),
             "models": ", ".join(models), "scheme": evaluated.get("scheme"), "reference model": evaluated.get("reference"),
             "bundle overrides": " ".join(evaluated.get("overrides") or []) or None,
             "presets": ", ".join(evaluated.get("presets") or []) or None, "cases per model": summary.get("n_cases"),
             "training seeds": ", ".join(map(str, evaluated.get("training_seeds") or [])) or None,
             "summary.json": evaluated.get("summary_json"), "glsmonai": summary.get("glsmonai_version")}
    sections = ["<h2>What was compared</h2>", _facts(facts), "<h2>Models</h2>", _MODELS_NOTE]
    columns = [c for c in table.columns if c != "model"]
    sections.append(_table(["model", *(_esc(LABELS.get(c, c)) for c in columns)],
                           [[_esc(r["model"]), *(_number(r[c], c) for c in columns)] for r in table.to_dict("records")],
                           "models"))
    for model, document in summary.get("models", {}).items():  # every metric's statistics, one table per model
        statistics = pd.DataFrame([{"metric": m, **v} for m, v in document.get("statistics", {}).items()])
        if not statistics.empty:
            sections.append(f"<details><summary>{_esc(model)}: statistics of every metric over its "
                            f"{document.get('n_cases', 0)} cases</summary>"
                            f"{_statistics_table(statistics, 'statistics-' + _esc(model))}</details>")
    for title, frame, table_id in (("Paired differences to the reference", paired, "paired"),
                                   ("Prediction-time levers, each against its own model", levers, "levers")):
        if frame is None or frame.empty:
            continue
        rows = [[_esc(r["model"]), _esc(r["reference"]), _esc(LABELS.get(r["metric"], r["metric"])),
                 _signed(r["mean"], r["metric"]), f"[{_signed(r['lo'], r['metric'])}, {_signed(r['hi'], r['metric'])}]",
                 str(int(r["n"])), str(int(r["n_groups"]))] for r in frame.to_dict("records")]
        sections += [f"<h2>{title}</h2>", _PAIRED_NOTE,
                     _table(["model", "reference", "metric", "difference", "interval", "cases", "groups"], rows, table_id,
                            name_columns=(0, 1, 2))]
    dice = {m: cases.loc[cases["model"] == m, "dice"].tolist() for m in models} if "dice" in cases else {}
    sections += ["<h2>Dice distribution</h2>", dice_plot_svg(dice)]
    figures = {}
    if panels:
        thumbs = CaseFigures(page, thumbnail_side=max(THUMBNAIL_SIDE, 110 * len([m for m in models if "+" not in m])))
        for index, (image, panel) in enumerate(sorted(panels.items())):
            if Path(panel).is_file():
                figures[image] = thumbs.from_overlay(index, panel)
    per_case = cases
    if "seed" in cases and cases["seed"].nunique() > 1:  # several training seeds: each model's mean over them
        per_case = cases.groupby(["model", "fold", "image", "group"], sort=False, as_index=False)["dice"].mean() \
            if "dice" in cases else cases.drop_duplicates(["model", "fold", "image", "group"])
    wide = per_case.pivot(index=["fold", "image", "group"], columns="model", values="dice") \
        if "dice" in cases and len(cases) else pd.DataFrame()  # one row per case that was scored
    rows, attrs = [], []
    if not wide.empty:
        wide = wide.reindex(columns=models)
        order = worst_first(wide.mean(axis=1, skipna=True))
        for rank, key in enumerate(order, 1):
            fold, image, group = key
            rows.append([str(rank), _esc(image), _esc(group), _esc(fold), *(_number(wide.at[key, m], "dice") for m in models),
                         _thumbnail_cell(figures.get(str(image)), f"panel of {image}")])
            attrs.append(f' class="case" data-image="{_esc(image)}"')
    sections += [f"<h2>Cases, lowest mean Dice over the models first ({len(rows)})</h2>", _PANELS_NOTE,
                 _table(["#", "image", "group", "fold", *(f"Dice {_esc(m)}" for m in models), "panel"], rows, "cases",
                        name_columns=(1, 2), row_attrs=attrs)]
    return _write(page, _page(f"glsmonai compare: {Path(str(evaluated.get('datalist', ''))).name}", sections))
