"""Benchmark files written the way their authors' own code writes them (not by mao_nb), for tests/test_benchmark_formats.py.

- VoxDet: the RoboTools tree as VoxDet ships it (COCO json with boxes only, `test_video/<name>_<id>/{rgb,mask}`), an OWID
  part (`P1/<id>/{rgb,mask}`, `P2/images` + COCO json with polygons), and `anns.pt` as the SoIR authors' `create_dataset.py`
  builds it from those: ONE dict keyed by absolute paths of the machine that built it; gallery entries with lists of
  `(x1, y1, x2, y2)`, `ins`, `mask` (`[]` or COCO segmentations), `num_ins`, `is_query`, `set`; query entries with numpy
  int64 `bbox` from the mask (inclusive maxima), `mask` = runs over the row-major flattened mask with `transpose: False`.
- PerMiR: folders `0`, `1`, ... with `0.jpg`..`2.jpg` and `np.save(folder + '/masks.npz', frames)`, `frames` a list of three
  dicts `{track id: [H, W] bool}`.
"""
import json
from pathlib import Path

import numpy as np
from PIL import Image

FOREIGN = '/datasets/agamotto/Agamotto-SO/VoxDet'  # where the authors' machine kept VoxDet


def _disc(h, w, cy, cx, r):
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2


def _scene(rng, h, w, objects):
    "A noisy background with discs of the given (id, colour) pairs; returns the image and [(id, mask)]."
    img = rng.integers(60, 200, (h, w, 3)).astype(np.uint8); out = []
    for k, (oid, colour) in enumerate(objects):
        m = _disc(h, w, 20 + 25 * (k % 2), 20 + 30 * k, 8 + 2 * k); img[m] = colour; out.append((oid, m))
    return img, out


def _box_xywh(m):
    ys, xs = np.nonzero(m); return [float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()), float(ys.max() + 1 - ys.min())]


def _view_video(d: Path, oid: int, colour, n_frames: int, rgb_mask_mode='RGB'):
    (d/'rgb').mkdir(parents=True); (d/'mask').mkdir()
    for f in range(n_frames):
        m = _disc(60, 60, 30, 30, 12 + 4 * f); img = np.full((60, 60, 3), 250, np.uint8); img[m] = colour
        Image.fromarray(img).save(d/'rgb'/f'{f:06d}.jpg', quality=95)
        Image.fromarray(np.stack([m.astype(np.uint8) * 255] * 3, -1)).save(d/'mask'/f'{f:06d}.jpg', quality=100)  # RGB masks, JPEG as VoxDet's


COLOURS = {1: (220, 30, 30), 2: (30, 60, 220), 3: (30, 190, 60), 4: (230, 200, 20), 11: (150, 50, 200), 12: (20, 200, 200)}


def write_voxdet(root: Path, n_scenes=3, n_frames=3, seed=0) -> dict:
    "A VoxDet folder: RoboTools (objects 1-4, object 4 in no scene) and OWID (objects 11, 12)."
    rng = np.random.default_rng(seed); root = Path(root); rt = root/'RoboTools'; truth = {}
    images, anns = [], []
    for s in range(n_scenes):
        fn = f'{s:06d}/rgb/{s:06d}.jpg'; (rt/'test'/fn).parent.mkdir(parents=True)
        objs = [(1 + (s + k) % 3, COLOURS[1 + (s + k) % 3]) for k in range(2)]
        img, ms = _scene(rng, 80, 120, objs); Image.fromarray(img).save(rt/'test'/fn, quality=95)
        images.append({'id': s, 'file_name': fn, 'width': 120, 'height': 80})
        for oid, m in ms: anns.append({'id': len(anns), 'image_id': s, 'category_id': oid, 'bbox': _box_xywh(m), 'area': float(m.sum()), 'iscrowd': 0})
        truth[f'RoboTools/test/{fn}'] = ms
    cats = [{'id': i, 'name': f'obj_{i:06d}'} for i in range(1, 5)]
    (rt/'test'/'scene_gt_coco_all.json').write_text(json.dumps({'images': images, 'annotations': anns, 'categories': cats}))
    for oid in range(1, 5): _view_video(rt/'test_video'/f'obj_{oid:06d}_{oid}', oid, COLOURS[oid], n_frames)
    ow = root/'OWID'; (ow/'P2'/'images').mkdir(parents=True); oimgs, oanns = [], []
    for s in range(2):
        img, ms = _scene(rng, 64, 96, [(11, COLOURS[11]), (12, COLOURS[12])]); fn = f'{s:06d}.jpg'; Image.fromarray(img).save(ow/'P2'/'images'/fn)
        oimgs.append({'id': s, 'file_name': f'images/{fn}', 'width': 96, 'height': 64})
        for oid, m in ms:
            x, y, w, h = _box_xywh(m)
            oanns.append({'id': len(oanns), 'image_id': s, 'category_id': oid, 'bbox': [x, y, w, h], 'num_ins': 1,
                          'segmentation': [[x, y, x + w, y, x + w, y + h, x, y + h]]})
    for part in ('train', 'val'): (ow/'P2'/f'{part}_annotations.json').write_text(json.dumps({'images': oimgs if part == 'train' else [], 'annotations': oanns if part == 'train' else []}))
    for oid in (11, 12): _view_video(ow/'P1'/str(oid), oid, COLOURS[oid], 2)
    return dict(root=root, truth=truth)


