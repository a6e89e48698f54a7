"Hostile input data: odd but valid photos, truncated files, forged annotations. Each test is named after the finding it covers."
import json, tracemalloc, warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from conftest import ROOT  # noqa: F401  (puts the checkout first, like the other tests)
from mao_nb.core import ImageRecord, ObjectAnn, ImageLoadError, load_image, image_size, rle_encode, rle_decode
from mao_nb.data import DatasetError
from mao_nb import loaders
from mao_nb.loaders import load_image_folder, load_coco_soir, image_hw, polygons_to_mask
from coco_fixture import write_coco_fixture as _write_coco_fixture


def _photo(path: Path, hw=(30, 40), seed=0, **save) -> np.ndarray:
    a = np.random.default_rng(seed).integers(0, 255, (*hw, 3), dtype=np.uint8)
    Image.fromarray(a).save(path, **save)
    return a


def _edit_coco(fx: dict, edit) -> Path:
    "Rewrite the fixture's gallery json with `edit(dict)` applied; returns its path."
    d = json.loads(fx['ann_json'].read_text()); edit(d); fx['ann_json'].write_text(json.dumps(d))
    return fx['ann_json']


def _lenient_coco(j: Path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); return load_coco_soir(j, queries=None, lenient=True, **kw)


def test_exif_rotated_jpeg_in_folder(tmp_path):
    exif = Image.Exif(); exif[0x0112] = 6  # "rotate 90 degrees clockwise to view": a phone held upright
    _photo(tmp_path/'phone.jpg', (30, 40), exif=exif)
    _photo(tmp_path/'plain.jpg', (30, 40))
    assert image_hw(tmp_path/'phone.jpg') == (40, 30) == image_size(tmp_path/'phone.jpg')
    recs = load_image_folder(tmp_path)
    for r in recs:
        a = r.load()  # used to raise 'size (40, 30) differs from the recorded (30, 40)'
        assert a.shape[:2] == r.size
    assert [r.size for r in recs] == [(40, 30), (30, 40)]


def test_lenient_skips_truncated_image(tmp_path):
    _photo(tmp_path/'good.jpg', (60, 80))
    _photo(tmp_path/'cut.jpg', (60, 80), seed=1)
    b = (tmp_path/'cut.jpg').read_bytes(); (tmp_path/'cut.jpg').write_bytes(b[:len(b) // 2])  # its header is fine
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); recs, skips = load_image_folder(tmp_path, lenient=True, return_skips=True)
    assert [r.image_id for r in recs] == ['good.jpg']
    assert len(skips) == 1 and skips.examples[next(iter(skips.counts))] == 'cut.jpg'
    with pytest.raises(DatasetError, match='cut.jpg'): load_image_folder(tmp_path, verify=True)
    assert len(load_image_folder(tmp_path)) == 2  # strict and not verified: the header scan only (fast)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_rle_decode_refuses_huge_size(tmp_path):
    bomb = {'size': [200000, 200000], 'counts': [40000000000]}  # 4e10 pixels from a few bytes: a 37 GiB allocation
    with pytest.raises(ValueError, match='200000'): rle_decode(bomb)
    with pytest.raises(ValueError, match='200000'): rle_decode({'size': [200000, 200000], 'counts': rle_encode(np.zeros((2, 2), bool))['counts']})
    with pytest.raises(ValueError, match=r'differs from the image size'): rle_decode(rle_encode(np.ones((4, 4), bool)), expect_size=(4, 5))
    m = np.zeros((6, 7), bool); m[1:3, 2:5] = True
    np.testing.assert_array_equal(rle_decode(rle_encode(m), expect_size=(6, 7)), m)
    fx = _write_coco_fixture(tmp_path/'coco')
    n = len(json.loads(fx['ann_json'].read_text())['images'])
    j = _edit_coco(fx, lambda d: d['annotations'][0].update(segmentation=bomb))
    with pytest.raises(DatasetError, match='200000'): load_coco_soir(j, queries=None)
    ds = _lenient_coco(j)
    assert len(ds.gallery) == n - 1 and sum(ds.meta['skips'].values()) == 1


def test_decompression_bomb_is_a_clear_error(tmp_path, monkeypatch):
    _photo(tmp_path/'big.png', (30, 40))
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 100)  # 1200 pixels > 2 x 100: PIL raises DecompressionBombError
    for fn, err in [(load_image, ImageLoadError), (image_size, ImageLoadError), (image_hw, DatasetError)]:
        with pytest.raises(err, match='decompression-bomb limit') as e: fn(tmp_path/'big.png')
        assert 'big.png' in str(e.value) and 'MAX_IMAGE_PIXELS' in str(e.value)
        assert isinstance(e.value, ValueError)
    with pytest.raises(DatasetError, match='big.png'): load_image_folder(tmp_path)


