"""Scaling of the Ray engine on this machine: gallery images per second with 1 and 2 Ray workers, as a ratio in one run,
against the local engine on the same images, and the projected cost of 1e6 and 1e8 images on N GPUs.

The gallery is the first `--images` test scenes of the default benchmark, the backbone the shipped stand-in, the objects
from the offline detector, Stage B as in the paper (80 iterations). Every run starts from an empty work folder, in one
Ray session (its start-up is not counted).

    python benchmarks/bench_scale.py [--images 24] [--chunk 4] [--out benchmarks/results/scale.json]
"""
import argparse, json, shutil, tempfile, time
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--images', type=int, default=24); ap.add_argument('--chunk', type=int, default=4)
    ap.add_argument('--method', default='mao'); ap.add_argument('--out', default='benchmarks/results/scale.json')
    ap.add_argument('--seconds-per-object', type=float, default=0.03, help="GPU cost of Stage B per object (default: the paper's 0.03 s)")
    ap.add_argument('--objects-per-image', type=float, default=15.0)
    a = ap.parse_args()
    from mao_nb.core import write_json
    from mao_nb.haystack import benchmark_split
    from mao_nb.loaders import load_image_folder
    from mao_nb.pipeline import PipelineConfig, decompose, gallery_vectors
    from mao_nb.shipped import default_backbone
    from mao_nb.scale import ray_init, ray_gallery_vectors, projected_hours, _ray
    tmp = Path(tempfile.mkdtemp()); photos = tmp/'photos'; photos.mkdir()
    for r in benchmark_split('default', 'test', n_scenes=a.images, progress=False).gallery: shutil.copy(r.path, photos/Path(r.path).name)
    recs = load_image_folder(photos); cfg = PipelineConfig(detector='offline', masker='colour', chunk=a.chunk)
    rows = {}
    t = time.perf_counter(); bb = default_backbone('eager')
    gallery_vectors(bb, decompose(recs, cfg, tmp/'local', progress=False), a.method, cfg, tmp/'local', progress=False)
    rows['local'] = len(recs) / (time.perf_counter() - t)
    ray_init(num_cpus=2)
    for w in (1, 2):
        t = time.perf_counter()
        ray_gallery_vectors(recs, lambda: default_backbone('eager'), a.method, cfg, tmp/f'ray{w}', workers=w, progress=False)
        rows[f'ray x{w}'] = len(recs) / (time.perf_counter() - t)
    _ray().shutdown()
    res = {'images': len(recs), 'chunk': a.chunk, 'method': a.method, 'images_per_s': {k: round(v, 3) for k, v in rows.items()},
           'ray_2_over_1': round(rows['ray x2'] / rows['ray x1'], 2), 'ray_1_over_local': round(rows['ray x1'] / rows['local'], 2)}
    res['projection_gpu_hours'] = {f'{n:.0e} images, {g} GPUs': round(projected_hours(n, a.objects_per_image, a.seconds_per_object, g), 1)
                                   for n in (1e6, 1e8) for g in (1, 8, 64)}
    print(json.dumps(res, indent=1)); Path(a.out).parent.mkdir(parents=True, exist_ok=True); write_json(Path(a.out), res)
    shutil.rmtree(tmp)


if __name__ == '__main__': main()
