"""Stage B speed: seconds per object for 80 iterations, batched (many objects of many images in one
optimisation) against a naive loop that optimises one image at a time, in the same run.

CPU: the project's own backbone (data/mao_vit) on ORACLE objects of the default benchmark's test split.
GPU (when torch sees one): a ViT-B-sized DINOv2 built from a config (random weights: speed does not
depend on the weights) on random 224-px crops with random masks; the paper quotes 0.03 s per object.

    python benchmarks/bench_stage_b.py [--images 24] [--iters 80] [--skip-cpu] [--out benchmarks/results/stage_b.json]

On a GPU machine, `benchmarks/gpu_check.sh` runs this together with every other GPU check.
"""
import argparse, json, time, warnings
from pathlib import Path
import torch

from mao_nb.core import write_json, env_report
from mao_nb.stage_b import StageBConfig, object_batch, encode_objects, optimise_vectors


def _sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()


def time_stage_b(bb, pixels, masks, group, n_images, cfg, naive: bool) -> float:
    "Seconds for Stage B (encoding + optimisation) of all objects, batched or one image at a time."
    dev = bb.device; _sync(dev); t = time.perf_counter()
    if naive:
        for g in range(n_images):
            idx = (group == g).nonzero()[:, 0]
            if not len(idx): continue
            emb, cache = encode_objects(bb, pixels[idx])
            optimise_vectors(bb, cache, masks[idx].to(dev), torch.zeros(len(idx), dtype=torch.long, device=dev), emb, 1, cfg)
    else:
        for lo in range(0, len(group), cfg.max_objects):  # chunks (whole images are not needed for timing)
            sl = slice(lo, lo + cfg.max_objects); g = group[sl] - group[sl].min()
            emb, cache = encode_objects(bb, pixels[sl])
            optimise_vectors(bb, cache, masks[sl].to(dev), g.to(dev), emb, int(g.max()) + 1, cfg)
    _sync(dev); return time.perf_counter() - t


def cpu_case(n_images: int, iters: int) -> dict:
    from mao_nb.haystack import load_benchmark
    from mao_nb.shipped import default_backbone
    bb = default_backbone(device='cpu')
    recs = load_benchmark('default')['test'].gallery[:n_images]
    ob = object_batch(recs, bb.image_size, device='cpu')
    cfg = StageBConfig(iters=iters)
    out = {'device': 'cpu', 'threads': torch.get_num_threads(), 'backbone': repr(bb), 'images': n_images, 'objects': len(ob)}
    for naive in (False, True):
        s = time_stage_b(bb, ob.pixels, ob.masks, ob.group, n_images, cfg, naive)
        out['naive' if naive else 'batched'] = {'seconds': s, 'seconds_per_object': s / len(ob)}
    out['speedup'] = out['naive']['seconds'] / out['batched']['seconds']
    return out


def gpu_case(n_images: int, iters: int, objects_per_image: int = 8, dtype=torch.float32) -> dict:
    from mao_nb.backbones import backbone_from_config
    dev = torch.device('cuda')
    bb = backbone_from_config('dinov2', dtype=dtype, device=dev, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                              image_size=224, patch_size=14, mlp_ratio=4)
    for p in bb.parameters(): p.requires_grad_(False)
    N = n_images * objects_per_image; g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (N, 3, 224, 224), dtype=torch.uint8, generator=g)
    masks = torch.zeros(N, 224, 224); masks[:, 80:150, 70:160] = 1
    group = torch.arange(n_images).repeat_interleave(objects_per_image)
    cfg = StageBConfig(iters=iters, max_objects=256)
    time_stage_b(bb, pixels[:16], masks[:16], group[:16] - group[0], 2, StageBConfig(iters=2), False)  # warm-up
    out = {'device': torch.cuda.get_device_name(0), 'dtype': str(dtype), 'backbone': repr(bb), 'images': n_images, 'objects': N}
    for naive in (False, True):
        s = time_stage_b(bb, pixels, masks, group, n_images, cfg, naive)
        out['naive' if naive else 'batched'] = {'seconds': s, 'seconds_per_object': s / N}
    out['speedup'] = out['naive']['seconds'] / out['batched']['seconds']
    out['vs_paper_0.03s'] = 0.03 / out['batched']['seconds_per_object']
    return out


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--images', type=int, default=24); ap.add_argument('--iters', type=int, default=80)
    ap.add_argument('--gpu-images', type=int, default=64); ap.add_argument('--out', default='benchmarks/results/stage_b.json')
    ap.add_argument('--skip-cpu', action='store_true', help='only the GPU cases (the CPU case generates the default benchmark first)')
    a = ap.parse_args(); warnings.simplefilter('ignore')
    res = {'env': env_report(), 'iters': a.iters}
    if not a.skip_cpu: res['cpu'] = cpu_case(a.images, a.iters)
    if torch.cuda.is_available():
        res['gpu_fp32'] = gpu_case(a.gpu_images, a.iters)
        res['gpu_bf16'] = gpu_case(a.gpu_images, a.iters, dtype=torch.bfloat16)
    for k in ('cpu', 'gpu_fp32', 'gpu_bf16'):
        if k in res:
            r = res[k]
            print(f"{k:>9}: {r['objects']} objects of {r['images']} images, {a.iters} iterations: batched {r['batched']['seconds_per_object']*1e3:.1f} ms/object, "
                  f"one image at a time {r['naive']['seconds_per_object']*1e3:.1f} ms/object, speed-up x{r['speedup']:.1f}"
                  + (f", {r['vs_paper_0.03s']:.1f}x faster per object than the paper's 0.03 s" if 'vs_paper_0.03s' in r else ''))
    if not torch.cuda.is_available(): print('      gpu: no CUDA device here (run this script on a GPU machine for the GPU figures)')
    write_json(Path(a.out), res); print(f'wrote {a.out}')
