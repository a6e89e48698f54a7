"""What the backbone's input size costs: Stage B milliseconds per object-iteration and embedding milliseconds per crop
for the shipped architecture (DINOv2 layout, 4 blocks, 96 wide, 8-px patches) at 64, 96 and 112 px, as a ratio to 64 px
in the same run, and the demo's Stage B time that follows from it.

Speed does not depend on the weights, so each size is a randomly initialised model of the same layout; the crops are
random pixels with random masks. This answers the cost half of "64, 96 or 112 px?"; the demo's time budget
(5 minutes on 2 CPU cores, of which Stage B already takes most at 64 px) is what rules the larger inputs out.

    python benchmarks/bench_input_size.py [--crops 128] [--iters 10] [--sizes 64 96 112] [--demo-crop-iters 2.1e6] [--json]
"""
import argparse, json, time
import torch
from mao_nb.pretrain import PretrainConfig, new_backbone
from mao_nb.stage_b import StageBConfig, encode_objects, optimise_vectors


def measure(size: int, crops: int, iters: int, seed: int = 0) -> dict:
    "Stage B ms per object-iteration and embedding ms per crop at input `size`."
    bb = new_backbone(PretrainConfig(image_size=size), attn_implementation='eager')
    g = torch.Generator().manual_seed(seed)
    px = torch.randint(0, 256, (crops, 3, size, size), generator=g, dtype=torch.uint8)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing='ij')
    c = torch.rand(crops, 2, generator=g) * size * 0.5 + size * 0.25; r = torch.rand(crops, generator=g) * size * 0.2 + size * 0.15
    masks = (((yy - c[:, 0, None, None]) ** 2 + (xx - c[:, 1, None, None]) ** 2) < r[:, None, None] ** 2).float()
    encode_objects(bb, px[:8], 1)                                                       # warm-up
    t = time.perf_counter(); emb, cache = encode_objects(bb, px, 1); t_emb = time.perf_counter() - t
    t = time.perf_counter()
    optimise_vectors(bb, cache, masks, torch.arange(crops), emb, crops, StageBConfig(iters=iters))
    t_opt = time.perf_counter() - t
    return dict(size=size, tokens=1 + (size // 8) ** 2, embed_ms_per_crop=1e3 * t_emb / crops, stage_b_ms_per_object_iter=1e3 * t_opt / crops / iters)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--crops', type=int, default=128); ap.add_argument('--iters', type=int, default=10)
    ap.add_argument('--sizes', type=int, nargs='+', default=[64, 96, 112])
    ap.add_argument('--demo-crop-iters', type=float, default=2 * 60 * 6.1 * 80 * 2,
                    help='object-iterations of Stage B in `make demo` (2 backbones x 60 scenes x 6.1 objects x 80 iterations x (per-crop + MaO))')
    ap.add_argument('--json', action='store_true', help='one JSON line per size')
    a = ap.parse_args()
    torch.manual_seed(0)
    rows = [measure(s, a.crops, a.iters) for s in a.sizes]
    base = rows[0]
    for r in rows:
        r['ratio_to_first'] = r['stage_b_ms_per_object_iter'] / base['stage_b_ms_per_object_iter']
        r['demo_stage_b_s'] = a.demo_crop_iters * r['stage_b_ms_per_object_iter'] / 1e3
        if a.json: print(json.dumps(r))
        else: print(f"{r['size']:4d} px ({r['tokens']:3d} tokens): Stage B {r['stage_b_ms_per_object_iter']:.2f} ms per object-iteration "
                    f"({r['ratio_to_first']:.2f}x {base['size']} px), embedding {r['embed_ms_per_crop']:.2f} ms per crop; "
                    f"Stage B of the demo ~{r['demo_stage_b_s']:.0f} s")


if __name__ == '__main__': main()
