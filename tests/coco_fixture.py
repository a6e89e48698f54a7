"""A small COCO-style SoIR dataset for the tests (gallery json + query json, polygons, compressed and uncompressed RLE),
written here rather than by the library: the loaders are tested on files they did not write."""
from pathlib import Path

import numpy as np
from PIL import Image

from mao_nb.core import mask_to_box, rle_encode, write_json

_COLOURS = np.array([[230, 40, 40], [40, 90, 230], [40, 200, 60], [240, 200, 30], [150, 60, 200], [30, 200, 200], [250, 130, 30], [120, 120, 120]], np.uint8)

def _background(rng, h: int, w: int) -> np.ndarray:
    small = rng.integers(70, 180, (max(h // 8, 2), max(w // 8, 2), 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR)).copy()

def _shape_mask(kind: str, h: int, w: int, x0: int, y0: int, s: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    if kind == 'rect': return (xx >= x0) & (xx < x0 + s) & (yy >= y0) & (yy < y0 + s * 3 // 4)
    c, r = (x0 + s / 2 - .5, y0 + s / 2 - .5), s / 2  # a disc
    return (xx - c[0]) ** 2 + (yy - c[1]) ** 2 <= r ** 2

def _place(rng, h: int, w: int, n: int, s_range=(10, 20)) -> list:
    "n non-overlapping squares (x0, y0, side) on a grid of cells."
    cols, rows = max(w // 32, 1), max(h // 32, 1)
    cells = rng.choice(cols * rows, size=min(n, cols * rows), replace=False)
    out = []
    for c in cells:
        cw, ch = w // cols, h // rows; s = int(rng.integers(*s_range)); s = min(s, cw - 2, ch - 2)
        out.append((int(c % cols) * cw + int(rng.integers(0, cw - s)), int(c // cols) * ch + int(rng.integers(0, ch - s)), s))
    return out

def write_coco_fixture(folder: str|Path, # where to write images/ and the json files
                       n_images: int=4, # gallery scenes
                       n_instances: int=3, # object instances (instance i has colour i)
                       size: tuple=(96, 128), # (H, W) of each scene
                       seed: int=0,
                      ) -> dict: # {'ann_json', 'query_json', 'image_root', 'masks': {file_name: [(instance_id, [H, W] bool)]}}
    "Write a tiny COCO-style SoIR dataset (gallery json + query json) and return its paths and true masks."
    folder = Path(folder); (folder/'images').mkdir(parents=True, exist_ok=True); (folder/'queries').mkdir(exist_ok=True)
    rng, (h, w) = np.random.default_rng(seed), size
    cats = [{'id': c + 1, 'name': n} for c, n in enumerate(['mug', 'box'])]
    cat_of = lambda inst: 1 + inst % 2  # instances 0, 2, 4 are mugs: category_id differs from instance_id
    images, anns, truth, seg_kinds = [], [], {}, ['polygon', 'rle', 'rle_list']
    for i in range(n_images):
        img, fn = _background(rng, h, w), f'images/scene_{i:03d}.jpg'
        insts = rng.choice(n_instances, size=int(rng.integers(1, min(3, n_instances) + 1)), replace=False)
        truth[fn] = []
        for inst, (x0, y0, s) in zip(insts, _place(rng, h, w, len(insts))):
            kind = seg_kinds[len(anns) % 3]
            m = _shape_mask('rect' if kind == 'polygon' else 'disc', h, w, x0, y0, s); img[m] = _COLOURS[int(inst) % len(_COLOURS)]
            bx = mask_to_box(m)
            seg = ([[float(bx[0]), float(bx[1]), float(bx[2]), float(bx[1]), float(bx[2]), float(bx[3]), float(bx[0]), float(bx[3])]] if kind == 'polygon'
                   else rle_encode(m, compressed=(kind == 'rle')))
            anns.append({'id': len(anns) + 1, 'image_id': i + 1, 'bbox': [float(bx[0]), float(bx[1]), float(bx[2] - bx[0]), float(bx[3] - bx[1])],
                         'category_id': cat_of(int(inst)), 'instance_id': int(inst), 'segmentation': seg, 'area': int(m.sum()), 'iscrowd': 0})
            truth[fn].append((int(inst), m))
        Image.fromarray(img).save(folder/fn, quality=95)
        images.append({'id': i + 1, 'file_name': fn, 'height': h, 'width': w})
    write_json(folder/'gallery.json', {'images': images, 'annotations': anns, 'categories': cats})
    qimages, qanns = [], []
    for inst in range(n_instances):  # one clean view per instance: the object large on a white background
        img = np.full((64, 64, 3), 255, np.uint8); m = _shape_mask('disc', 64, 64, 12, 12, 40); img[m] = _COLOURS[inst % len(_COLOURS)]
        fn = f'queries/object_{inst}.png'; Image.fromarray(img).save(folder/fn)
        bx = mask_to_box(m); qimages.append({'id': inst + 1, 'file_name': fn, 'height': 64, 'width': 64})
        qanns.append({'id': inst + 1, 'image_id': inst + 1, 'bbox': [float(bx[0]), float(bx[1]), float(bx[2] - bx[0]), float(bx[3] - bx[1])],
                      'category_id': cat_of(inst), 'instance_id': inst, 'segmentation': rle_encode(m)})
    write_json(folder/'queries.json', {'images': qimages, 'annotations': qanns, 'categories': cats})
    return dict(ann_json=folder/'gallery.json', query_json=folder/'queries.json', image_root=folder, masks=truth)
