"""The study's face-to-instance matching on hand-made boxes and masks."""

import itertools

import numpy as np
import pytest

from anonbench.annotators.match import (MIN_IOU, box_mask_iou, box_pixels, greedy_match,
                                        match_faces, nms)


def rect_mask(h, w, x0, y0, x1, y1):
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def test_pixel_iou_truncates_box_coordinates_and_clips():
    assert box_pixels((1.9, 2.7, 4.2, 5.9), 10, 10) == (1, 2, 4, 5)
    assert box_pixels((-3.0, -1.0, 40.0, 4.5), 10, 20) == (0, 0, 20, 4)
    mask = rect_mask(20, 20, 0, 0, 10, 10)           # 100 pixels
    iou = box_mask_iou(np.array([[1.9, 2.7, 4.2, 5.9]]), [mask])
    # block x 1..3, y 2..4 = 9 pixels, all inside the mask
    assert iou[0, 0] == pytest.approx(9 / 100)
    # half outside: box 5..15 x 0..10 (100 px), 50 inside -> 50 / (100 + 100 - 50)
    iou = box_mask_iou(np.array([[5, 0, 15, 10, 0.9]]), [mask])
    assert iou[0, 0] == pytest.approx(50 / 150)


def test_iou_matches_brute_force_on_random_masks():
    rng = np.random.default_rng(0)
    masks = [rng.random((30, 40)) < 0.3 for _ in range(3)]
    boxes = np.sort(rng.uniform(-5, 45, (6, 2)), axis=1)
    ys = np.sort(rng.uniform(-5, 35, (6, 2)), axis=1)
    boxes = np.stack([boxes[:, 0], ys[:, 0], boxes[:, 1], ys[:, 1]], axis=1)
    got = box_mask_iou(boxes, masks)
    for i, b in enumerate(boxes):
        bm = np.zeros((30, 40), bool)
        x0, y0, x1, y1 = (max(0, int(v)) for v in b)
        bm[y0:y1, x0:x1] = True
        for j, m in enumerate(masks):
            union = np.logical_or(bm, m).sum()
            want = np.logical_and(bm, m).sum() / union if union else 0.0
            assert got[i, j] == pytest.approx(want)


def test_candidates_need_iou_above_threshold():
    iou = np.array([[MIN_IOU, 0.0], [0.0, MIN_IOU + 1e-6]])
    matches = greedy_match(iou, [0.9, 0.8])
    assert [(m.box, m.instance) for m in matches] == [(1, 1)]
    assert greedy_match(np.zeros((0, 2)), []) == []
    assert greedy_match(np.zeros((2, 0)), [0.5, 0.5]) == []


def test_best_iou_first_then_one_to_one():
    # box 0 fits instance 0 best; box 1 also overlaps instance 0 but must take instance 1
    iou = np.array([[0.30, 0.20],
                    [0.25, 0.10]])
    matches = greedy_match(iou, [0.5, 0.99])
    assert {(m.box, m.instance) for m in matches} == {(0, 0), (1, 1)}
    m0 = next(m for m in matches if m.box == 0)
    assert m0.iou == pytest.approx(0.30) and m0.score == pytest.approx(0.5)


def test_conflict_leaves_the_weaker_box_unmatched():
    iou = np.array([[0.05], [0.04], [0.30]])  # three boxes, one instance
    matches = greedy_match(iou, [0.9, 0.95, 0.4])
    assert [(m.box, m.instance) for m in matches] == [(2, 0)]


def test_iou_tie_is_broken_by_score():
    iou = np.array([[0.2], [0.2]])
    assert [m.box for m in greedy_match(iou, [0.6, 0.8])] == [1]
    assert [m.box for m in greedy_match(iou, [0.8, 0.6])] == [0]


def test_full_tie_prefers_the_instance_with_fewer_candidates():
    # box 0 ties between instances 0 and 1; instance 0 has another candidate (box 1), instance
    # 1 has none: taking instance 1 for box 0 lets both boxes be matched
    iou = np.array([[0.2, 0.2],
                    [0.1, 0.0]])
    matches = greedy_match(iou, [0.9, 0.9])
    assert {(m.box, m.instance) for m in matches} == {(0, 1), (1, 0)}


def test_result_does_not_depend_on_input_order():
    iou = np.array([[0.2, 0.2, 0.05],
                    [0.2, 0.2, 0.0],
                    [0.0, 0.3, 0.3]])
    scores = np.array([0.7, 0.7, 0.5])
    ref = {(m.box, m.instance) for m in greedy_match(iou, scores)}
    for perm_b in itertools.permutations(range(3)):
        for perm_m in itertools.permutations(range(3)):
            got = greedy_match(iou[np.ix_(perm_b, perm_m)], scores[list(perm_b)])
            mapped = {(perm_b[m.box], perm_m[m.instance]) for m in got}
            # exact ties between identical boxes 0 and 1 may swap their roles, nothing else
            assert len(mapped) == len(ref)
            assert {i for _, i in mapped} == {i for _, i in ref}


def test_match_faces_on_two_people_and_a_false_detection():
    h, w = 100, 120
    left = rect_mask(h, w, 10, 20, 40, 100)    # person 0, head at top
    right = rect_mask(h, w, 70, 10, 100, 100)  # person 1
    dets = np.array([[75, 8, 95, 30, 0.9],     # face of the right person (slightly above it)
                     [12, 18, 36, 42, 0.8],    # face of the left person
                     [50, 50, 60, 60, 0.99]])  # background: overlaps no one
    matches = match_faces(dets, [left, right])
    assert {(m.box, m.instance) for m in matches} == {(0, 1), (1, 0)}
    assert all(m.iou > MIN_IOU for m in matches)


def test_nms_keeps_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5]])
    scores = np.array([0.8, 0.9, 0.5, 0.7])
    keep = nms(boxes, scores, 0.3)
    assert list(keep) == [1, 2]
    assert list(nms(boxes, scores, 1.01)) == [1, 0, 3, 2]


def test_a_face_that_loses_the_match_to_a_body_detection_is_still_anonymized():
    """The study's one-to-one matching ranks by box/mask IoU: a false detection on the torso
    (IoU 0.14) beat the real face inside the person (lower IoU), which was then left as it was
    while the person counted as anonymized. The left-over detection on a person is a further
    face of it; ``unmatched: drop`` keeps the study's rule."""
    import numpy as np

    from anonbench.annotate import match_image_faces
    from anonbench.manifest import encode_mask

    h, w = 60, 40
    mask = np.zeros((h, w), bool)
    mask[5:55, 10:30] = True
    person = {"id": 7, "segmentation": encode_mask(mask)}
    img = {"id": 1, "height": h, "width": w}
    face = [14, 5, 22, 13, 0.40]       # inside the person: IoU 64 / 1000
    torso = [8, 20, 32, 45, 0.30]      # on the body: IoU 500 / 1100, the match
    elsewhere = [0, 56, 4, 60, 0.9]    # on no person
    dets = np.array([face, torso, elsewhere])
    got = match_image_faces(img, [person], dets, "centerface")
    assert [(f["box"], f.get("extra", False)) for f in got] == [
        ([8.0, 20.0, 32.0, 45.0], False), ([14.0, 5.0, 22.0, 13.0], True)]
    assert all(f["annotation_id"] == 7 for f in got)
    dropped = match_image_faces(img, [person], dets, "centerface", unmatched="drop")
    assert [f["box"] for f in dropped] == [[8.0, 20.0, 32.0, 45.0]]
