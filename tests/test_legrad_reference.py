"""Our LeGrad (mao_nb.legrad) against the authors' reference package, legrad-torch 1.1, on the same CLIP weights.

legrad-torch wraps only open_clip models (and pins open-clip-torch<=2.23.0); `make setup` installs both with
--no-deps next to our pinned torch. We build a small random-weight open_clip ViT, copy it into a transformers
CLIP with `clip_from_open_clip`, and compare embeddings and LeGrad maps."""
import warnings
import pytest
import torch

import open_clip  # open-clip-torch==2.23.0 and legrad-torch 1.1: installed by `make setup` (Makefile); never skipped
import legrad as legrad_ref

from mao_nb.backbones import clip_from_open_clip
from mao_nb.legrad import legrad, legrad_features, legrad_from_cache


def _open_clip_model(quick_gelu: bool, seed: int = 0):
    "A small random open_clip CLIP: ViT of 3 blocks, width 64, 4 heads, 32-px images, 8-px patches."
    torch.manual_seed(seed)
    m = open_clip.model.CLIP(embed_dim=24, quick_gelu=quick_gelu,
                             vision_cfg=dict(layers=3, width=64, head_width=16, patch_size=8, image_size=32),
                             text_cfg=dict(context_length=8, vocab_size=64, width=32, heads=4, layers=1)).eval()
    with torch.no_grad():  # open_clip initialises some tensors to constants: randomise so that every weight matters
        for n, p in m.visual.named_parameters():
            if 'ln_' in n or n.endswith('bias'): p.add_(0.1 * torch.randn_like(p))
    return m


@pytest.mark.parametrize('quick_gelu', [False, True])
def test_clip_from_open_clip_same_embeddings(quick_gelu):
    m = _open_clip_model(quick_gelu)
    bb = clip_from_open_clip(m.visual)
    assert bb.config.hidden_act == ('quick_gelu' if quick_gelu else 'gelu')
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        ref, ours = m.encode_image(x), bb.embed(x, normalize=False)
    assert ref.shape == ours.shape == (4, 24)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('layers', [2, 1])
def test_legrad_matches_reference(layers):
    m = _open_clip_model(quick_gelu=False, seed=1)
    bb = clip_from_open_clip(m.visual)  # before wrapping: LeWrapper replaces forwards and reshapes the position embedding
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        wrapped = legrad_ref.LeWrapper(m, layer_index=-layers)  # the reference's default is -2: the last two blocks
    torch.manual_seed(2)
    image = torch.randn(1, 3, 32, 32)
    e = torch.nn.functional.normalize(torch.randn(5, 24), dim=-1)  # five target vectors against one image
    ref = wrapped.compute_legrad_clip(e, image)  # [1, 5, 32, 32]: it repeats the image per vector
    assert ref.shape == (1, 5, 32, 32)
    ref = ref[0].detach()
    px = image.expand(5, -1, -1, -1)
    ours = legrad(bb, px, e, layers=layers)
    cached = legrad_from_cache(bb, legrad_features(bb, px, layers=layers), e)
    assert ours.shape == (5, 32, 32)
    assert (ref[0] - ref[1]).abs().max() > 0.05  # the comparison is not trivial: vectors give different maps
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)
    torch.testing.assert_close(cached, ref, atol=1e-4, rtol=0)
