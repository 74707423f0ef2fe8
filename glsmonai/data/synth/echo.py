"""Synthetic apical echocardiography frames (CAMUS-like) with LV / myocardium / LA masks and keypoints.

The generator draws one apical two- or four-chamber view, as a phased-array probe on the chest shows
it after scan conversion (the probe sits at the top centre, depth grows downwards):

* **Sector**: a fan with its tip at the top centre of the image, 72-88 degrees wide and about one image
  height deep. Everything outside the fan is exactly black. Inside, the non-cardiac tissue is a dim
  grey with a slowly varying texture.
* **Left ventricle (LV, label 1)**: the dark blood pool, an elongated bullet with its apex near the top
  (just below the probe) and its base towards the bottom. The profile is a slightly pointed apical cap
  that widens to the mid-cavity and narrows again towards the mitral annulus; the two walls can be a
  little asymmetric and the long axis is tilted by a few degrees.
* **Myocardium (label 2)**: a brighter, speckled band of nearly constant thickness (thinner at the
  apex, thicker at the base) around the LV, open at the base where the cavity meets the atrium. A
  bright pericardial line runs along its outer border.
* **Left atrium (LA, label 3)**: a dark, roundish chamber below the LV. The mitral plane (slightly
  oblique) separates it from the LV: the LA starts just below it, as wide as the annulus, then widens
  and closes in a rounded roof. The two mitral leaflets are faint bright lines hinged at the annulus,
  anywhere between closed (systole) and open into the LV (diastole).
* **Other structures**: in four-chamber views the right ventricle and right atrium appear as dark
  chambers to the left of the septum; sometimes a descending aorta (a small dark circle) lies behind
  the LA. None of them is labelled.
* **Artefacts**: multiplicative Rayleigh speckle, drawn on the polar beam grid (so its grains grow
  laterally with depth), near-field clutter under the probe, drop-out and clutter at the apex (the
  apical endocardial border fades into haze), a local blur at the mitral annulus (LV, LA and valve
  melt together), depth attenuation, weaker echoes at the fan edges, a small point-spread blur, a noise
  floor, gain and a gamma curve.

The geometry is drawn in a physical frame one unit deep (rows) and 1.25 units wide (cols), mapped onto
the ``(H, W)`` image by independent row and column scales: native CAMUS frames (about 843 x 549) have
anisotropic pixels, and our 512 x 512 subset is a resampled version of them, so every size shows the
same anatomy as fractions of the image. Pose, shapes and intensities are drawn from the caller's
``numpy.random.Generator`` only: the same generator state gives the same case.

The keypoints are the LV apex and the two ends of the mitral annulus (left, i.e. smaller column, then
right). They agree (within about 2 px at 256 x 256) with the project's CAMUS mask rule: the annulus
points are the two ends of the LV / LA contact (along the axis perpendicular to the LV long axis,
averaged over the 2 px at each end), placed analytically; the apex is the LV pixel farthest from their
midpoint, taken from the rasterised cavity (the mean of the pixels tied within a quarter pixel, so a
flat tip row gives its middle rather than an arbitrary end).

The returned case's ``info["truth"]`` is the drawn cavity (its analytic outline and annulus ends), from
which :mod:`glsmonai.measure.truth` computes the true LV measures (``synth echo`` writes them to
``measures_true.csv``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from glsmonai.data.synth.common import SynthCase, draw_until, largest_component, parse_size, smoothstep, soft_edge, within_margin

__all__ = ["SynthCase", "make_echo_case"]

_WIDTH = 1.25  # physical width of the image, in units of its depth


@dataclass(frozen=True)
class _Params:
    """Everything drawn for one case (physical frame: depth 1, width ``_WIDTH``, x = 0 at the centre)."""

    four_chamber: bool
    tip_y: float
    tip_x: float
    sector_r: float
    sector_half: float  # half opening angle, radians
    apex_y: float
    apex_x: float
    tilt: float  # long axis angle from the vertical, radians, positive = base to the right
    length: float  # apex to mitral plane along the long axis
    w_left: float  # maximal half-width of the cavity on each side of the axis
    w_right: float
    cap: float  # fraction of the length taken by the apical cap (widest point)
    point: float  # exponent of the cap profile (> 0.5: pointed apex)
    g_base: float  # half-width at the base over the maximal half-width
    base_slope: float  # tan of the obliquity of the mitral plane
    myo_t: float
    myo_apex: float  # thickness factor at the apex
    myo_base: float  # thickness factor at the base
    peri_t: float
    la_height: float
    la_radius: float
    la_cap: float  # fraction of the LA height over which it widens from the annulus
    la_drift: float  # lateral drift of the LA roof relative to the annulus centre
    rv_width: float
    rv_start: float  # fraction of the LV length where the RV apex lies
    ra_lat: float
    ra_height: float
    septum_gap: float
    aorta_r: float  # 0: no descending aorta
    aorta_dv: float
    b_tissue: float
    b_myo: float
    b_peri: float
    b_blood: float
    b_leaflet: float
    leaflet_t: float
    leaflet_angle: float
    leaflet_len: tuple[float, float]
    clutter: float
    apex_sigma: float
    apex_mix: float
    near_field: float
    near_scale: float
    annulus_sigma: float
    annulus_radius: float
    speckle: float
    attenuation: float
    edge_fall: float
    noise_floor: float
    gain: float
    gamma: float


@dataclass(frozen=True)
class _Geometry:
    """Full-resolution fields shared by the label and the rendering."""

    y: np.ndarray  # (H, 1) physical depth of each row
    x: np.ndarray  # (1, W) physical lateral position of each column
    u: np.ndarray  # (H, W) position along the LV long axis (0 at the apex, downwards)
    v: np.ndarray  # (H, W) position across it (positive to the right)
    below: np.ndarray  # (H, W) distance below the mitral plane along the axis (> 0 in the LA)
    thick: np.ndarray  # (H, W) local myocardium thickness
    dist: np.ndarray  # (H, W) physical distance to the LV cavity
    lv: np.ndarray
    myo: np.ndarray
    la: np.ndarray
    annulus: tuple[tuple[float, float], tuple[float, float]]  # (u, v) of the left and right end


def _bump_weights(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and weights ``(n, 3)`` that spread ``k`` coarse nodes smoothly over ``n`` pixels.

    Each pixel mixes its three nearest nodes with a raised-cosine bump 1.5 nodes wide (rows sum to 1).
    The gathers replace a small matrix product, which a busy multi-threaded BLAS makes slow.
    """
    pos = (np.arange(n, dtype=np.float64) + 0.5) / n * (k - 1)
    idx = np.round(pos).astype(np.intp)[:, None] + np.arange(-1, 2)[None, :]
    dist = np.abs(pos[:, None] - idx)
    wgt = np.where((dist < 1.5) & (idx >= 0) & (idx < k), np.cos(np.pi * dist / 3.0) ** 2, 0.0)
    wgt /= wgt.sum(axis=1, keepdims=True)
    return np.clip(idx, 0, k - 1), wgt.astype(np.float32)


