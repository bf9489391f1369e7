import pytest

from anonbench import shards


def manifest(n):
    return {"info": {"image_root": "/data"},
            "images": [{"id": i, "file_name": f"{i}.jpg"} for i in range(n, 0, -1)],
            "annotations": [{"id": 10 * i, "image_id": i, "anonymize": i % 2 == 0}
                            for i in range(1, n + 1)],
            "categories": []}


def test_shards_cover_every_image_once_in_balanced_chunks():
    parts = shards.split_shards(manifest(10), 4)
    ids = [img["id"] for p in parts for img in p["images"]]
    assert sorted(ids) == list(range(1, 11)) and len(set(ids)) == 10
    assert [len(p["images"]) for p in parts] == [2, 3, 2, 3]
    assert [p["info"]["shard"] for p in parts] == ["000", "001", "002", "003"]
    for p in parts:
        own = {img["id"] for img in p["images"]}
        assert all(a["image_id"] in own for a in p["annotations"])


def test_more_shards_than_images_gives_empty_shards():
    parts = shards.split_shards(manifest(2), 3)
    assert sum(len(p["images"]) for p in parts) == 2
    with pytest.raises(ValueError):
        shards.split_shards(manifest(2), 0)


def test_anonymized_manifest_points_into_shard_dirs():
    m = shards.anonymized_manifest(manifest(4), "results/d/anonymized/v", 2, "v")
    assert m["info"]["image_root"] == "results/d/anonymized/v"
    by_id = {img["id"]: img["file_name"] for img in m["images"]}
    assert by_id[1] == "000/1.jpg" and by_id[4] == "001/4.jpg"
    orig = shards.anonymized_manifest(manifest(4), None, 2, "original")
    assert orig["info"]["image_root"] == "/data" and orig["images"][0]["file_name"] == "4.jpg"
