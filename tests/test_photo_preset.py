"The photo preset and the regime statistics, checked against the code they must agree with."
import numpy as np
import pytest

from mao_nb.core import ImageRecord, ObjectAnn
from mao_nb.data import regime_stats
from mao_nb.objects import Instance, photo_instance_params
from mao_nb.haystack import PRESETS, HaystackConfig, config_hash, get_config, benchmark_instances, backdrop_photos


def test_regime_crop_side_matches_crop_boxes():
    "regime_stats follows mao_nb.crops.crop_boxes' rule for the crop side, boundary cases included."
    from mao_nb.crops import crop_boxes
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 400, (200, 2)); wh = np.concatenate([rng.uniform(1, 200, (190, 2)), [[50, 10], [53.3333, 2], [60, 60], [10, 70]] * 2 + [[100, 100]] * 2])
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    for size, margin in [(64, 0.2), (224, 0.2), (64, 0.0), (32, 0.5)]:
        rec = ImageRecord('r', image=np.zeros((700, 700, 3), np.uint8), objects=[ObjectAnn(b, None, instance_id=1) for b in boxes])
        st = regime_stats([rec], input_size=size, margin=margin)
        ref = crop_boxes(boxes, size, margin).side.numpy()
        np.testing.assert_array_equal(st['crop_side'], ref)
        np.testing.assert_allclose(st['side_ratio'], np.maximum(wh[:, 0], wh[:, 1]).astype(np.float32) / ref, rtol=1e-5)


def test_sprite_presets_keep_their_hash():
    "The `objects` knob is left out of the config dict at its default: cached benchmarks keep their folders."
    assert {p: config_hash(p) for p in ('default', 'tiny', 'large')} == {'default': '7eab624ed0', 'tiny': 'b5fffc5a9b', 'large': '01a2f70d13'}
    assert 'objects' not in get_config('default').to_dict() and get_config('photo').to_dict()['objects'] == 'photo'
    assert HaystackConfig.from_dict(PRESETS['photo'].to_dict()) == PRESETS['photo']


def test_photo_instances():
    "Photo instances: deterministic, one photo per category, disjoint regions, never a test photo behind a scene."
    cfg = get_config('photo'); bi = benchmark_instances(cfg)
    assert {i.objects for v in bi.values() for i in v} == {'photo'}
    assert photo_instance_params(0, 7, 3) == photo_instance_params(0, 7, 3)
    assert {Instance(0, 7, i, objects='photo').category for i in range(16)} == {'coins'}
    test_photos = {i.category for i in bi['test']}
    assert not set(backdrop_photos(cfg, bi['train'][:30])) & test_photos
    with pytest.raises(ValueError, match='disjoint regions'): get_config('photo', n_train_instances=12)
