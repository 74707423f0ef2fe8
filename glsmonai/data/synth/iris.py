"""Synthetic anterior-segment OCT (AS-OCT) B-scans with an iris mask and the two iris roots.

The generator draws one horizontal B-scan through the anterior segment of the eye, as a swept-source
AS-OCT device exports it (A-scans are image columns, depth grows downwards; real exports are
1459 x 1713 pixels, rows x cols). What is modelled:

* **Background**: air above the eye and everything the beam does not reach, near black.
* **Cornea and sclera**: one eye wall over an elliptical posterior surface that, past the angle, goes
  on straight along its tangent (the globe is wider than the field of view), fading with depth. Its
  top is the corneal dome: thin (about 2-3 % of the image height), moderately bright, with a smooth
  texture (much less speckle than the other tissues), a brighter epithelium line on its anterior
  surface and a thin endothelium line on its posterior one. Towards the left and right the wall
  descends, thickens and turns, past the limbus, into the sclera: a wide, bright, more textured band
  at both sides.
* **Anterior chamber**: the dark, optically empty space under the dome.
* **Iris**: a left and a right half. Each half is built on its **posterior surface**, which is smooth:
  from the root it rises and bows forwards (convex towards the cornea), then lies on the lens just
  behind the pupil, following the lens surface closely to the pupil margin. The thickness profile is
  largest in the middle third (the collarette) and thins both towards the root and towards the pupil.
  The **anterior surface** is that surface minus the thickness and is irregular: crypts (pits) and
  folds (bumps), a few tens of pixels at 1459 x 1713. Depending on the lens' height (its vault over
  the line of the roots) a half rises or slopes down towards the pupil. The iris has a faintly
  brighter anterior border layer and, along its posterior surface, the highly reflective pigment
  epithelium, which shadows the columns under it.
* **Iris root / angle**: each root sits low, where the iris meets the ciliary body. The ciliary body
  is a band along the inner surface of the wall from the angle downwards, between the root and the
  sclera, about as bright as the iris, with the same texture; it wraps the iris tip and is blurred
  together with it (only a faint cleft may hint at the junction), so the exact end of the iris is
  ambiguous: this low-contrast junction is the hard region the segmentation product targets. The
  angle recess, the corner of the anterior chamber between the inclined cornea / sclera and the
  rising iris, is a narrow dark wedge that closes just above the root.
* **Lens** (natural, about six eyes in seven): the anterior capsule, a bright curved line just
  behind the pupil that continues, shadowed, under the iris, and below it the lens body: a large band
  of moderate brightness with horizontal layers (cortex interfaces) down to a faint posterior
  capsule. The iris shadows every column it covers, so the body shows as a vertical band under the
  pupil (the scan's central columns). **Artificial lens** (the other eyes): a thin curved line (the
  optic's front) and a fainter one behind it, with a dark interior, further back (a deeper chamber).
* **Artefacts**: shadowing under the iris, depth attenuation along the A-scans (intensities vary
  smoothly with depth), a bright vertical specular reflex line through the corneal apex, fine
  multiplicative speckle (weaker in the cornea), a small anisotropic point-spread blur and an
  additive noise floor. Some scans (about one in six) have an **eyelid** (a textured band of tissue
  over the cornea at one side) or a **shadow** (lashes, the lid's margin) at one side that darkens
  the columns under it, hiding that side's angle: that root is then barely visible, but its
  keypoint stays where the anatomy is.

Pose (centre offset, scale, tilt of the whole anterior segment), pupil size, iris shape and slope,
lens type and vault, artefacts and intensities vary between cases.

What is not modelled: calibrated proportions (sizes are plausible fractions of the image, not
millimetres of a given device), the true optics (refraction at the cornea, which bends the structures
under it; the scan's fan geometry), real OCT speckle statistics (here log-normal, multiplicative),
saturation and mirror artefacts, blood vessels and the iris' radial stromal texture, the scleral
spur, Schwalbe's line and the trabecular meshwork as distinct structures, the ciliary processes and
zonules, the posterior chamber's real shape, the lens' real layer structure (layers are drawn at
random depths), the eyelid's own anatomy (it is a textured band), iris colour, a second (vertical)
meridian, pathology (closed angles, plateau iris, cataract grades, synechiae) and device-specific
post-processing (log-compression curves, denoising).

All geometry is expressed as fractions of the image size (horizontal lengths of the width, vertical
lengths of the height, iris thickness and relief widths of the width, the iris' forward bow of its
own length, reduced when the image is much wider than high), so the same anatomy appears at every
scale. Everything is drawn from the caller's ``numpy.random.Generator``
only: the same seed gives the same case.

The label is the iris (both halves, value 1). The keypoints are the two iris roots (left first),
each one pixel inside the peripheral tip of its half, which agrees with the project's ``iris_roots``
mask rule (mean of the pixels furthest along the axis between the half centroids). The returned
case's ``info`` says what was drawn that the label does not show: ``lens`` (``"natural"`` or
``"artificial"``), ``artefact`` (``None``, ``"eyelid"`` or ``"shadow"``) and ``hidden_root`` (the
index of the keypoint the artefact hides, or ``None``), and ``truth``: the drawn outline, root and
centre line of each half, from which :mod:`glsmonai.measure.truth` computes the true iris measures
(``synth iris`` writes them to ``measures_true.csv``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from glsmonai.data.synth.common import SynthCase, draw_until, largest_component, parse_size, smoothstep, soft_edge, within_margin

__all__ = ["SynthCase", "make_iris_case"]

_CHECK_FRACTION = 0.058  # analytic check, a little stricter than BORDER_FRACTION to absorb rasterisation
_RENDER_MAX_SIDE = 700  # anatomy is rendered on a grid about this size, then upsampled
_NEG = -1.0e6
_NODES = 161  # samples of each iris surface along the half, root (s = 0) to pupil end (s = 1)
_S = np.linspace(0.0, 1.0, _NODES)


@dataclass(frozen=True)
class _IrisSide:
    """Geometry of one iris half in the anatomy frame (pixels, x to the right, y downwards).

    The half runs from its root (``s = 0``, peripheral) to its pupil end (``s = 1``), x linear in s.
    Both surfaces are sampled at :data:`_S`; the band between them is closed by a round cap at each end
    (radius half the thickness there), so ``anterior[0] = y_root - h_root``,
    ``posterior[0] = y_root + h_root`` and the pupil cap's radius is ``h_pupil``.
    """

    x_root: float  # column of the root cap's centre
    x_pupil: float  # column of the pupil cap's centre
    y_root: float  # row of the root cap's centre (the root keypoint's row)
    h_root: float  # root cap radius: half the iris thickness at the root
    h_pupil: float  # pupil cap radius: half the iris thickness at the pupil margin
    anterior: np.ndarray = field(repr=False)  # row of the irregular anterior surface at each node
    posterior: np.ndarray = field(repr=False)  # row of the smooth posterior surface at each node
    cb_width: float  # ciliary-body strip between the iris tip and the eye wall, in h_root units
    cb_slope: float  # tan of the rise of the ciliary body's anterior face, outwards
    cb_inward: float  # how far the ciliary body reaches under the iris, pixels
    cb_depth: float  # how far below the root the ciliary body, hugging the wall, fades, pixels

    @property
    def outward(self) -> float:
        """+1 if the periphery is to the right of the pupil end, -1 otherwise."""
        return 1.0 if self.x_root > self.x_pupil else -1.0

    @property
    def y_pupil(self) -> float:
        """Row of the pupil cap's centre."""
        return 0.5 * float(self.anterior[-1] + self.posterior[-1])

    def surfaces(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the anterior and posterior surfaces at fraction ``s`` (clipped to ``[0, 1]``)."""
        return np.interp(s, _S, self.anterior), np.interp(s, _S, self.posterior)


@dataclass(frozen=True)
class _Params:
    """Everything drawn for one case (anatomy frame in pixels unless stated; brightness in [0, 1])."""

    cx: float  # image column of the anatomy frame's origin
    cy: float  # image row of the anatomy frame's origin
    tilt: float  # rotation of the whole anterior segment, radians
    left: _IrisSide
    right: _IrisSide
    wall_y0: float  # row of the centre of the eye wall's elliptical posterior surface
    wall_b: float  # its vertical semi-axis
    wall_a_left: float  # its horizontal semi-axis on the left (passes through the left angle point)
    wall_a_right: float  # the same on the right
    theta_left: float  # ellipse parameter of the left angle point (0 at the apex)
    theta_right: float  # the same on the right
    cornea_t: float  # central corneal thickness
    sclera_t: float  # scleral thickness at the sides
    lens_natural: bool  # natural lens (capsule + body) or an artificial one (thin lines)
    lens_x: float  # column of the lens apex
    lens_y: float  # row of the anterior lens (capsule or optic) surface at its apex
    lens_k: float  # its curvature: row = lens_y + lens_k * (x - lens_x) ** 2
    lens_half_width: float  # lateral extent of the lens surface (natural) or optic (artificial)
    lens_capsule: float  # half-thickness of the anterior capsule / optic line
    lens_depth: float  # lens thickness (natural) or optic thickness (artificial) at the apex
    lens_layers: tuple[tuple[float, float, float], ...]  # body layers: (depth, width, weight)
    b_iris: float  # iris stroma
    b_border: float  # extra brightness of the iris' anterior border layer
    b_cb: float  # ciliary body, relative to the iris
    b_cornea: float
    b_sclera: float
    b_lens: float  # anterior capsule / optic line
    b_lens_body: float  # natural lens body (the central band)
    b_chamber: float  # aqueous flare
    pe_gain: float  # pigment epithelium line
    seam: float  # depth of the faint cleft between iris root and ciliary body
    shadow: float  # fraction of the signal the iris takes from the columns under it
    attenuation: float  # depth attenuation coefficient along the A-scans
    speckle: float  # log-amplitude of the speckle (the cornea gets cornea_speckle times it)
    cornea_speckle: float
    noise_floor: float
    gain: float
    gamma: float
    reflex: float  # brightness of the vertical reflex line
    reflex_width: float
    reflex_offset: float  # its column offset from the apex
    root_blur: float  # extra blur at the roots (sigma)
    root_blur_radius: float  # radius of that blur's neighbourhood
    edge: float  # soft-edge width of the anatomy
    artefact: str | None  # None, "eyelid" or "shadow"
    artefact_side: int  # 0 left, 1 right
    artefact_reach: float  # how far inwards of that side's root the shadow reaches, pixels
    artefact_soft: float  # width of the shadow's lateral edge, pixels
    artefact_strength: float  # fraction of the signal the artefact takes
    lid_thickness: float  # eyelid band thickness over the wall (eyelid only)
    b_lid: float  # eyelid tissue brightness


def _basis(n: int, k: int) -> np.ndarray:
    """``(n, k)`` normalised Gaussian interpolation weights from ``k`` coarse nodes to ``n`` pixels."""
    centres = np.linspace(-0.5, 1.5, k) * n
    spacing = centres[1] - centres[0]
    pos = np.arange(n, dtype=np.float64)[:, None] + 0.5
    w = np.exp(-0.5 * ((pos - centres[None, :]) / spacing) ** 2)
    w /= w.sum(axis=1, keepdims=True)
    return w.astype(np.float32)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """Zero-mean, unit-variance smooth random field with about ``cells`` blobs per image.

    The field is defined on a coarse grid, so it has the same structure at every image size.
    """
    ny, nx = cells
    coarse = rng.standard_normal((2 * ny + 1, 2 * nx + 1)).astype(np.float32)
    field_ = _basis(shape[0], 2 * ny + 1) @ coarse @ _basis(shape[1], 2 * nx + 1).T
    field_ -= field_.mean()
    return field_ / (field_.std() + 1e-6)


def _thickness(s: np.ndarray, t_root: float, t_peak: float, t_pupil: float, s_peak: float) -> np.ndarray:
    """Full iris thickness at ``s``: ``t_root`` at the root, ``t_peak`` at ``s_peak``, ``t_pupil`` at 1."""
    u = np.clip(s / s_peak, 0.0, 1.0)
    v = np.clip((s - s_peak) / (1.0 - s_peak), 0.0, 1.0)
    rise = t_root + (t_peak - t_root) * smoothstep(u)
    fall = t_peak + (t_pupil - t_peak) * smoothstep(v)
    return np.where(s <= s_peak, rise, fall)


def _roughness(rng: np.random.Generator, unit: float) -> np.ndarray:
    """Relative anterior-surface relief at the nodes: crypts (< 0) and folds (> 0), zero at both ends.

    ``unit`` is 1 % of the image width over the half's length: bump widths and spacing are fractions
    of the width, so a short half gets fewer bumps, not wider ones. The relief averages to zero over
    the half, so it roughens the surface without shifting the thickness profile.
    """
    r = np.zeros_like(_S)
    for _ in range(max(2, int(round(1.0 / (rng.uniform(3.5, 6.0) * unit))))):
        centre = rng.uniform(0.1, 0.9)
        width = rng.uniform(1.2, 2.8) * unit
        amp = -rng.uniform(0.08, 0.25) if rng.random() < 0.65 else rng.uniform(0.04, 0.12)
        r += amp * np.exp(-0.5 * ((_S - centre) / width) ** 2)
    period, phase = rng.uniform(5.0, 9.0) * unit, rng.uniform(0.0, 2.0 * math.pi)
    r += rng.uniform(0.02, 0.05) * np.sin(2.0 * math.pi * _S / period + phase)
    ends = smoothstep((_S - 0.03) / 0.12) * smoothstep((0.97 - _S) / 0.12)
    r = np.clip(r, -0.4, 0.3) * ends
    return r - ends * (r.sum() / ends.sum())


def _lens_row(p_lens: tuple[float, float, float], x: np.ndarray | float) -> np.ndarray:
    """Row of the anterior lens surface ``(lens_x, lens_y, lens_k)`` at column ``x`` (anatomy frame)."""
    lx, ly, lk = p_lens
    return ly + lk * (np.asarray(x) - lx) ** 2


def _draw_side(
    rng: np.random.Generator,
    sign: float,
    common: dict[str, float],
    lens: tuple[float, float, float],
    h: int,
    w: int,
) -> _IrisSide:
    """Draw one iris half (``sign`` -1 left, +1 right) around ``common`` and the lens surface ``lens``."""
    s = common["scale"]
    x_root = sign * (common["root_x"] + rng.uniform(-0.012, 0.012)) * w * s
    x_pupil = common["pupil_x"] * w + sign * (common["pupil_r"] + rng.uniform(-0.006, 0.006)) * w * s
    y_root = (common["root_y"] + rng.uniform(-0.008, 0.008)) * h * s
    # The forward bow scales with the half's length (squeezed when the image is much wider than high,
    # so that very elongated images do not turn a thin iris into a steep, broken staircase).
    length = abs(x_pupil - x_root)
    bend = length * min(1.0, h / w)

    # Thickness profile (full thickness, of the width): thickest at the collarette, thinner at both ends.
    t_peak = common["t_peak"] * rng.uniform(0.94, 1.06) * w * s
    t_root = max(t_peak * common["root_ratio"] * rng.uniform(0.95, 1.05), 3.0)
    t_pupil = max(t_peak * common["pupil_ratio"], 2.0)
    t_peak = max(t_peak, t_root)
    thick = _thickness(_S, t_root, t_peak, t_pupil, common["s_peak"] + rng.uniform(-0.03, 0.03))

    # Posterior surface: from the root's posterior edge it rises (step) and bows forwards (bump) to the
    # point just in front of the lens at the pupil margin; from ``contact`` on it follows the lens.
    xs = x_root + (x_pupil - x_root) * _S
    gap = common["gap"] * h * s
    on_lens = _lens_row(lens, xs) - gap  # just in front of the lens
    post_root = y_root + 0.5 * t_root
    step = _S * _S * (3.0 - 2.0 * _S)
    bump = 16.0 * _S * _S * (1.0 - _S) * (1.0 - _S)
    bow = (common["bow"] + rng.uniform(-0.01, 0.01)) * bend
    free = post_root + (on_lens[-1] - post_root) * step - bow * bump
    contact = common["contact"]
    wgt = smoothstep((_S - contact) / (1.0 - contact))
    post = free * (1.0 - wgt) + on_lens * wgt
    # Never through the lens: a soft clamp (a few pixels wide) keeps it in front of the lens surface.
    k = max(0.004 * h * s, 0.5)
    post = on_lens - k * np.logaddexp(0.0, (on_lens - post) / k)
    post = post + (post_root - post[0]) * (1.0 - smoothstep(_S / 0.3))  # the root stays where drawn

    rough = _roughness(rng, 0.01 * w * s / length)
    ant = post - thick * (1.0 + rough)
    return _IrisSide(
        x_root=x_root,
        x_pupil=x_pupil,
        y_root=y_root,
        h_root=0.5 * t_root,
        h_pupil=0.5 * t_pupil,
        anterior=ant,
        posterior=post,
        cb_width=rng.uniform(1.8, 2.8),
        cb_slope=math.tan(math.radians(rng.uniform(25.0, 45.0))),
        cb_inward=rng.uniform(0.08, 0.14) * w * s,
        cb_depth=rng.uniform(0.05, 0.09) * h * s,
    )


def _draw_params(rng: np.random.Generator, h: int, w: int, safe: bool = False) -> _Params:
    """Draw the pose, anatomy and appearance of one case.

    Args:
        rng: random generator (the only source of randomness).
        h: image height.
        w: image width.
        safe: centre the pose, no tilt and a smaller scale (fallback when every draw was rejected).

    Returns:
        The drawn parameters.
    """
    scale = rng.uniform(0.9, 1.06)
    dx, dy = rng.uniform(-0.04, 0.04), rng.uniform(-0.05, 0.04)
    tilt = math.radians(rng.uniform(-5.0, 5.0))
    if safe:
        scale, dx, dy, tilt = 0.9, 0.0, 0.0, 0.0
    natural = bool(rng.random() >= 0.15)
    common = {
        "scale": scale,
        "root_x": rng.uniform(0.32, 0.37),
        "pupil_x": rng.uniform(-0.015, 0.015),
        "pupil_r": rng.uniform(0.05, 0.15),
        "root_y": rng.uniform(0.03, 0.1),
        "bow": rng.uniform(0.03, 0.11) if natural else rng.uniform(0.0, 0.05),
        "t_peak": rng.uniform(0.038, 0.05),
        "root_ratio": rng.uniform(0.55, 0.72),
        "pupil_ratio": rng.uniform(0.32, 0.48),
        "s_peak": rng.uniform(0.42, 0.58),
        "contact": rng.uniform(0.45, 0.7),
        "gap": rng.uniform(0.002, 0.01) if natural else rng.uniform(0.01, 0.025),
    }
    # Lens: the anterior surface is a parabola whose apex sits ``vault`` in front of the roots' line.
    mean_root_y = common["root_y"] * h * scale
    if natural:
        vault = rng.uniform(-0.02, 0.06) * h * scale
        sag = rng.uniform(0.05, 0.11) * h * scale  # at 0.3 w from the apex
        lens_half_width = rng.uniform(0.24, 0.3) * w * scale
    else:
        vault = rng.uniform(-0.045, 0.0) * h * scale
        sag = rng.uniform(0.02, 0.05) * h * scale
        lens_half_width = rng.uniform(0.15, 0.19) * w * scale
    lens_x = common["pupil_x"] * w + rng.uniform(-0.01, 0.01) * w
    lens = (lens_x, mean_root_y - vault, sag / (0.3 * w * scale) ** 2)
    left = _draw_side(rng, -1.0, common, lens, h, w)
    right = _draw_side(rng, 1.0, common, lens, h, w)

    # Eye wall: posterior surface is an ellipse through the apex and, on each side, through the point
    # P at the root's row, a ciliary-body strip outwards of the iris tip. A shallow dome (depth from the
    # posterior apex to P about half of P's distance from the axis) meets the iris at a narrow angle.
    apex_post = mean_root_y - rng.uniform(0.2, 0.28) * h * scale
    cos_p = rng.uniform(0.45, 0.75)
    mean_y_root = 0.5 * (left.y_root + right.y_root)
    wall_b = (mean_y_root - apex_post) / (1.0 - cos_p)
    wall_y0 = apex_post + wall_b
    a_sides, thetas = [], []
    for side in (left, right):
        cos_side = float(np.clip((wall_y0 - side.y_root) / wall_b, 0.05, 0.9))
        sin_side = math.sqrt(1.0 - cos_side * cos_side)
        x_p = abs(side.x_root) + side.cb_width * side.h_root
        a_sides.append(x_p / sin_side)
        thetas.append(math.atan2(sin_side, cos_side))
    cornea_t = rng.uniform(0.018, 0.028) * h * scale

    artefact: str | None = None
    if rng.random() < 0.2:
        artefact = "eyelid" if rng.random() < 0.5 else "shadow"
    layers = tuple(
        (rng.uniform(0.015, 0.3) * h * scale, rng.uniform(0.004, 0.015) * h * scale, rng.uniform(0.3, 1.0))
        for _ in range(int(rng.integers(3, 7)))
    )
    return _Params(
        cx=w * (0.5 + dx),
        cy=h * (0.5 + dy),
        tilt=tilt,
        left=left,
        right=right,
        wall_y0=wall_y0,
        wall_b=wall_b,
        wall_a_left=a_sides[0],
        wall_a_right=a_sides[1],
        theta_left=thetas[0],
        theta_right=thetas[1],
        cornea_t=cornea_t,
        sclera_t=cornea_t * rng.uniform(3.5, 5.0),
        lens_natural=natural,
        lens_x=lens[0],
        lens_y=lens[1],
        lens_k=lens[2],
        lens_half_width=lens_half_width,
        lens_capsule=max(rng.uniform(0.0025, 0.0045) * h * scale, 0.6),
        lens_depth=(rng.uniform(0.28, 0.36) if natural else rng.uniform(0.04, 0.07)) * h * scale,
        lens_layers=layers,
        b_iris=rng.uniform(0.4, 0.6),
        b_border=rng.uniform(0.04, 0.12),
        b_cb=rng.uniform(0.85, 1.1),
        b_cornea=rng.uniform(0.5, 0.68),
        b_sclera=rng.uniform(0.78, 0.98),
        b_lens=rng.uniform(0.65, 0.95) if natural else rng.uniform(0.4, 0.7),
        b_lens_body=rng.uniform(0.22, 0.4),
        b_chamber=rng.uniform(0.01, 0.03),
        pe_gain=rng.uniform(0.15, 0.35),
        seam=rng.uniform(0.03, 0.15),
        shadow=rng.uniform(0.75, 0.92),
        attenuation=rng.uniform(0.5, 1.2),
        speckle=rng.uniform(0.2, 0.32),
        cornea_speckle=rng.uniform(0.25, 0.45),
        noise_floor=rng.uniform(0.005, 0.015),
        gain=rng.uniform(0.92, 1.15),
        gamma=rng.uniform(0.85, 1.15),
        reflex=rng.uniform(0.2, 0.45),
        reflex_width=max(rng.uniform(0.0012, 0.003) * w, 0.6),
        reflex_offset=rng.uniform(-0.004, 0.004) * w,
        root_blur=max(rng.uniform(0.006, 0.012) * w, 0.8),
        root_blur_radius=rng.uniform(0.035, 0.05) * w * scale,
        edge=max(0.004 * w, 1.0),
        artefact=artefact,
        artefact_side=int(rng.integers(0, 2)),
        artefact_reach=rng.uniform(0.04, 0.12) * w * scale,
        artefact_soft=max(rng.uniform(0.01, 0.03) * w, 1.0),
        artefact_strength=rng.uniform(0.8, 0.94),
        lid_thickness=rng.uniform(0.06, 0.14) * h * scale,
        b_lid=rng.uniform(0.3, 0.5),
    )


def _to_image(p: _Params, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Anatomy-frame points to image ``(row, col)``."""
    c, s = math.cos(p.tilt), math.sin(p.tilt)
    return p.cy + s * x + c * y, p.cx + c * x - s * y


def _root_point(side: _IrisSide) -> tuple[float, float]:
    """Anatomy-frame ``(x, y)`` of the root keypoint: one pixel inside the peripheral tip."""
    return side.x_root + side.outward * max(side.h_root - 1.0, 0.0), side.y_root


def _true_geometry(p: _Params) -> dict[str, dict[str, np.ndarray]]:
    """The drawn shape of each half in image ``[row, col]`` coordinates, for the true measures.

    Per half (``"left"``, ``"right"``): ``outline`` ``(N, 2)``, the closed boundary of the band and
    its two end caps (root cap, anterior surface root to pupil, pupil cap, posterior surface back;
    surfaces sampled 4 times finer than the nodes); ``root`` ``(2,)``, the root keypoint; ``midline``
    ``(M, 2)``, the root keypoint and then the points halfway between the two surfaces from the root
    (``s = 0``) to the pupil end (``s = 1``). Nothing here draws from the generator, so the images stay
    those of the seed. :func:`glsmonai.measure.truth.true_measures` turns this into measures.
    """
    out = {}
    s = np.linspace(0.0, 1.0, 4 * (_NODES - 1) + 1)
    cap = np.linspace(-0.5 * math.pi, 0.5 * math.pi, 49)
    for name, side in (("left", p.left), ("right", p.right)):
        xs = side.x_root + (side.x_pupil - side.x_root) * s
        ant, post = side.surfaces(s)
        o = side.outward
        back = cap[::-1]
        xy = np.concatenate([
            np.stack([side.x_root + o * side.h_root * np.cos(back), side.y_root + side.h_root * np.sin(back)], 1),
            np.stack([xs, ant], 1)[1:],
            np.stack([side.x_pupil - o * side.h_pupil * np.cos(cap), side.y_pupil + side.h_pupil * np.sin(cap)], 1)[1:],
            np.stack([xs, post], 1)[::-1][1:-1],
        ])
        rows, cols = _to_image(p, xy[:, 0], xy[:, 1])
        kx, ky = _root_point(side)
        root = np.array([float(v) for v in _to_image(p, np.array(kx), np.array(ky))])
        mr, mc = _to_image(p, xs, 0.5 * (ant + post))
        out[name] = {
            "outline": np.stack([rows, cols], axis=1),
            "root": root,
            "midline": np.concatenate([root[None], np.stack([mr, mc], axis=1)]),
        }
    return out


def _side_outline(p: _Params, side: _IrisSide) -> tuple[np.ndarray, np.ndarray]:
    """Image ``(rows, cols)`` of points sampled on the analytic outline of one half."""
    rows, cols = [], []
    ang = np.linspace(0.0, 2.0 * math.pi, 24, endpoint=False)
    xs = side.x_root + (side.x_pupil - side.x_root) * _S
    for yy in (side.anterior, side.posterior):
        r, q = _to_image(p, xs, yy)
        rows.append(r)
        cols.append(q)
    for xe, ye, rad in ((side.x_root, side.y_root, side.h_root), (side.x_pupil, side.y_pupil, side.h_pupil)):
        r, q = _to_image(p, xe + rad * np.cos(ang), ye + rad * np.sin(ang))
        rows.append(r)
        cols.append(q)
    return np.concatenate(rows), np.concatenate(cols)


def _outline_ok(p: _Params, h: int, w: int) -> bool:
    """Whether the analytic outline of both halves keeps clear of the borders."""
    for side in (p.left, p.right):
        rr, cc = _side_outline(p, side)
        mr, mc = _CHECK_FRACTION * h, _CHECK_FRACTION * w
        if not (rr.min() >= mr and rr.max() <= h - 1 - mr and cc.min() >= mc and cc.max() <= w - 1 - mc):
            return False
    return True


def _grid(p: _Params, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Anatomy-frame ``(x, y)`` (float32, pixels) of the grid ``rows`` x ``cols`` of image coordinates."""
    c, s = np.float32(math.cos(p.tilt)), np.float32(math.sin(p.tilt))
    dr = rows.astype(np.float32)[:, None] - np.float32(p.cy)
    dc = cols.astype(np.float32)[None, :] - np.float32(p.cx)
    return c * dc + s * dr, -s * dc + c * dr


def _iris_distance(
    side: _IrisSide, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distance-like field of one half (pixels, positive inside), its ``s`` and its surface rows.

    The half is the band between the anterior and posterior surfaces for ``0 <= s <= 1`` (vertical
    distances, the band being nearly horizontal), closed by a round cap at each end.

    Returns:
        ``(distance, s, anterior row, posterior row)``, float32.
    """
    s = (x - np.float32(side.x_root)) / np.float32(side.x_pupil - side.x_root)
    ant, post = side.surfaces(s)
    band = np.minimum(y - ant, post - y)
    band = np.where((s >= 0.0) & (s <= 1.0), band, _NEG)
    d_root = side.h_root - np.hypot(x - side.x_root, y - side.y_root)
    d_pupil = side.h_pupil - np.hypot(x - side.x_pupil, y - side.y_pupil)
    d = np.maximum(band, np.maximum(d_root, d_pupil))
    f32 = np.float32
    return d.astype(f32), s.astype(f32), ant.astype(f32), post.astype(f32)


def _segment_mask(p: _Params, side: _IrisSide, h: int, w: int) -> np.ndarray:
    """Full-resolution mask of one half, computed inside its bounding box."""
    rr, cc = _side_outline(p, side)
    r0, r1 = max(int(math.floor(rr.min())) - 3, 0), min(int(math.ceil(rr.max())) + 4, h)
    c0, c1 = max(int(math.floor(cc.min())) - 3, 0), min(int(math.ceil(cc.max())) + 4, w)
    mask = np.zeros((h, w), dtype=bool)
    if r1 <= r0 or c1 <= c0:
        return mask
    x, y = _grid(p, np.arange(r0, r1), np.arange(c0, c1))
    mask[r0:r1, c0:c1] = ndimage.binary_fill_holes(largest_component(_iris_distance(side, x, y)[0] >= 0))
    return mask


def _iris_fields(
    p: _Params, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Iris distance, ``s`` and surface rows on a grid, each pixel taken from its own side."""
    right_half = x >= np.float32(0.5 * (p.left.x_pupil + p.right.x_pupil))
    left_f = _iris_distance(p.left, x, y)
    right_f = _iris_distance(p.right, x, y)
    return tuple(np.where(right_half, right, left) for left, right in zip(left_f, right_f))  # type: ignore[return-value]


def _upsample(img: np.ndarray, factor: int, h: int, w: int) -> np.ndarray:
    """Bilinear upsampling to ``(h, w)`` of a grid whose pixel ``i`` sits at ``i * f + (f - 1) / 2``."""
    if factor == 1:
        return img[:h, :w]
    for axis, n in ((0, h), (1, w)):
        u = (np.arange(n, dtype=np.float64) - 0.5 * (factor - 1)) / factor
        i0 = np.floor(u)
        frac = (u - i0).astype(np.float32)
        last = img.shape[axis] - 1
        lo = np.clip(i0, 0, last).astype(np.intp)
        hi = np.clip(i0 + 1, 0, last).astype(np.intp)
        if axis == 0:
            img = img[lo] * (1.0 - frac[:, None]) + img[hi] * frac[:, None]
        else:
            img = img[:, lo] * (1.0 - frac[None, :]) + img[:, hi] * frac[None, :]
    return img


def _wall_fields(
    p: _Params, x: np.ndarray, y: np.ndarray, iterations: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signed distance to the posterior surface of the eye wall and the position along it.

    Above each angle point P the posterior surface is the ellipse ``(a sin t, y0 - b cos t)``
    (``t = 0`` at the apex; one ``a`` per side, so that it passes through that side's P). Past P it
    continues as the straight tangent at P: the sclera keeps descending outwards, since the globe is
    wider than the field of view. Distances are exact (a few Newton steps on the ellipse parameter),
    so bands of constant thickness stay continuous across P.

    Args:
        p: drawn parameters.
        x: anatomy-frame x of every pixel.
        y: anatomy-frame y of every pixel.
        iterations: Newton steps for the closest point on the ellipse.

    Returns:
        ``dist`` (pixels, positive outside the posterior surface, i.e. into the wall and beyond),
        ``rel`` (position along the wall: the ellipse parameter over that of P, continued past P by arc
        length) and ``beyond`` (arc length past P in pixels, 0 above P).
    """
    f32 = np.float32
    left = x < 0
    a = np.where(left, f32(p.wall_a_left), f32(p.wall_a_right))
    theta_p = np.where(left, f32(p.theta_left), f32(p.theta_right))
    b, y0 = f32(p.wall_b), f32(p.wall_y0)
    big_x = np.abs(x)
    up = y0 - y  # height above the ellipse centre
    t = np.arctan2(big_x / a, up / b)
    ab = a * a - b * b
    for _ in range(iterations):
        s, c = np.sin(t), np.cos(t)
        g = ab * s * c - big_x * a * c + up * b * s
        dg = ab * (c * c - s * s) + big_x * a * s + up * b * c
        t = np.clip(t - g / np.where(np.abs(dg) < 1e-3, f32(1e-3), dg), 0.0, math.pi)
    s, c = np.sin(t), np.cos(t)
    inside = (big_x / a) ** 2 + (up / b) ** 2 < 1.0
    d_ell = np.hypot(big_x - a * s, y - (y0 - b * c))
    d_ell = np.where(inside, -d_ell, d_ell)

    # Tangent piece past P.
    sp, cp = np.sin(theta_p), np.cos(theta_p)
    px, py = a * sp, y0 - b * cp
    speed = np.sqrt((a * cp) ** 2 + (b * sp) ** 2)
    tx, ty = a * cp / speed, b * sp / speed  # unit tangent, increasing t (outwards, downwards)
    nx, ny = ty, -tx  # outward normal
    tau = (big_x - px) * tx + (y - py) * ty
    d_line = (big_x - px) * nx + (y - py) * ny
    past = tau > 0
    dist = np.where(past, d_line, d_ell)
    beyond = np.maximum(tau, 0.0)
    rel = np.where(past, 1.0 + beyond / (theta_p * speed), t / theta_p)
    return dist.astype(f32), rel.astype(f32), beyond.astype(f32)


def _render(rng: np.random.Generator, p: _Params, h: int, w: int, keypoints: np.ndarray) -> np.ndarray:
    """Render the ``(h, w)`` B-scan (float32 in [0, 1]) for the drawn parameters.

    The smooth anatomy (and a map of the speckle strength) is rendered on a grid coarser by an integer
    factor for big images (its edges are several pixels soft anyway) and upsampled; speckle, blur,
    attenuation, the reflex line and noise are applied at full resolution. All lengths stay in
    full-resolution pixels.
    """
    f32 = np.float32
    e = p.edge
    factor = max(1, int(round(max(h, w) / _RENDER_MAX_SIDE)))
    offset = 0.5 * (factor - 1)
    grid_rows = np.arange(-(-h // factor)) * factor + offset
    grid_cols = np.arange(-(-w // factor)) * factor + offset
    x, y = _grid(p, grid_rows, grid_cols)
    right_half = x >= f32(0.5 * (p.left.x_pupil + p.right.x_pupil))
    d_iris, s_iris, ant_iris, post_iris = _iris_fields(p, x, y)
    shape = x.shape
    tex_a = _smooth_noise(rng, shape, (10, 14))
    tex_b = _smooth_noise(rng, shape, (22, 34))
    tex_c = _smooth_noise(rng, shape, (5, 6))

    # ---- eye wall (cornea + sclera): a shell outside the posterior surface ----
    dist, rel, beyond = _wall_fields(p, x, y)
    phi = np.minimum(rel, 1.0) * np.where(x < 0, f32(p.theta_left), f32(p.theta_right))
    sclera_w = smoothstep((rel - 0.85) / 0.3)
    thick = p.cornea_t * (1.0 + 0.45 * np.minimum(rel, 1.0) ** 2)
    thick = thick + (p.sclera_t - 1.45 * p.cornea_t) * smoothstep((rel - 0.8) / 0.6)
    fade = 1.0 - smoothstep((beyond - 0.15 * h) / (0.2 * h))
    m_wall = soft_edge(dist, e) * soft_edge(thick - dist, e) * fade
    # The cornea is smooth and dims where the beam hits it obliquely; the sclera scatters strongly
    # whatever the angle and is more textured.
    cornea_val = p.b_cornea * (0.65 + 0.35 * np.cos(np.minimum(phi, 1.5)) ** 1.5) * (1.0 + 0.04 * tex_c)
    cornea_val = cornea_val + 0.2 * np.exp(-(((thick - dist) / (0.1 * p.cornea_t + 0.5)) ** 2))
    cornea_val = cornea_val + 0.1 * np.exp(-((dist / (0.08 * p.cornea_t + 0.5)) ** 2))
    sclera_val = p.b_sclera * (1.0 + 0.15 * tex_b + 0.1 * tex_a)
    wall_val = cornea_val * (1.0 - sclera_w) + sclera_val * sclera_w

    # ---- ciliary body: a band along the inner wall from the angle down, about as bright as the iris,
    # wrapping the iris root (its anterior face rises outwards from the root to the wall) ----
    m_cb = np.zeros(shape, dtype=f32)
    for side, half in ((p.left, ~right_half), (p.right, right_half)):
        xi = side.outward * (x - side.x_root)  # outward distance from the root centre
        top_line = side.y_root - side.h_root * 0.9 - np.maximum(xi, 0.0) * side.cb_slope
        cb_t = (side.cb_width + 0.5) * side.h_root
        hug = np.exp(-((np.maximum(-dist - cb_t, 0.0) / (0.35 * cb_t)) ** 2))
        down = np.exp(-((np.maximum(y - side.y_root, 0.0) / side.cb_depth) ** 2))
        m = soft_edge(y - top_line, e) * soft_edge(xi + side.cb_inward, e) * soft_edge(-dist, e) * hug * down
        m_cb = np.where(half, m, m_cb)
    cb_val = p.b_iris * p.b_cb * (1.0 + 0.22 * tex_a + 0.12 * tex_b)

    # ---- lens ----
    xl = x - f32(p.lens_x)
    dl = y - (f32(p.lens_y) + f32(p.lens_k) * xl * xl)  # depth below the anterior surface
    lat = np.exp(-((xl / f32(p.lens_half_width)) ** 6))
    if p.lens_natural:
        capsule = p.b_lens * np.exp(-((dl / p.lens_capsule) ** 2)) * lat
        # Body: moderate brightness with horizontal layers, dimmer right under the capsule, ending at
        # a faint posterior capsule.
        layers = np.full(shape, 0.45, dtype=f32)
        for depth, width, weight in p.lens_layers:
            layers += f32(0.55 * weight) * np.exp(-(((dl - depth) / width) ** 2))
        depth_back = p.lens_depth - 0.6 * f32(p.lens_k) * xl * xl  # back surface curves the other way
        inside = soft_edge(dl - 0.01 * h, e) * soft_edge(depth_back - dl, e)
        body = p.b_lens_body * layers * (1.0 + 0.15 * tex_c + 0.08 * tex_b) * inside * lat
        back = 0.35 * p.b_lens * np.exp(-(((dl - depth_back) / (1.5 * p.lens_capsule)) ** 2)) * lat
        lens_val = capsule + body + back
    else:
        front = p.b_lens * np.exp(-((dl / p.lens_capsule) ** 2))
        back = 0.5 * p.b_lens * np.exp(-(((dl - p.lens_depth) / p.lens_capsule) ** 2))
        lens_val = (front + back) * lat + 0.02 * soft_edge(dl, e) * soft_edge(p.lens_depth - dl, e) * lat

    # ---- iris ----
    m_iris = soft_edge(d_iris, e)
    root_w = 1.0 - smoothstep(s_iris / 0.35)
    pe_w = smoothstep((s_iris - 0.08) / 0.3)
    iris_val = p.b_iris * (1.0 + 0.2 * tex_a + 0.15 * tex_b)
    to_post = np.maximum(post_iris - y, 0.0)
    to_ant = np.maximum(y - ant_iris, 0.0)
    iris_val = iris_val + p.pe_gain * pe_w * np.exp(-((to_post / (0.5 + 0.004 * w)) ** 2))
    iris_val = iris_val + p.b_border * np.exp(-((to_ant / (0.5 + 0.004 * w)) ** 2))
    iris_val = iris_val * (1.0 - root_w * 0.5) + cb_val * (root_w * 0.5)

    # ---- composite: background -> lens -> ciliary body -> wall -> iris ----
    # Air outside the eye is black; the aqueous in the chambers scatters a little (flare).
    img = p.b_chamber * soft_edge(-dist, e) * (1.0 + 0.5 * tex_c) + 0.005 * np.abs(tex_b)
    img = img + lens_val
    img = img * (1.0 - m_cb) + cb_val * m_cb
    img = img * (1.0 - m_wall) + wall_val * m_wall
    img = img * (1.0 - m_iris) + iris_val * m_iris

    # ---- faint cleft at the root and shadow under the iris (beam goes down the columns) ----
    for side, half in ((p.left, ~right_half), (p.right, right_half)):
        rx, ry = side.x_root + side.outward * side.h_root, side.y_root
        near = np.exp(-((x - rx) ** 2 + (y - ry) ** 2) / (2.0 * (1.5 * side.h_root) ** 2))
        cleft = p.seam * near * np.exp(-((d_iris / (0.5 + 0.003 * w)) ** 2))
        img = np.where(half, img * (1.0 - cleft), img)
    below = soft_edge(y - post_iris, e) * soft_edge(-d_iris, e)  # under the posterior border, outside
    cols = smoothstep((s_iris - 0.12) / 0.25) * smoothstep((1.04 - s_iris) / 0.08) * (s_iris >= 0)
    img = img * (1.0 - p.shadow * below * cols)

    # ---- eyelid or lashes at one side: the columns under them lose most of their signal ----
    if p.artefact is not None:
        kc = float(keypoints[p.artefact_side, 1])
        inward = 1.0 if p.artefact_side == 0 else -1.0
        colv = _to_image(p, x, y)[1] - f32(kc)  # image column of every grid pixel, from the root
        across = smoothstep((p.artefact_reach - inward * colv) / p.artefact_soft)
        if p.artefact == "eyelid":  # textured tissue over the wall, in front of everything it shades
            gap = 0.01 * h  # between the lid and the cornea (tear film, air)
            under = soft_edge(thick + gap - dist, e)
            img = img * (1.0 - p.artefact_strength * across * under)
            # A band over the wall whose margin (inner end) is rounded; it lies over the limbus only.
            u = (p.artefact_reach + 0.5 * p.artefact_soft - inward * colv) / p.lid_thickness
            u = np.clip(u, 0.0, 1.0)
            lid_t = p.lid_thickness * np.sqrt(1.0 - (1.0 - u) ** 2)
            lid = soft_edge(dist - thick - gap, e) * soft_edge(thick + gap + lid_t - dist, 2.0 * e)
            lid = lid * smoothstep(lid_t / e) * (1.0 - smoothstep((rel - 0.95) / 0.3))
            lid_val = p.b_lid * (1.0 + 0.3 * tex_a + 0.2 * tex_b)
            img = img * (1.0 - lid) + lid_val * lid
        else:  # lashes: a shadow down the whole columns, with a few darker stripes
            stripes = 0.85 + 0.15 * np.cos(colv / max(0.01 * w, 1.0)) ** 2
            img = img * (1.0 - p.artefact_strength * across * stripes)

    # ---- extra blur at the roots: the iris melts into the ciliary body ----
    img = img.astype(np.float32)
    for kr, kc in (keypoints - offset) / factor:
        rad, sigma = p.root_blur_radius / factor, p.root_blur / factor
        half_win = int(math.ceil(3.0 * rad + 3.0 * sigma))
        r0, r1 = max(int(kr) - half_win, 0), min(int(kr) + half_win + 1, shape[0])
        c0, c1 = max(int(kc) - half_win, 0), min(int(kc) + half_win + 1, shape[1])
        crop = img[r0:r1, c0:c1]
        blurred = ndimage.gaussian_filter(crop, sigma, truncate=3.0)
        rr = np.arange(r0, r1, dtype=np.float32)[:, None] - kr
        cc = np.arange(c0, c1, dtype=np.float32)[None, :] - kc
        wgt = np.exp(-(rr * rr + cc * cc) / (2.0 * rad * rad))
        img[r0:r1, c0:c1] = crop * (1.0 - wgt) + blurred * wgt

    # Speckle strength: the cornea is much smoother than the other tissues.
    spk = (1.0 - (1.0 - p.cornea_speckle) * m_wall * (1.0 - sclera_w) * (1.0 - m_iris)).astype(f32)
    img = _upsample(img, factor, h, w)
    spk = _upsample(spk, factor, h, w) * f32(p.speckle)

    # ---- speckle, point-spread blur, depth attenuation, reflex, noise floor ----
    # Speckle grain and point-spread blur grow more slowly than the anatomy: a bigger image is a finer
    # sampling of the same optics, so its speckle stays a few pixels wide (fine grain).
    grain = math.sqrt(w / 288.0)
    sp_sigma = max(0.45 * grain, 0.5)
    noise = rng.standard_normal((h, w), dtype=np.float32)
    noise = ndimage.gaussian_filter(noise, sp_sigma, truncate=3.0)
    noise /= noise.std() + 1e-6
    img = img * np.exp(spk * noise - 0.5 * spk * spk)
    psf = (max(0.35 * grain, 0.35), max(0.5 * grain, 0.5))
    img = ndimage.gaussian_filter(img, psf, truncate=3.0)

    apex_row, apex_col = _to_image(p, np.array(0.0), np.array(p.wall_y0 - p.wall_b - p.cornea_t))
    rows = np.arange(h, dtype=np.float32)[:, None]
    depth = np.maximum(rows - float(apex_row), 0.0) / h
    img = img * np.exp(-p.attenuation * depth)

    colv = np.arange(w, dtype=np.float32)[None, :] - (float(apex_col) + p.reflex_offset)
    line = np.exp(-0.5 * (colv / p.reflex_width) ** 2)
    along = 0.35 + 0.65 * np.exp(-np.maximum(rows - float(apex_row), 0.0) / (0.3 * h))
    img = img + p.reflex * line * along * (0.8 + 0.2 * np.clip(noise, -2.0, 2.0) / 2.0)

    img = img + p.noise_floor * np.abs(rng.standard_normal((h, w), dtype=np.float32))
    img = np.clip(img * p.gain, 0.0, 1.0) ** p.gamma
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def make_iris_case(rng: np.random.Generator, size: tuple[int, int] = (256, 288)) -> SynthCase:
    """Draw one synthetic AS-OCT B-scan with its iris mask and iris-root keypoints.

    Args:
        rng: the only source of randomness; the same generator state gives the same case.
        size: ``(H, W)`` of the image, each at least 32 (tested from 64 x 64 to 1459 x 1713).

    Returns:
        The case: float32 image in ``[0, 1]``, uint8 iris label (two components, left and right
        half), ``(2, 2)`` float64 ``[row, col]`` keypoints (left root, then right root) and ``info``
        (``lens``, ``artefact``, ``hidden_root``, see the module docstring; ``truth``, the drawn shape of
        each half for the true measures, see :func:`_true_geometry`).

    Raises:
        ValueError: ``size`` is not two integers of at least 32.
    """
    h, w = parse_size(size)

    def draw(safe: bool) -> tuple[_Params, np.ndarray] | None:
        p = _draw_params(rng, h, w, safe=safe)
        if not safe and not _outline_ok(p, h, w):
            return None
        left, right = _segment_mask(p, p.left, h, w), _segment_mask(p, p.right, h, w)
        label = left | right
        if left.any() and right.any() and not (left & right).any() and (safe or within_margin(label)):
            return p, label
        return None

    p, label = draw_until(draw, "iris case")

    kps = []
    for side in (p.left, p.right):
        kx, ky = _root_point(side)
        kr, kc = _to_image(p, np.array(kx), np.array(ky))
        kps.append([float(kr), float(kc)])
    keypoints = np.asarray(kps, dtype=np.float64)

    image = _render(rng, p, h, w, keypoints)
    info = {
        "lens": "natural" if p.lens_natural else "artificial",
        "artefact": p.artefact,
        "hidden_root": p.artefact_side if p.artefact is not None else None,
        "truth": _true_geometry(p),
    }
    return SynthCase(image=image, label=label.astype(np.uint8), keypoints=keypoints, info=info)