def _texture(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """Zero-mean, unit-variance smooth random field with about ``cells`` blobs along each axis."""
    coarse = rng.standard_normal((cells[0] + 3, cells[1] + 3)).astype(np.float32)
    ri, rw = _bump_weights(shape[0], coarse.shape[0])
    ci, cw = _bump_weights(shape[1], coarse.shape[1])
    rows = np.einsum("nj,njk->nk", rw, coarse[ri])  # (H, k1)
    field = (rows[:, ci] * cw[None, :, :]).sum(axis=2)
    field -= field.mean()
    return field / (field.std() + 1e-6)


def _profile(s: np.ndarray, p: _Params) -> np.ndarray:
    """LV half-width over its maximum at fraction ``s`` of the length (0 apex, 1 mitral plane)."""
    s = np.asarray(s)
    t = np.clip(s / p.cap, 0.0, 1.0)
    apical = np.power(np.clip(1.0 - (1.0 - t) ** 2, 0.0, 1.0), p.point)
    k = np.maximum(s - p.cap, 0.0) / (1.0 - p.cap)
    basal = 1.0 - (1.0 - p.g_base) * k * k
    return np.where(s < p.cap, apical, basal) * (s >= 0.0)


def _annulus_end(p: _Params, side: float) -> tuple[float, float]:
    """``(u, v)`` where one LV wall (``side`` -1 left, +1 right) meets the oblique mitral plane."""
    half = p.w_right if side > 0 else p.w_left
    v = side * half * p.g_base
    for _ in range(12):  # fixed point; contracting, the plane is only a few degrees oblique
        v = side * half * float(_profile(np.array((p.length + p.base_slope * v) / p.length), p))
    return p.length + p.base_slope * v, v


def _local_to_phys(p: _Params, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LV frame ``(u, v)`` to physical ``(y, x)``."""
    c, s = math.cos(p.tilt), math.sin(p.tilt)
    return p.apex_y + c * u - s * v, p.apex_x + s * u + c * v


def _phys_to_pixel(y: np.ndarray, x: np.ndarray, h: int, w: int) -> np.ndarray:
    """Physical ``(y, x)`` to pixel ``[row, col]`` (stacked on the last axis)."""
    return np.stack([np.asarray(y) * h, np.asarray(x) * (w / _WIDTH) + 0.5 * (w - 1)], axis=-1)


def _draw_params(rng: np.random.Generator, safe: bool = False) -> _Params:
    """Draw the view, anatomy and appearance of one case.

    Args:
        rng: random generator (the only source of randomness).
        safe: a compact, centred, untilted pose (fallback when every draw was rejected).

    Returns:
        The drawn parameters.
    """
    four = bool(rng.random() < 0.5)
    length = rng.uniform(0.38, 0.47)
    half_w = length * rng.uniform(0.28, 0.37)
    asym = rng.uniform(0.88, 1.12)
    apex_y = rng.uniform(0.14, 0.2)
    apex_x = rng.uniform(-0.035, 0.035) + (0.03 if four else 0.0)
    tilt = math.radians(rng.uniform(-6.0, 6.0))
    la_height = rng.uniform(0.17, 0.25)
    if safe:
        length, half_w, asym, apex_y, apex_x, tilt, la_height = 0.4, 0.1, 1.0, 0.14, 0.0, 0.0, 0.18
    g_base = rng.uniform(0.74, 0.9)
    return _Params(
        four_chamber=four,
        tip_y=rng.uniform(-0.03, 0.015),
        tip_x=rng.uniform(-0.01, 0.01),
        sector_r=rng.uniform(0.93, 1.0),
        sector_half=math.radians(rng.uniform(36.0, 44.0)),
        apex_y=apex_y,
        apex_x=apex_x,
        tilt=tilt,
        length=length,
        w_left=half_w / math.sqrt(asym),
        w_right=half_w * math.sqrt(asym),
        cap=rng.uniform(0.45, 0.62),
        point=rng.uniform(0.7, 0.9),
        g_base=g_base,
        base_slope=math.tan(math.radians(rng.uniform(-6.0, 6.0))),
        myo_t=rng.uniform(0.035, 0.055),
        myo_apex=rng.uniform(0.7, 0.9),
        myo_base=rng.uniform(1.0, 1.2),
        peri_t=rng.uniform(0.008, 0.016),
        la_height=la_height,
        la_radius=half_w * g_base * rng.uniform(1.0, 1.4),
        la_cap=rng.uniform(0.3, 0.5),
        la_drift=half_w * rng.uniform(-0.25, 0.25),
        rv_width=rng.uniform(0.09, 0.15),
        rv_start=rng.uniform(0.2, 0.35),
        ra_lat=rng.uniform(0.07, 0.1),
        ra_height=rng.uniform(0.14, 0.2),
        septum_gap=rng.uniform(0.015, 0.025),
        aorta_r=rng.uniform(0.025, 0.04) if rng.random() < 0.5 else 0.0,
        aorta_dv=rng.uniform(-0.08, 0.08),
        b_tissue=rng.uniform(0.1, 0.2),
        b_myo=rng.uniform(0.32, 0.5),
        b_peri=rng.uniform(0.5, 0.8),
        b_blood=rng.uniform(0.015, 0.05),
        b_leaflet=rng.uniform(0.2, 0.45),
        leaflet_t=rng.uniform(0.005, 0.008),
        leaflet_angle=math.radians(rng.uniform(-10.0, 75.0)),
        leaflet_len=(rng.uniform(0.75, 1.0), rng.uniform(0.75, 1.0)),
        clutter=rng.uniform(0.3, 0.5),
        apex_sigma=rng.uniform(0.055, 0.075),
        apex_mix=rng.uniform(0.75, 0.95),
        near_field=rng.uniform(0.05, 0.15),
        near_scale=rng.uniform(0.05, 0.09),
        annulus_sigma=rng.uniform(0.012, 0.02),
        annulus_radius=rng.uniform(0.035, 0.055),
        speckle=rng.uniform(0.75, 1.0),
        attenuation=rng.uniform(0.2, 0.8),
        edge_fall=rng.uniform(0.2, 0.5),
        noise_floor=rng.uniform(0.005, 0.02),
        gain=rng.uniform(0.9, 1.25),
        gamma=rng.uniform(0.8, 1.2),
    )


def _geometry(p: _Params, h: int, w: int) -> _Geometry:
    """Rasterise the LV, myocardium and LA on the full ``(h, w)`` grid."""
    f32 = np.float32
    y = (np.arange(h, dtype=f32) / f32(h))[:, None]
    x = ((np.arange(w, dtype=f32) - f32(0.5 * (w - 1))) * f32(_WIDTH / w))[None, :]
    c, s = f32(math.cos(p.tilt)), f32(math.sin(p.tilt))
    dy, dx = y - f32(p.apex_y), x - f32(p.apex_x)
    u = c * dy + s * dx
    v = -s * dy + c * dx
    below = u - (f32(p.length) + f32(p.base_slope) * v)

    g = _profile(u / f32(p.length), p).astype(f32)
    lv = (u >= 0) & (below <= 0) & (v <= g * f32(p.w_right)) & (v >= -g * f32(p.w_left))
    lv = largest_component(lv)  # the chambers have no holes: this drops stray rasterised pixels

    (u_l, v_l), (u_r, v_r) = _annulus_end(p, -1.0), _annulus_end(p, 1.0)
    centre0 = 0.5 * (v_l + v_r)
    w0 = 0.5 * (v_r - v_l) + 1.5 * _WIDTH / w  # a little wider than the annulus: all of it touches
    t = below / f32(p.la_height)
    centre = f32(centre0) + f32(p.la_drift) * smoothstep(t)
    rise = smoothstep(t / f32(p.la_cap))
    roof = np.maximum(t - f32(p.la_cap), 0.0) / f32(1.0 - p.la_cap)
    la_w = (f32(w0) + f32(max(p.la_radius, w0) - w0) * rise) * np.sqrt(np.clip(1.0 - roof * roof, 0.0, 1.0))
    la = (below > 0) & (t <= 1.0) & (np.abs(v - centre) < la_w) & ~lv
    la = largest_component(la)

    dist = ndimage.distance_transform_edt(~lv, sampling=(1.0 / h, _WIDTH / w)).astype(f32)
    frac = np.clip(u / f32(p.length), 0.0, 1.0)
    thick = f32(p.myo_t) * (f32(p.myo_apex) + f32(p.myo_base - p.myo_apex) * frac)
    # At least one diagonal pixel, so the band closes around the cavity even on tiny images.
    thick = np.maximum(thick, f32(1.01 * math.hypot(1.0 / h, _WIDTH / w)))
    myo = ~lv & ~la & (dist <= thick) & (below <= 0)
    return _Geometry(y, x, u, v, below, thick, dist, lv, myo, la, ((u_l, v_l), (u_r, v_r)))


def _label_ok(p: _Params, geo: _Geometry, h: int, w: int) -> bool:
    """Whether the three structures exist, touch correctly, keep the border margin and sit in the fan."""
    if not (geo.lv.any() and geo.la.any() and geo.myo.any()):
        return False
    contact = geo.lv & ndimage.binary_dilation(geo.la, structure=np.ones((3, 3), dtype=bool))
    if contact.sum() < 3:
        return False
    mask = geo.lv | geo.myo | geo.la
    if not within_margin(mask):
        return False
    rr, cc = np.nonzero(mask)
    dy = geo.y[rr, 0] - p.tip_y
    dx = geo.x[0, cc] - p.tip_x
    radius = np.hypot(dy, dx)
    angle = np.arctan2(np.abs(dx), dy)
    lateral_room = (p.sector_half - angle) * radius  # distance to the fan's straight edge
    inside = (radius <= p.sector_r - 3.0 / h) & (lateral_room >= 2.0 * _WIDTH / w) & (dy > 0)
    return bool(inside.all())


def _keypoints(p: _Params, geo: _Geometry, h: int, w: int) -> np.ndarray:
    """Apex, left annulus end, right annulus end as ``[row, col]`` pixel coordinates."""
    ends = []
    for u_e, v_e in geo.annulus:
        ye, xe = _local_to_phys(p, np.array(u_e), np.array(v_e))
        ends.append(_phys_to_pixel(ye, xe, h, w))
    left, right = ends
    tip = _phys_to_pixel(*_local_to_phys(p, np.array(0.0), np.array(0.0)), h, w)
    up = (tip - 0.5 * (left + right)) / np.linalg.norm(tip - 0.5 * (left + right))
    along = (right - left) / np.linalg.norm(right - left)
    # The mask rule averages the contact pixels within 2 px of each end: about one pixel inwards of
    # the analytic end, and half a pixel towards the apex (pixel centres lie inside the outline).
    left = left + 1.2 * along + 0.5 * up
    right = right - 1.2 * along + 0.5 * up
    # The apex is the cavity pixel farthest from the annulus midpoint, taken from the rasterised
    # cavity. Its tip can end in a short run of pixels at nearly the same distance (within a few
    # hundredths of a pixel), of which the mask rule may pick either end: the keypoint is the mean of
    # that run, so it stays within half the run of whichever pixel the rule returns.
    mid = 0.5 * (left + right)
    lv_pix = np.argwhere(geo.lv).astype(np.float64)
    dist = np.linalg.norm(lv_pix - mid, axis=1)
    apex = lv_pix[dist >= dist.max() - 0.25].mean(axis=0)
    kps = np.stack([apex, left, right]).astype(np.float64)
    if kps[1, 1] > kps[2, 1]:
        kps[[1, 2]] = kps[[2, 1]]
    return kps


def _true_geometry(p: _Params, h: int, w: int) -> dict[str, np.ndarray]:
    """The drawn LV cavity in image ``[row, col]`` coordinates, for the true measures.

    ``outline`` ``(N, 2)``: the closed analytic boundary of the cavity (left wall from the apex down to
    the left annulus end, the mitral plane across, the right wall back up; finely sampled near the
    pointed apex); ``annulus`` ``(2, 2)``: the analytic ends of the mitral annulus, left then right
    (the keypoints sit about a pixel inwards of them, where the mask rule finds them). Nothing here
    draws from the generator, so the images stay those of the seed.
    :func:`glsmonai.measure.truth.true_measures` turns this into measures.
    """
    (u_l, v_l), (u_r, v_r) = _annulus_end(p, -1.0), _annulus_end(p, 1.0)
    t = np.linspace(0.0, 1.0, 801) ** 2  # dense near the apex, where the wall turns fastest
    left_u = u_l * t
    right_u = u_r * t[::-1]
    across = np.linspace(0.0, 1.0, 41)[1:-1]
    u = np.concatenate([left_u, u_l + (u_r - u_l) * across, right_u[:-1]])
    v = np.concatenate([
        -_profile(left_u / p.length, p) * p.w_left,
        v_l + (v_r - v_l) * across,
        (_profile(right_u / p.length, p) * p.w_right)[:-1],
    ])
    v[len(left_u) - 1], v[len(left_u) + len(across)] = v_l, v_r  # the walls end exactly at the annulus
    outline = _phys_to_pixel(*_local_to_phys(p, u, v), h, w)
    ends = np.stack([_phys_to_pixel(*_local_to_phys(p, np.array(ue), np.array(ve)), h, w)
                     for ue, ve in ((u_l, v_l), (u_r, v_r))])
    if ends[0, 1] > ends[1, 1]:
        ends = ends[::-1]
    return {"outline": outline.astype(np.float64), "annulus": ends.astype(np.float64)}


def _segment_distance(
    y: np.ndarray, x: np.ndarray, a: tuple[float, float], b: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Distance of every point to the segment ``a -> b`` and the fraction along it of the nearest point."""
    ay, ax = a
    vy, vx = b[0] - ay, b[1] - ax
    frac = np.clip(((y - ay) * vy + (x - ax) * vx) / (vy * vy + vx * vx + 1e-12), 0.0, 1.0)
    return np.hypot(y - ay - frac * vy, x - ax - frac * vx), frac


def _other_chambers(p: _Params, geo: _Geometry) -> np.ndarray:
    """Soft mask of the unlabelled chambers: RV and RA (four-chamber views) and the descending aorta."""
    f32 = np.float32
    u, v, below = geo.u, geo.v, geo.below
    edge = f32(0.006)
    out = np.zeros(u.shape, dtype=f32)
    (_, v_l), (_, v_r) = geo.annulus
    if p.four_chamber:
        g = _profile(u / f32(p.length), p).astype(f32)
        septum = -(g * f32(p.w_left) + geo.thick + f32(p.septum_gap))
        grow = smoothstep((u / f32(p.length) - f32(p.rv_start)) / f32(0.35))
        inner = v - septum  # negative to the left of the septum
        rv = soft_edge(-inner, edge) * soft_edge(f32(p.rv_width) * grow + inner, edge) * soft_edge(-below, edge)
        rv = rv * (grow > 0.02)
        ra_c = f32(v_l - p.septum_gap - p.ra_lat)
        ra_y = (below - f32(0.4 * p.ra_height)) / f32(0.5 * p.ra_height)
        ra_d = 1.0 - np.hypot((v - ra_c) / f32(p.ra_lat), ra_y)
        ra = soft_edge(ra_d * f32(p.ra_lat), edge)
        out = np.maximum(rv, ra)
    if p.aorta_r > 0:
        ac = f32(0.5 * (v_l + v_r) + p.la_drift + p.aorta_dv)
        ad = f32(p.la_height + 0.02 + p.aorta_r)
        aorta = soft_edge(f32(p.aorta_r) - np.hypot(v - ac, below - ad), edge)
        out = np.maximum(out, aorta)
    # Never darken the labelled structures or the myocardium around them.
    keep_out = geo.lv | geo.la | (geo.dist <= geo.thick + f32(0.004))
    return np.where(keep_out, f32(0.0), out)


def _polar_speckle(
    rng: np.random.Generator, p: _Params, radius: np.ndarray, angle: np.ndarray, h: int, w: int
) -> np.ndarray:
    """Rayleigh speckle (mean 1) drawn on the beam grid (depth x angle) and scan-converted."""
    grain = max(1.0, math.sqrt(max(h, w) / 256.0))
    n_r = max(16, int(h * p.sector_r / grain))
    # Lines: about two pixels apart at mid-depth, so grains widen with depth as on a real scanner.
    arc_px = 2.0 * p.sector_half * 0.5 * (w / _WIDTH)
    n_t = max(16, int(arc_px / (2.0 * grain)))
    z = rng.standard_normal((2, n_r, n_t), dtype=np.float32)
    z = ndimage.gaussian_filter(z, (0.0, 0.8, 0.7), truncate=3.0)
    amp = np.hypot(z[0], z[1])
    amp /= amp.mean()
    ri = radius / np.float32(p.sector_r) * np.float32(n_r - 1)
    ti = (angle + np.float32(p.sector_half)) / np.float32(2.0 * p.sector_half) * np.float32(n_t - 1)
    out = ndimage.map_coordinates(amp, [ri.ravel(), ti.ravel()], order=1, mode="nearest")
    return out.reshape(radius.shape)


def _local_blur(img: np.ndarray, centre: np.ndarray, sigma: float, rad: float) -> None:
    """Blend ``img`` in place with a Gaussian blur of itself, weighted by a bump of radius ``rad`` px."""
    half = int(math.ceil(3.0 * rad + 3.0 * sigma))
    kr, kc = float(centre[0]), float(centre[1])
    r0, r1 = max(int(kr) - half, 0), min(int(kr) + half + 1, img.shape[0])
    c0, c1 = max(int(kc) - half, 0), min(int(kc) + half + 1, img.shape[1])
    if r1 <= r0 or c1 <= c0:
        return
    crop = img[r0:r1, c0:c1]
    blurred = ndimage.gaussian_filter(crop, sigma, truncate=3.0)
    rr = np.arange(r0, r1, dtype=np.float32)[:, None] - kr
    cc = np.arange(c0, c1, dtype=np.float32)[None, :] - kc
    wgt = np.exp(-(rr * rr + cc * cc) / np.float32(2.0 * rad * rad))
    img[r0:r1, c0:c1] = crop * (1.0 - wgt) + blurred * wgt


def _render(
    rng: np.random.Generator, p: _Params, geo: _Geometry, kps: np.ndarray, h: int, w: int
) -> np.ndarray:
    """Render the ``(h, w)`` frame (float32 in [0, 1]) for the drawn parameters and rasterised anatomy."""
    f32 = np.float32
    y, x = geo.y, geo.x
    shape = (h, w)
    px = 1.0 / h  # physical size of one row
    dy, dx = y - f32(p.tip_y), x - f32(p.tip_x)
    radius = np.hypot(dy, dx)
    angle = np.arctan2(dx, dy)
    lateral_px = _WIDTH / w
    sector = soft_edge(f32(p.sector_r) - radius, f32(1.5 * px))
    sector = sector * soft_edge((f32(p.sector_half) - np.abs(angle)) * radius, f32(1.5 * lateral_px))
    sector = np.where(dy > 0, sector, f32(0.0))

    coarse = _texture(rng, shape, (5, 5))
    medium = _texture(rng, shape, (12, 12))
    fine = _texture(rng, shape, (28, 28))

    # ---- echogenicity before speckle ----
    tissue = f32(p.b_tissue) * np.clip(1.0 + 0.35 * coarse + 0.2 * medium, 0.2, None)
    myo_val = f32(p.b_myo) * np.clip(1.0 + 0.2 * medium + 0.15 * fine, 0.3, None)
    blood = f32(p.b_blood) * np.clip(1.0 + 0.4 * coarse, 0.2, None)
    outer = geo.dist - geo.thick
    peri = ~geo.lv & ~geo.la & (outer > 0) & (outer <= f32(p.peri_t)) & (geo.below <= f32(0.01))
    img = np.where(peri, f32(p.b_peri) * np.clip(1.0 + 0.3 * medium, 0.3, None), tissue)
    img = np.where(geo.myo, myo_val, img)
    others = _other_chambers(p, geo)
    img = img * (1.0 - others) + blood * others
    img = np.where(geo.lv | geo.la, blood, img)
    edge_sigma = max(0.5, 0.004 * min(h, w))
    img = ndimage.gaussian_filter(img.astype(f32), edge_sigma, truncate=2.5)

    # ---- mitral leaflets: faint bright lines hinged at the annulus ----
    (u_l, v_l), (u_r, v_r) = geo.annulus
    half_annulus = 0.5 * math.hypot(u_r - u_l, v_r - v_l)
    across = np.array([u_r - u_l, v_r - v_l]) / (2.0 * half_annulus)
    up = np.array([-1.0, 0.0])  # towards the apex in the LV frame
    hinges = (((u_l, v_l), 1.0, p.leaflet_len[0]), ((u_r, v_r), -1.0, p.leaflet_len[1]))
    for (u_h, v_h), sign, frac_len in hinges:
        direction = math.cos(p.leaflet_angle) * sign * across + math.sin(p.leaflet_angle) * up
        tip = np.array([u_h, v_h]) + frac_len * half_annulus * direction
        a = _local_to_phys(p, np.array(u_h), np.array(v_h))
        b = _local_to_phys(p, np.array(tip[0]), np.array(tip[1]))
        d, frac = _segment_distance(y, x, (float(a[0]), float(a[1])), (float(b[0]), float(b[1])))
        line = np.exp(-((d / f32(p.leaflet_t)) ** 2)) * (1.0 - 0.5 * frac)
        img = img + f32(p.b_leaflet) * line.astype(f32)

    # ---- apex: drop-out of the apical wall and clutter in the apical cavity ----
    apex_y, apex_x = _local_to_phys(p, np.array(0.0), np.array(0.0))
    near_apex = np.exp(-((y - f32(apex_y)) ** 2 + (x - f32(apex_x)) ** 2) / f32(2.0 * p.apex_sigma**2))
    mix = f32(p.apex_mix) * near_apex
    haze = f32(p.clutter * p.b_myo) * np.clip(1.0 + 0.4 * medium, 0.2, None)
    img = img * (1.0 - mix) + haze * mix
    near = np.exp(-radius / f32(p.near_scale)) * np.clip(1.0 + 0.5 * coarse, 0.0, None)
    img = img + f32(p.near_field) * near

    # ---- annulus: LV, LA, valve and myocardium melt together ----
    img = img.astype(f32)
    for kp in kps[1:]:
        _local_blur(img, kp, p.annulus_sigma * h, p.annulus_radius * h)

    # ---- speckle, attenuation, point-spread blur, noise, gain ----
    img = img * _polar_speckle(rng, p, radius, angle, h, w) ** f32(p.speckle)
    img = img * np.exp(-f32(p.attenuation) * radius)
    img = img * (1.0 - f32(p.edge_fall) * (np.abs(angle) / f32(p.sector_half)) ** 4)
    grain = max(1.0, math.sqrt(max(h, w) / 256.0))
    img = ndimage.gaussian_filter(img.astype(f32), (0.5 * grain, 0.7 * grain), truncate=2.5)
    img = img + f32(p.noise_floor) * np.abs(rng.standard_normal(shape, dtype=f32))
    img = np.clip(img * f32(p.gain), 0.0, 1.0) ** f32(p.gamma)
    return np.clip(img * sector, 0.0, 1.0).astype(f32)


def make_echo_case(rng: np.random.Generator, size: tuple[int, int] = (256, 256)) -> SynthCase:
    """Draw one synthetic apical echocardiography frame with its CAMUS-style mask and keypoints.

    Args:
        rng: the only source of randomness; the same generator state gives the same case.
        size: ``(H, W)`` of the image, each at least 32 (tested from 64 x 64 to 1200 x 900).

    Returns:
        The case: float32 image in ``[0, 1]``, uint8 label (0 background, 1 LV cavity, 2 myocardium,
        3 left atrium), ``(3, 2)`` float64 ``[row, col]`` keypoints (LV apex, left mitral annulus
        end, right mitral annulus end) and ``info["truth"]``, the drawn cavity for the true measures
        (see :func:`_true_geometry`).

    Raises:
        ValueError: ``size`` is not two integers of at least 32.
    """
    h, w = parse_size(size)

    def draw(safe: bool) -> tuple[_Params, _Geometry] | None:
        p = _draw_params(rng, safe=safe)
        geo = _geometry(p, h, w)
        return (p, geo) if safe or _label_ok(p, geo, h, w) else None

    p, geo = draw_until(draw, "echo case")

    label = np.zeros((h, w), dtype=np.uint8)
    label[geo.myo] = 2
    label[geo.la] = 3
    label[geo.lv] = 1
    keypoints = _keypoints(p, geo, h, w)
    image = _render(rng, p, geo, keypoints, h, w)
    return SynthCase(image=image, label=label, keypoints=keypoints, info={"truth": _true_geometry(p, h, w)})
