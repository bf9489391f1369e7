import numpy as np

from anonbench import regions


def kps(points):
    out = np.zeros((17, 3))
    for i, (x, y) in points.items():
        out[i] = (x, y, 2)
    return out.ravel().tolist()


def test_face_box_from_ears_spans_the_head():
    # ears 20 px apart at y=50, eyes at y=48, nose below
    k = kps({0: (50, 53), 1: (54, 48), 2: (46, 48), 3: (60, 50), 4: (40, 50)})
    x0, y0, x1, y1 = regions.face_box_from_keypoints(k, (200, 200))
    assert (x0, x1) == (40.0, 60.0)
    assert y0 == 48 - 10 and y1 == 48 + 14  # 0.5 s above, 0.7 s below the eye line


def test_face_box_from_eyes_only_uses_inter_ocular_distance():
    k = kps({1: (104, 50), 2: (96, 50)})
    x0, y0, x1, y1 = regions.face_box_from_keypoints(k, (200, 200))
    assert x1 - x0 == 20.0  # 2.5 x 8 px
    assert abs((x0 + x1) / 2 - 100) < 1e-9


def test_back_of_head_has_no_face():
    assert regions.face_box_from_keypoints(kps({3: (60, 50), 4: (40, 50)}), (200, 200)) is None
    assert regions.face_box_from_keypoints([0] * 51, (200, 200)) is None


def test_face_box_is_clipped_to_the_image():
    x0, y0, x1, y1 = regions.face_box_from_keypoints(kps({1: (2, 1), 2: (-6, 1)}), (50, 50))
    assert x0 == 0 and y0 == 0 and x1 > 0 and y1 > 0


def test_body_dilation_radius_matches_dp2_at_crop_scale():
    # DP2 dilates by disk(4) on a 288x160 crop: a person whose grown box is ~288x160 px gets 4
    assert regions.body_dilation_radius((0, 0, 135, 245)) == 4
    assert regions.body_dilation_radius((0, 0, 5, 10)) == 1


def test_dilate_body_mask_grows_by_the_radius():
    m = np.zeros((100, 100), bool)
    m[20:80, 40:60] = True
    r = regions.body_dilation_radius(regions.mask_box(m))
    d = regions.dilate_body_mask(m)
    assert d[m].all()
    ys, xs = np.nonzero(d)
    assert xs.min() == 40 - r and xs.max() == 59 + r and ys.min() == 20 - r


def test_box_iou():
    assert regions.box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == 50 / 150
    assert regions.box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0