def test_polygon_outside_image(tmp_path):
    with pytest.raises(ValueError, match='outside the 60x50 image'): polygons_to_mask([[200, 200, 210, 200, 210, 210]], 50, 60)
    part = polygons_to_mask([[50, 10, 70, 10, 70, 20, 50, 20]], 50, 60)  # half inside: the inside half
    assert part.sum() == 10 * 10 and part[10:20, 50:60].all()
    thin = polygons_to_mask([[10.2, 10.2, 10.4, 10.2, 10.3, 10.3]], 50, 60)  # thinner than a pixel, inside: its pixel
    assert thin.sum() == 1 and thin[10, 10]
    fx = _write_coco_fixture(tmp_path/'coco')
    n = len(json.loads(fx['ann_json'].read_text())['images'])
    j = _edit_coco(fx, lambda d: d['annotations'][0].update(segmentation=[[500, 500, 510, 500, 510, 510]]))
    with pytest.raises(DatasetError, match='polygon outside the image'): load_coco_soir(j, queries=None)
    ds = _lenient_coco(j)
    assert len(ds.gallery) == n - 1 and ds.meta['skips'] == {'polygon outside the image': 1}


def test_coco_file_name_outside_root(tmp_path):
    fx = _write_coco_fixture(tmp_path/'coco')
    _photo(tmp_path/'secret.png', (96, 128))
    for bad in ['../secret.png', str(tmp_path/'secret.png'), 'images/../../secret.png']:
        j = _edit_coco(fx, lambda d: d['images'][0].update(file_name=bad))
        with pytest.raises(DatasetError, match='outside the image root') as e: load_coco_soir(j, queries=None)
        assert repr(bad) in str(e.value)
        assert len(_lenient_coco(j).gallery) == 3
    j = _edit_coco(fx, lambda d: d['images'][0].update(file_name='images/./scene_000.jpg'))
    assert len(load_coco_soir(j, queries=None).gallery) == 4  # inside the root: fine


def test_coco_duplicate_file_names(tmp_path):
    fx = _write_coco_fixture(tmp_path/'coco')
    j = _edit_coco(fx, lambda d: d['images'][2].update(file_name=d['images'][1]['file_name']))
    with pytest.raises(DatasetError, match=r"duplicate file_name 'images/scene_001.jpg'"): load_coco_soir(j, queries=None)
    ds = _lenient_coco(j)
    assert [r.image_id for r in ds.gallery] == ['images/scene_000.jpg', 'images/scene_001.jpg', 'images/scene_003.jpg']
    assert ds.meta['skips'] == {'duplicate file_name': 1}


def _rect_rle(h, w, x0, y0, x1, y1) -> dict:
    "The uncompressed RLE of a rectangle, without building the mask."
    counts, prev = [], 0
    for c in range(x0, x1):  # column-major runs: zeros up to (c, y0), then ones
        counts += [c * h + y0 - prev, y1 - y0]; prev = c * h + y1
    return {'size': [h, w], 'counts': counts + [h * w - prev]}


def test_crop_record_without_full_masks():
    from mao_nb.crops import crop_record, crop_objects
    rng = np.random.default_rng(0)
    H, W = 90, 120; img = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:H, :W]
    objs = [ObjectAnn([10, 12, 30, 40], rle_encode((xx - 20) ** 2 + (yy - 26) ** 2 < 90)),
            ObjectAnn([100, 70, 120, 90], rle_encode((xx >= 100) & (yy >= 70))),  # at the corner: its crop leaves the image
            ObjectAnn([40, 5, 50, 15]),  # box only
            ObjectAnn([0, 0, 120, 90], rle_encode((xx + yy) % 7 < 3))]  # the whole image
    rec = ImageRecord('r', image=img, objects=objs)
    for size, margin in [(32, 0.2), (16, 0.5)]:
        c, m, tf = crop_record(rec, size, margin, device='cpu')
        c0, m0, tf0 = crop_objects(img, rec.boxes, rec.masks(), size=size, margin=margin, device='cpu')
        assert (c == c0).all() and tf.roi.tolist() == tf0.roi.tolist()
        assert m.shape == m0.shape and float((m - m0).abs().max()) < 1e-4
    # a large photo with many objects: no K x H x W masks
    H, W, K = 1500, 2000, 24
    big = ImageRecord('big', image=np.zeros((H, W, 3), np.uint8),
                      objects=[ObjectAnn([x, y, x + 60, y + 40], _rect_rle(H, W, x, y, x + 60, y + 40))
                               for x, y in zip(np.linspace(0, W - 61, K).astype(int), np.linspace(0, H - 41, K).astype(int))])
    tracemalloc.start()
    try:
        _, m, _ = crop_record(big, 32, 0.2, device='cpu')
        peak = tracemalloc.get_traced_memory()[1]
    finally: tracemalloc.stop()
    assert m.shape == (K, 32, 32) and float(m.sum()) > 0
    assert peak < K * H * W / 20, f'peak {peak / 1e6:.1f} MB'
    two = ImageRecord('two', image=img[:90, :120], objects=objs[:2])
    crops = two.mask_crops(np.array([[-5, -5, 10, 10], [100, 60, 130, 100]]))
    assert [c.shape for c in crops] == [(15, 15), (40, 30)]
    np.testing.assert_array_equal(crops[1], np.pad(two.masks()[1], ((0, 10), (0, 10)))[60:100, 100:130])
