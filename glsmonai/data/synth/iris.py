"""Synthetic anterior-segment OCT (AS-OCT) B-scans with an iris mask and the two iris roots.

The generator draws one horizontal B-scan through the anterior segment of the eye, as a swept-source
AS-OCT device shows it (A-scans are image columns, depth grows downwards):

* **Background**: air above the eye and everything the beam does not reach, near black.
* **Cornea and sclera**: one eye wall of varying thickness over an elliptical posterior surface that,
  past the angle, goes on straight along its tangent (the globe is wider than the field of view), fading
  with depth. Its top is the corneal dome,
  a bright band a few percent of the image height thick, convex upwards, with a brighter epithelium
  line on its anterior surface and a thin endothelium line on its posterior one. Towards the left and
  right the wall descends, thickens and turns into the brighter, more diffuse sclera past the limbus.
* **Anterior chamber**: the dark, optically empty space under the dome.
* **Iris**: a left and a right segment, roughly horizontal but following a gentle curve (the pupil end
  usually sits a little more anterior than the root and the stroma may bow forwards). Each segment is
  thick at the periphery (about 4-6 % of the image width) and tapers towards the pupil (about 2 %). Its
  posterior border carries the highly reflective pigment epithelium, which shadows the columns under it.
* **Iris root / angle**: at each periphery the iris root inserts into the ciliary body, which lies
  between the root and the sclera. The ciliary body is only slightly darker than the iris, has the same
  texture, touches the iris tip and is blurred together with it (only a faint cleft may hint at the
  junction), so the exact end of the iris is ambiguous. The dark angle recess (the corner of the
  anterior chamber between the cornea and the iris) closes just above the root. This low-contrast
  junction is the hard region the segmentation product targets.
* **Lens**: the anterior lens capsule, a thin bright curved band behind the pupil that continues,
  shadowed, under the iris, over a faint lens interior.
* **Artefacts**: shadowing under the iris, multiplicative speckle, depth attenuation along the A-scans,
  a thin vertical central reflex line at the corneal apex, a small anisotropic point-spread blur and an
  additive noise floor.

All geometry is expressed as fractions of the image size (horizontal lengths of the width, vertical
lengths of the height, iris thickness of the width, the iris' own bends of the smaller side), so the
same anatomy appears at every scale. The
pose (centre offset, scale, tilt), the shapes and the intensities are drawn from the caller's
``numpy.random.Generator`` only: the same seed gives the same case.

The label is the iris (both segments, value 1). The keypoints are the two iris roots (left first),
each one pixel inside the peripheral tip of its segment, which agrees with the project's
``iris_roots`` mask rule (mean of the pixels furthest along the axis between the segment centroids).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from glsmonai.data.synth.common import (
    SynthCase,
    draw_until,
    largest_component,
    parse_size,
    smoothstep,
    soft_edge,
    within_margin,
)

__all__ = ["SynthCase", "make_iris_case"]

_CHECK_FRACTION = 0.058  # analytic check, a little stricter than BORDER_FRACTION to absorb rasterisation
_RENDER_MAX_SIDE = 700  # anatomy is rendered on a grid about this size, then upsampled
_NEG = -1.0e6


@dataclass(frozen=True)
class _IrisSide:
    """Geometry of one iris segment in the anatomy frame (pixels, x to the right, y downwards)."""

    x_root: float
    x_pupil: float
    y_root: float
    y_pupil: float
    bow: float
    h_root: float
    h_pupil: float
    taper: float
    wave_amp: float
    wave_freq: float
    wave_phase: float
    cb_width: float  # ciliary-body strip between the iris tip and the eye wall, in h_root units
    cb_slope: float  # tan of the rise of the ciliary body's anterior face, outwards
    cb_inward: float  # how far the ciliary body reaches under the iris, pixels
    cb_radius: float  # radius after which the ciliary body fades, pixels

    @property
    def outward(self) -> float:
        """+1 if the periphery is to the right of the pupil end, -1 otherwise."""
        return 1.0 if self.x_root > self.x_pupil else -1.0

    def centreline(self, s: np.ndarray) -> np.ndarray:
        """Row of the centreline at fraction ``s`` (0 root, 1 pupil end); zero slope at both ends."""
        sc = np.clip(s, 0.0, 1.0)
        step = sc * sc * (3.0 - 2.0 * sc)
        bump = 16.0 * sc * sc * (1.0 - sc) * (1.0 - sc)
        return self.y_root + (self.y_pupil - self.y_root) * step - self.bow * bump

    def half_thickness(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Anterior and posterior half-thickness (pixels) at fraction ``s``."""
        sc = np.clip(s, 0.0, 1.0)
        h = self.h_root + (self.h_pupil - self.h_root) * sc**self.taper
        # Gentle undulation of the anterior surface, vanishing at both ends so the caps fit.
        ends = smoothstep(sc / 0.2) * (1.0 - smoothstep((sc - 0.8) / 0.2))
        wave = self.wave_amp * np.sin(2.0 * math.pi * self.wave_freq * sc + self.wave_phase) * ends
        return h * (1.0 + wave), h