def _encode_rle(mask):
    "The authors' RLE.encode_rle, as they wrote it: runs of the row-major flattened mask, starting with whatever the first pixel is."
    flat = mask.flatten(); change = np.where(np.diff(flat) != 0)[0] + 1
    return {'counts': np.diff(np.concatenate(([0], change, [len(flat)]))).tolist(), 'size': mask.shape, 'transpose': False}


def _query_entry(img_path: Path, mask_path: Path, cat_id: int, set_: str) -> dict:
    mask = np.array(Image.open(mask_path))[..., 0]
    if mask.max() > 1:
        th = np.median(np.unique(mask)); mask[mask < th] = 0; mask[mask >= th] = 1
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    y0, y1 = np.where(rows)[0][[0, -1]]; x0, x1 = np.where(cols)[0][[0, -1]]
    return {'bbox': (x0, y0, x1, y1), 'mask': _encode_rle(mask), 'is_query': True, 'ins': cat_id, 'set': set_}


def write_anns_pt(root: Path, out: Path, prefix: str=FOREIGN) -> Path:
    "anns.pt as the SoIR authors' create_dataset.py builds it from a VoxDet folder that lived at `prefix` on their machine."
    import torch
    root = Path(root); anns = {}
    def gallery(path, box, cat, set_, seg=None, num=None):
        e = anns.setdefault(str(path), {'bbox': [], 'num_ins': [], 'mask': [], 'is_query': False, 'ins': [], 'set': set_})
        e['bbox'].append(box); e['ins'].append(cat)
        if seg is not None: e['mask'].append(seg); e['num_ins'].append(num)
    xyxy = lambda b: (b[0], b[1], b[0] + b[2], b[1] + b[3])
    ow = json.loads((root/'OWID'/'P2'/'train_annotations.json').read_text())
    for cat_dir in sorted((root/'OWID'/'P1').iterdir()):
        cat = int(cat_dir.name)
        for a in [a for a in ow['annotations'] if a['category_id'] == cat]:
            info = next(i for i in ow['images'] if i['id'] == a['image_id'])
            gallery(f"{prefix}/OWID/P2/images/{Path(info['file_name']).name}", xyxy(a['bbox']), cat, 'OWID', a.get('segmentation', []), a.get('num_ins', 1))
        for im in (cat_dir/'rgb').iterdir():
            anns[f'{prefix}/OWID/P1/{cat}/rgb/{im.name}'] = _query_entry(im, cat_dir/'mask'/im.name, cat, 'OWID')
    rt = json.loads((root/'RoboTools'/'test'/'scene_gt_coco_all.json').read_text())
    for vid in sorted((root/'RoboTools'/'test_video').iterdir()):
        cat = int(vid.name.split('_')[-1])
        for a in [a for a in rt['annotations'] if a['category_id'] == cat]:
            info = next(i for i in rt['images'] if i['id'] == a['image_id'])
            gallery(f"{prefix}/RoboTools/test/{info['file_name']}", xyxy(a['bbox']), cat, 'RoboTools')
        for im in (vid/'rgb').iterdir():
            anns[f'{prefix}/RoboTools/test_video/{vid.name}/rgb/{im.name}'] = _query_entry(im, vid/'mask'/im.name, cat, 'RoboTools')
    torch.save(dict(anns), out)
    return Path(out)


def write_permir(root: Path, n_videos=4, small_video=None, seed=0) -> dict:
    "PerMiR as permirs_gen_dataset.py writes it: folders 0..N-1, frames 0..2, np.save(folder + '/masks.npz', list of 3 dicts)."
    rng = np.random.default_rng(seed); root = Path(root); truth = {}
    for v in range(n_videos):
        base = root/str(v); base.mkdir(parents=True); frames = []; track = 100 + 7 * v
        radii = [2, 9, 12] if v == small_video else [6 + 3 * int(k) for k in rng.permutation(3)]
        for f, r in enumerate(radii):
            img = rng.integers(60, 200, (64, 80, 3)).astype(np.uint8); m = _disc(64, 80, 32, 20 + 10 * f, r)
            other = _disc(64, 80, 15, 60, 6); img[other] = (200, 200, 200); img[m] = COLOURS[1 + v % 4]
            Image.fromarray(img).save(base/f'{f}.jpg', quality=95); frames.append({track: m})
        np.save(str(base) + '/masks.npz', frames)
        truth[str(v)] = np.stack([next(iter(fr.values())) for fr in frames])
    return dict(root=root, truth=truth)
