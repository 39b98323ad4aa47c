import torch

from kanji_lab.data.augment import BatchAugment
from kanji_lab.data.datamodule import EpochBatchSampler, encode_targets


def _batch():
    x = torch.zeros(8, 1, 64, 64)
    x[:, :, 20:44, 30:34] = 1.0
    return x


def test_augment_keeps_shape_range_and_paper():
    torch.manual_seed(0)
    out = BatchAugment(elastic=0.02)(_batch())
    assert out.shape == (8, 1, 64, 64)
    assert out.min() >= 0 and out.max() <= 1
    assert out[:, :, :4, :4].abs().max() < 1e-6  # corners stay blank paper
    # every sample is distorted differently
    assert not torch.allclose(out[0], out[1])


def test_identity_settings_leave_images_unchanged():
    aug = BatchAugment(rotate=0, scale=(1, 1), aspect=0, shear=0, translate=0, thickness=0)
    torch.testing.assert_close(aug(_batch()), _batch(), atol=1e-5, rtol=0)


def test_thickness_changes_ink_amount_both_ways():
    torch.manual_seed(1)
    aug = BatchAugment(rotate=0, scale=(1, 1), aspect=0, shear=0, translate=0, thickness=1.0)
    x = _batch().repeat(16, 1, 1, 1)
    ink = aug(x).sum(dim=(1, 2, 3))
    base = x[0].sum()
    assert (ink > base * 1.05).any() and (ink < base * 0.95).any()


def test_sampler_order_depends_on_seed_and_epoch_only():
    a = EpochBatchSampler(100, 32, shuffle=True, seed=5, drop_last=False)
    b = EpochBatchSampler(100, 32, shuffle=True, seed=5, drop_last=False)
    a.set_epoch(3)
    b.set_epoch(3)
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert len(a) == 4 and sum(len(x) for x in a) == 100
    b.set_epoch(4)
    assert [x.tolist() for x in a] != [x.tolist() for x in b]


def test_encode_targets_marks_unknown_characters():
    targets = encode_targets([ord("亜"), ord("愛"), ord("唖")], ["唖", "亜"])
    assert targets.tolist() == [1, -1, 0]