@dataclass(frozen=True)
class _Params:
    """Everything drawn for one case (anatomy frame in pixels unless stated)."""

    cx: float
    cy: float
    tilt: float
    left: _IrisSide
    right: _IrisSide
    wall_y0: float
    wall_b: float
    wall_a_left: float
    wall_a_right: float
    theta_left: float
    theta_right: float
    cornea_t: float
    sclera_t: float
    lens_x: float
    lens_y: float
    lens_k: float
    lens_half_width: float
    lens_capsule: float
    b_iris: float
    b_cb: float
    b_cornea: float
    b_sclera: float
    b_lens: float
    b_chamber: float
    pe_gain: float
    seam: float
    shadow: float
    attenuation: float
    speckle: float
    noise_floor: float
    gain: float
    gamma: float
    reflex: float
    reflex_width: float
    reflex_offset: float
    root_blur: float
    root_blur_radius: float
    edge: float


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
    field = _basis(shape[0], 2 * ny + 1) @ coarse @ _basis(shape[1], 2 * nx + 1).T
    field -= field.mean()
    return field / (field.std() + 1e-6)


def _draw_side(rng: np.random.Generator, sign: float, common: dict[str, float], h: int, w: int) -> _IrisSide:
    """Draw one iris segment (``sign`` -1 left, +1 right) around the shared values in ``common``."""
    s = common["scale"]
    x_root = sign * (common["root_x"] + rng.uniform(-0.012, 0.012)) * w * s
    x_pupil = common["pupil_x"] * w + sign * (common["pupil_r"] + rng.uniform(-0.008, 0.008)) * w * s
    y_root = (common["root_y"] + rng.uniform(-0.008, 0.008)) * h * s
    # The band's own bends (rise to the pupil, bow) scale with the smaller side, so that very
    # elongated images do not turn a thin iris into a steep, broken staircase.
    bend = min(h, w) * s
    y_pupil = y_root - common["rise"] * bend
    h_root = common["h_root"] * rng.uniform(0.94, 1.06) * w * s
    h_pupil = max(common["h_pupil"] * w * s, 1.0)
    return _IrisSide(
        x_root=x_root,
        x_pupil=x_pupil,
        y_root=y_root,
        y_pupil=y_pupil,
        bow=(common["bow"] + rng.uniform(-0.004, 0.004)) * bend,
        h_root=max(h_root, 1.5),
        h_pupil=h_pupil,
        taper=common["taper"],
        wave_amp=rng.uniform(0.0, 0.08),
        wave_freq=rng.uniform(1.0, 3.0),
        wave_phase=rng.uniform(0.0, 2.0 * math.pi),
        cb_width=rng.uniform(1.6, 2.4),
        cb_slope=math.tan(math.radians(rng.uniform(20.0, 45.0))),
        cb_inward=rng.uniform(0.08, 0.16) * w * s,
        cb_radius=rng.uniform(0.035, 0.06) * w * s,
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
    dx, dy = rng.uniform(-0.03, 0.03), rng.uniform(-0.035, 0.035)
    tilt = math.radians(rng.uniform(-5.0, 5.0))
    if safe:
        scale, dx, dy, tilt = 0.9, 0.0, 0.0, 0.0
    common = {
        "scale": scale,
        "root_x": rng.uniform(0.30, 0.355),
        "pupil_x": rng.uniform(-0.015, 0.015),
        "pupil_r": rng.uniform(0.06, 0.14),
        "root_y": rng.uniform(0.03, 0.09),
        "rise": rng.uniform(-0.005, 0.05),
        "bow": rng.uniform(-0.01, 0.03),
        "h_root": rng.uniform(0.0245, 0.03),
        "h_pupil": rng.uniform(0.009, 0.0125),
        "taper": rng.uniform(0.7, 1.4),
    }
    left = _draw_side(rng, -1.0, common, h, w)
    right = _draw_side(rng, 1.0, common, h, w)

    # Eye wall: posterior surface is an ellipse through the apex and, on each side, through the point
    # P at the root's row, a ciliary-body strip outwards of the iris tip.
    apex_post = rng.uniform(-0.30, -0.22) * h * scale
    cos_p = rng.uniform(0.1, 0.4)
    mean_root_y = 0.5 * (left.y_root + right.y_root)
    wall_b = (mean_root_y - apex_post) / (1.0 - cos_p)
    wall_y0 = apex_post + wall_b
    a_sides, thetas = [], []
    for side in (left, right):
        cos_side = float(np.clip((wall_y0 - side.y_root) / wall_b, 0.05, 0.8))
        sin_side = math.sqrt(1.0 - cos_side * cos_side)
        x_p = abs(side.x_root) + side.cb_width * side.h_root
        a_sides.append(x_p / sin_side)
        thetas.append(math.atan2(sin_side, cos_side))
    cornea_t = rng.uniform(0.026, 0.04) * h * scale

    # Lens: anterior capsule parabola behind the pupil, always behind the iris' posterior border.
    lens_x = 0.5 * (left.x_pupil + right.x_pupil)
    gap = rng.uniform(0.005, 0.025) * h * scale
    pupil_post = max(float(side.centreline(np.array(1.0))) + side.h_pupil for side in (left, right))
    lens_y = pupil_post + gap
    lens_k = rng.uniform(0.03, 0.09) * h * scale / (0.3 * w * scale) ** 2
    s_samples = np.linspace(0.0, 1.0, 41)
    for side in (left, right):
        xs = side.x_root + (side.x_pupil - side.x_root) * s_samples
        post = side.centreline(s_samples) + side.half_thickness(s_samples)[1]
        need = (post + gap - lens_y) / np.maximum((xs - lens_x) ** 2, 1e-6)
        lens_k = max(lens_k, float(need.max()))

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
        sclera_t=cornea_t * rng.uniform(1.6, 2.3),
        lens_x=lens_x,
        lens_y=lens_y,
        lens_k=lens_k,
        lens_half_width=rng.uniform(0.24, 0.3) * w * scale,
        lens_capsule=max(rng.uniform(0.004, 0.007) * h * scale, 0.6),
        b_iris=rng.uniform(0.45, 0.68),
        b_cb=rng.uniform(0.72, 0.95),
        b_cornea=rng.uniform(0.62, 0.85),
        b_sclera=rng.uniform(0.72, 0.95),
        b_lens=rng.uniform(0.5, 0.85),
        b_chamber=rng.uniform(0.01, 0.03),
        pe_gain=rng.uniform(0.15, 0.35),
        seam=rng.uniform(0.03, 0.15),
        shadow=rng.uniform(0.4, 0.75),
        attenuation=rng.uniform(0.6, 1.4),
        speckle=rng.uniform(0.25, 0.45),
        noise_floor=rng.uniform(0.005, 0.02),
        gain=rng.uniform(0.92, 1.2),
        gamma=rng.uniform(0.85, 1.15),
        reflex=rng.uniform(0.12, 0.35),
        reflex_width=max(rng.uniform(0.0015, 0.004) * w, 0.6),
        reflex_offset=rng.uniform(-0.008, 0.008) * w,
        root_blur=max(rng.uniform(0.006, 0.012) * w, 0.8),
        root_blur_radius=rng.uniform(0.035, 0.05) * w * scale,
        edge=max(0.004 * w, 1.0),
    )


