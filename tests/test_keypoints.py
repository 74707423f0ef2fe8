"""Keypoint rules on hand-made masks: lv_apex_base (CAMUS) and iris_roots."""

from __future__ import annotations

import numpy as np
import pytest

from glsmonai.keypoints import iris_roots, lv_apex_base


def heart(rows: int = 60, cols: int = 40, with_la: bool = True) -> np.ndarray:
    """A hand-made apical view: LV rows 10..39 (a triangle-ish cone, apex at the top), LA below."""
    lab = np.zeros((rows, cols), np.uint8)
    for r in range(10, 40):
        half = 2 + (r - 10) * 10 // 29  # 2 px wide at the apex, 12 at the base
        lab[r, 20 - half : 20 + half + 1] = 1
    if with_la:
        lab[40:52, 10:31] = 3
    # myocardium ring left of and right of the LV (does not touch the LA contact)
    lab[12:38, 5:7] = 2
    return lab


# The LV of heart() is symmetric about column 20, so its long axis is the row axis. The apex is the
# mean of the LV pixels within 1 px of the farthest distance from the annulus midpoint (row m, col 20):
# row 10, cols 18..22 (5 px) and (11, 18), (11, 22) (for m = 39: sqrt(28**2 + 2**2) = 28.071 against the
# farthest sqrt(29**2 + 2**2) - 1 = 28.069; (11, 19) is at 28.018), so row (5 * 10 + 2 * 11) / 7 = 72 / 7.
class TestLvApexBase:
    def test_with_left_atrium(self):
        pts = lv_apex_base(heart())
        apex, left, right = pts
        assert apex == pytest.approx([72 / 7, 20.0])
        # the LV / LA contact is the LV's row 39 within the 3 x 3 dilation of the LA (cols 10..30): cols 9..31;
        # its ends are the means of the contact pixels within 2 px of each end: cols 9..11 and 29..31
        assert left == pytest.approx([39.0, 10.0]) and right == pytest.approx([39.0, 30.0])

    def test_from_lv_shape_alone(self):
        apex, left, right = lv_apex_base((heart(with_la=False) == 1).astype(np.uint8))
        assert apex == pytest.approx([72 / 7, 20.0])  # the annulus midpoint is at row 267 / 7 ~ 38.1: same pixels
        # basal slab: rows 37..39 (2 px of the 29 px long axis); half widths 11, 11, 12: cols 9..31, 9..31, 8..32.
        # Within 2 px of col 8: (37, 9..10), (38, 9..10), (39, 8..10): rows (2 * 37 + 2 * 38 + 3 * 39) / 7 = 267 / 7,
        # cols (9 + 10 + 9 + 10 + 8 + 9 + 10) / 7 = 65 / 7; the right end mirrored about col 20: 40 - 65 / 7 = 215 / 7
        assert left == pytest.approx([267 / 7, 65 / 7]) and right == pytest.approx([267 / 7, 215 / 7])

    def test_upside_down_view(self):
        apex, left, right = lv_apex_base(heart()[::-1])
        assert apex == pytest.approx([59 - 72 / 7, 20.0])  # row r -> 59 - r
        # the contact row 39 -> 20; left is still the smaller column
        assert left == pytest.approx([20.0, 10.0]) and right == pytest.approx([20.0, 30.0])

    def test_no_lv(self):
        with pytest.raises(ValueError, match="no LV"):
            lv_apex_base(np.zeros((8, 8), np.uint8))


@pytest.mark.parametrize("seed", range(5))
def test_lv_apex_base_agrees_with_the_echo_phantom(seed):
    from glsmonai.data.synth.echo import make_echo_case

    case = make_echo_case(np.random.default_rng(seed), (256, 256))
    assert np.abs(lv_apex_base(case.label) - case.keypoints).max() < 3.0


class TestIrisRoots:
    def test_iris_roots_on_hand_made_mask(self):
        mask = np.zeros((30, 60), bool)
        mask[10:16, 5:25] = True  # left segment, root at col 5
        mask[10:16, 35:55] = True  # right segment, root at col 54
        roots = iris_roots(mask)
        # pixels within 2 px of each far end: cols 5-7 and 52-54
        assert np.allclose(roots, [[12.5, 6.0], [12.5, 53.0]], atol=0.01)

    def test_order_is_left_first_whatever_the_sizes(self):
        mask = np.zeros((30, 60), bool)
        mask[10:12, 2:10] = True  # small left
        mask[10:20, 30:58] = True  # large right
        roots = iris_roots(mask)
        # centroids (10.5, 5.5) and (14.5, 43.5): each far end lies along +-(4, 38) / sqrt(1460), and the root is
        # the mean of the pixels within 2 px of it, i.e. 4 r + 38 c within 2 sqrt(1460) = 76.42 of the extreme.
        # Left: extreme (10, 2) at -116; kept (10, 2..4), (11, 2..3): (52 / 5, 14 / 5).
        # Right: extreme (19, 57) at 2242; kept (19, 55..57) and (10..18, 56..57): 21 px,
        # rows (3 * 19 + 2 * (10 + ... + 18)) / 21 = 309 / 21, cols (168 + 9 * 113) / 21 = 1185 / 21
        assert roots[0, 1] < roots[1, 1]
        assert np.allclose(roots, [[52 / 5, 14 / 5], [309 / 21, 1185 / 21]])

    def test_one_component_is_an_error(self):
        mask = np.zeros((10, 10), bool)
        mask[2:5, 2:5] = True
        with pytest.raises(ValueError, match="1 connected component"):
            iris_roots(mask)


def test_each_rule_knows_how_many_pieces_its_structure_has(tmp_path):
    # the task's num_components when a datalist gives none: two iris halves, one LV, an error map's own count
    import json

    from glsmonai.keypoints import rule_component_count

    assert rule_component_count("iris_roots") == 2 and rule_component_count("lv_apex_base") == 1
    rule = tmp_path / "map_rule.json"
    rule.write_text(json.dumps({"rule": "errormap", "n_components": 3, "margin": 0.25,
                                "keypoints": [{"component": 2, "u": 0.5, "v": 0.5}]}))
    assert rule_component_count(f"errormap:{rule}") == 3
    with pytest.raises(ValueError, match="unknown keypoint rule 'iris'"):
        rule_component_count("iris")
