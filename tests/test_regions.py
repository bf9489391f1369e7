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


def _rle_cases():
    rng = np.random.default_rng(0)
    for t in range(400):
        h, w = int(rng.integers(1, 50)), int(rng.integers(1, 50))
        m = np.zeros((h, w), bool)
        kind = t % 4
        if kind == 0:
            m = rng.random((h, w)) < rng.random()
        elif kind == 1:  # one rectangle
            y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
            m[y:y + int(rng.integers(1, h + 1)), x:x + int(rng.integers(1, w + 1))] = True
        elif kind == 2:  # all or nothing
            m[:] = bool(t % 8 == 2)
        else:  # sparse dots: long runs, multi-character counts
            m = rng.random((h, w)) < 0.02
        yield m
    big = np.zeros((1024, 2048), bool)  # large run lengths; a mask wider than half the image
    big[100:500, 300:433] = True
    big[700:1000, 1900:2048] = True
    yield big


def test_annotation_mask_crop_equals_the_cropped_full_decode():
    from anonbench.manifest import annotation_mask, annotation_mask_crop, encode_mask, rle_counts

    for m in _rle_cases():
        h, w = m.shape
        compressed = {"segmentation": encode_mask(m)}
        counts = rle_counts(compressed["segmentation"])
        assert counts.sum() == h * w and (counts[1:] >= 0).all()
        # the same runs as pycocotools' uncompressed form: rebuilt mask equals the original
        flat = np.repeat(np.arange(counts.size) % 2 == 1, counts)
        np.testing.assert_array_equal(flat.reshape(w, h).T, m)
        for ann in (compressed, {"segmentation": {"size": [h, w], "counts": counts.tolist()}}):
            np.testing.assert_array_equal(annotation_mask(ann, h, w), m)
            got = annotation_mask_crop(ann, h, w)
            if not m.any():
                assert got is None
                continue
            crop, (x0, y0, x1, y1) = got
            ys, xs = np.nonzero(m)
            assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            np.testing.assert_array_equal(crop, m[y0:y1, x0:x1])


def test_annotation_mask_crop_of_polygons_and_zero_length_runs():
    from anonbench.manifest import annotation_mask, annotation_mask_crop

    poly = {"segmentation": [[30.5, 10.2, 70, 10, 70.7, 50.1, 30, 49.6], [5, 5, 9, 5, 9, 9]]}
    full = annotation_mask(poly, 64, 96)
    crop, (x0, y0, x1, y1) = annotation_mask_crop(poly, 64, 96)
    ys, xs = np.nonzero(full)
    assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    np.testing.assert_array_equal(crop, full[y0:y1, x0:x1])
    # uncompressed counts may hold runs of length 0 between others (valid, not canonical)
    ann = {"segmentation": {"size": [4, 3], "counts": [1, 2, 0, 1, 3, 0, 0, 2, 3]}}
    full = annotation_mask(ann, 4, 3)
    crop, box = annotation_mask_crop(ann, 4, 3)
    np.testing.assert_array_equal(crop, full[box[1]:box[3], box[0]:box[2]])
    assert annotation_mask_crop({"segmentation": []}, 4, 3) is None


def test_bodies_to_anonymize_dilates_like_the_full_mask():
    from anonbench.manifest import encode_mask

    h, w = 120, 160
    m = np.zeros((h, w), bool)
    m[20:90, 30:60] = True
    m[40:50, 60:75] = True
    ann = {"id": 1, "anonymize": True, "segmentation": encode_mask(m)}
    [(got, crop, box)] = list(regions.bodies_to_anonymize([ann], h, w))
    assert got is ann and box == (30, 20, 75, 90)
    out = np.zeros((h, w), bool)
    touched = regions.dilate_body_crop_into(out, crop, box)
    np.testing.assert_array_equal(out, regions.dilate_body_mask(m))
    assert out[touched[1]:touched[3], touched[0]:touched[2]].sum() == out.sum()
    assert list(regions.bodies_to_anonymize([ann], h, w, min_body_size=60)) == []