def _to_image(p: _Params, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Anatomy-frame points to image ``(row, col)``."""
    c, s = math.cos(p.tilt), math.sin(p.tilt)
    return p.cy + s * x + c * y, p.cx + c * x - s * y


def _root_point(side: _IrisSide) -> tuple[float, float]:
    """Anatomy-frame ``(x, y)`` of the root keypoint: one pixel inside the peripheral tip."""
    return side.x_root + side.outward * max(side.h_root - 1.0, 0.0), side.y_root


def _side_outline(p: _Params, side: _IrisSide) -> tuple[np.ndarray, np.ndarray]:
    """Image ``(rows, cols)`` of points sampled on the analytic outline of one segment."""
    rows, cols = [], []
    s = np.linspace(0.0, 1.0, 64)
    ang = np.linspace(0.0, 2.0 * math.pi, 24, endpoint=False)
    xs = side.x_root + (side.x_pupil - side.x_root) * s
    c = side.centreline(s)
    top, bot = side.half_thickness(s)
    for yy in (c - top, c + bot):
        r, q = _to_image(p, xs, yy)
        rows.append(r)
        cols.append(q)
    for xe, ye, rad in ((side.x_root, side.y_root, side.h_root), (xs[-1], c[-1], side.h_pupil)):
        r, q = _to_image(p, xe + rad * np.cos(ang), ye + rad * np.sin(ang))
        rows.append(r)
        cols.append(q)
    return np.concatenate(rows), np.concatenate(cols)


def _outline_ok(p: _Params, h: int, w: int) -> bool:
    """Whether the analytic outline of both segments keeps clear of the borders."""
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
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance-like field of one segment (pixels, positive inside), its ``s`` and its centreline row.

    The segment is the band between the anterior and posterior surfaces for ``0 <= s <= 1`` (vertical
    distances, the band being nearly horizontal), closed by a round cap at each end.
    """
    s = (x - side.x_root) / (side.x_pupil - side.x_root)
    c = side.centreline(s)
    top, bot = side.half_thickness(s)
    dy = y - c
    band = np.where(dy < 0, top + dy, bot - dy)
    band = np.where((s >= 0.0) & (s <= 1.0), band, _NEG)
    c_pupil = float(side.centreline(np.array(1.0)))
    d_root = side.h_root - np.hypot(x - side.x_root, y - side.y_root)
    d_pupil = side.h_pupil - np.hypot(x - side.x_pupil, y - c_pupil)
    d = np.maximum(band, np.maximum(d_root, d_pupil))
    return d.astype(np.float32), s.astype(np.float32), c.astype(np.float32)


def _segment_mask(p: _Params, side: _IrisSide, h: int, w: int) -> np.ndarray:
    """Full-resolution mask of one segment, computed inside its bounding box."""
    rr, cc = _side_outline(p, side)
    r0, r1 = max(int(math.floor(rr.min())) - 3, 0), min(int(math.ceil(rr.max())) + 4, h)
    c0, c1 = max(int(math.floor(cc.min())) - 3, 0), min(int(math.ceil(cc.max())) + 4, w)
    mask = np.zeros((h, w), dtype=bool)
    if r1 <= r0 or c1 <= c0:
        return mask
    x, y = _grid(p, np.arange(r0, r1), np.arange(c0, c1))
    mask[r0:r1, c0:c1] = ndimage.binary_fill_holes(largest_component(_iris_distance(side, x, y)[0] >= 0))
    return mask


def _iris_fields(p: _Params, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Iris distance, ``s`` and centreline row on a grid, each pixel taken from its own side."""
    right_half = x >= np.float32(0.5 * (p.left.x_pupil + p.right.x_pupil))
    dl, sl, cl = _iris_distance(p.left, x, y)
    dr, sr, cr = _iris_distance(p.right, x, y)
    return np.where(right_half, dr, dl), np.where(right_half, sr, sl), np.where(right_half, cr, cl)


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

    The smooth anatomy is rendered on a grid coarser by an integer factor for big images (its edges are
    several pixels soft anyway) and upsampled; speckle, blur, attenuation, the reflex line and noise are
    applied at full resolution. All lengths stay in full-resolution pixels.
    """
    f32 = np.float32
    e = p.edge
    factor = max(1, int(round(max(h, w) / _RENDER_MAX_SIDE)))
    offset = 0.5 * (factor - 1)
    grid_rows = np.arange(-(-h // factor)) * factor + offset
    grid_cols = np.arange(-(-w // factor)) * factor + offset
    x, y = _grid(p, grid_rows, grid_cols)
    right_half = x >= f32(0.5 * (p.left.x_pupil + p.right.x_pupil))
    d_iris, s_iris, c_iris = _iris_fields(p, x, y)
    shape = x.shape
    tex_a = _smooth_noise(rng, shape, (10, 14))
    tex_b = _smooth_noise(rng, shape, (22, 34))
    tex_c = _smooth_noise(rng, shape, (5, 6))

    # ---- eye wall (cornea + sclera): a shell outside the posterior surface ----
    dist, rel, beyond = _wall_fields(p, x, y)
    phi = np.minimum(rel, 1.0) * np.where(x < 0, f32(p.theta_left), f32(p.theta_right))
    sclera_w = smoothstep((rel - 0.8) / 0.3)
    thick = p.cornea_t * (1.0 + 0.35 * np.minimum(rel, 1.0) ** 2)
    thick = thick + (p.sclera_t - 1.35 * p.cornea_t) * smoothstep((rel - 0.8) / 0.7)
    fade = 1.0 - smoothstep((beyond - 0.12 * h) / (0.2 * h))
    m_wall = soft_edge(dist, e) * soft_edge(thick - dist, e) * fade
    # The cornea dims where the beam hits it obliquely; the sclera scatters strongly whatever the angle.
    cornea_val = p.b_cornea * (0.6 + 0.4 * np.cos(np.minimum(phi, 1.5)) ** 1.5) * (1.0 + 0.1 * tex_b)
    cornea_val = cornea_val + 0.22 * np.exp(-(((thick - dist) / (0.12 * p.cornea_t + 0.5)) ** 2))
    cornea_val = cornea_val + 0.12 * np.exp(-((dist / (0.08 * p.cornea_t + 0.5)) ** 2))
    sclera_val = p.b_sclera * (1.0 + 0.18 * tex_b + 0.1 * tex_c)
    wall_val = cornea_val * (1.0 - sclera_w) + sclera_val * sclera_w

    # ---- ciliary body: between each iris root and the wall, nearly as bright as the iris ----
    m_cb = np.zeros(shape, dtype=f32)
    for side, half in ((p.left, ~right_half), (p.right, right_half)):
        xi = side.outward * (x - side.x_root)  # outward distance from the root centre
        top_line = side.y_root - side.h_root * 0.9 - np.maximum(xi, 0.0) * side.cb_slope
        r = np.hypot(xi, y - side.y_root)
        cb_fade = np.exp(-((np.maximum(r - side.cb_radius, 0.0) / (0.5 * side.cb_radius)) ** 2))
        m = soft_edge(y - top_line, e) * soft_edge(xi + side.cb_inward, e) * soft_edge(-dist, e) * cb_fade
        m_cb = np.where(half, m, m_cb)
    cb_val = p.b_iris * p.b_cb * (1.0 + 0.22 * tex_a + 0.12 * tex_b)

    # ---- lens: anterior capsule and a faint interior ----
    xl = x - f32(p.lens_x)
    dl = y - (f32(p.lens_y) + f32(p.lens_k) * xl * xl)
    lat = np.exp(-((xl / f32(p.lens_half_width)) ** 4))
    capsule = p.b_lens * np.exp(-((dl / p.lens_capsule) ** 2)) * lat
    interior = 0.09 * soft_edge(dl, e) * np.exp(-np.maximum(dl, 0.0) / (0.2 * h)) * lat * (1.0 + 0.3 * tex_c)
    lens_val = capsule + interior

    # ---- iris ----
    m_iris = soft_edge(d_iris, e)
    top_h = np.maximum(d_iris, 0.0)  # only used inside
    root_w = 1.0 - smoothstep(s_iris / 0.35)
    pe_w = smoothstep((s_iris - 0.08) / 0.3)
    dy = y - c_iris
    iris_val = p.b_iris * (1.0 + 0.2 * tex_a + 0.15 * tex_b)
    post = np.where(dy > 0, top_h, f32(1e3))  # distance to the posterior border below the centreline
    iris_val = iris_val + p.pe_gain * pe_w * np.exp(-((post / (0.5 + 0.004 * w)) ** 2))
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
        near = np.exp(-((x - rx) ** 2 + (y - ry) ** 2) / (2.0 * (1.2 * side.h_root) ** 2))
        cleft = p.seam * near * np.exp(-((d_iris / (0.5 + 0.003 * w)) ** 2))
        img = np.where(half, img * (1.0 - cleft), img)
    below = soft_edge(y - c_iris, e) * soft_edge(-d_iris, e)  # under the posterior border, outside the iris
    cols = smoothstep((s_iris - 0.12) / 0.25) * smoothstep((1.04 - s_iris) / 0.08) * (s_iris >= 0)
    img = img * (1.0 - p.shadow * below * cols)

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

    img = _upsample(img, factor, h, w)

    # ---- speckle, point-spread blur, depth attenuation, reflex, noise floor ----
    # Speckle grain and point-spread blur grow more slowly than the anatomy: a bigger image is a finer
    # sampling of the same optics, so its speckle stays a few pixels wide.
    grain = math.sqrt(w / 288.0)
    sp_sigma = max(0.6 * grain, 0.5)
    noise = rng.standard_normal((h, w), dtype=np.float32)
    noise = ndimage.gaussian_filter(noise, sp_sigma, truncate=3.0)
    noise /= noise.std() + 1e-6
    img = img * np.exp(p.speckle * noise - 0.5 * p.speckle**2)
    psf = (max(0.35 * grain, 0.35), max(0.6 * grain, 0.5))
    img = ndimage.gaussian_filter(img, psf, truncate=3.0)

    apex_row, apex_col = _to_image(p, np.array(0.0), np.array(p.wall_y0 - p.wall_b - p.cornea_t))
    rows = np.arange(h, dtype=np.float32)[:, None]
    depth = np.maximum(rows - float(apex_row), 0.0) / h
    img = img * np.exp(-p.attenuation * depth)

    colv = np.arange(w, dtype=np.float32)[None, :] - (float(apex_col) + p.reflex_offset)
    line = np.exp(-0.5 * (colv / p.reflex_width) ** 2)
    along = 0.45 + 0.55 * np.exp(-np.maximum(rows - float(apex_row), 0.0) / (0.35 * h))
    img = img + p.reflex * line * along * (0.75 + 0.25 * np.clip(noise, -2.0, 2.0) / 2.0)

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
        segment) and ``(2, 2)`` float64 ``[row, col]`` keypoints (left root, then right root).

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
    return SynthCase(image=image, label=label.astype(np.uint8), keypoints=keypoints)
