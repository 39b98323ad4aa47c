import pytest
import torch
import torch.nn.functional as F

from kanji_lab.data.augment import BatchAugment, max3x3
from kanji_lab.data.datamodule import EpochBatchSampler, encode_targets
from kanji_lab.errors import UserError


def _batch():
    x = torch.zeros(8, 1, 64, 64)
    x[:, :, 20:44, 30:34] = 1.0
    return x


def test_augment_keeps_shape_range_and_paper():
    torch.manual_seed(0)
    out = BatchAugment(elastic=0.02, noise=0)(_batch())
    assert out.shape == (8, 1, 64, 64)
    assert out.min() >= 0 and out.max() <= 1
    assert out[:, :, :4, :4].abs().max() < 1e-6  # corners stay blank paper
    # every sample is distorted differently
    assert not torch.allclose(out[0], out[1])


def test_identity_settings_leave_images_unchanged():
    aug = BatchAugment(rotate=0, scale=(1, 1), aspect=0, shear=0, translate=0, thickness=0, noise=0)
    torch.testing.assert_close(aug(_batch()), _batch(), atol=1e-5, rtol=0)


def test_thickness_changes_ink_amount_both_ways():
    torch.manual_seed(1)
    aug = BatchAugment(
        rotate=0, scale=(1, 1), aspect=0, shear=0, translate=0, thickness=1.0, noise=0
    )
    x = _batch().repeat(16, 1, 1, 1)
    ink = aug(x).sum(dim=(1, 2, 3))
    base = x[0].sum()
    assert (ink > base * 1.05).any() and (ink < base * 0.95).any()


def test_paper_noise_marks_the_paper_leaves_full_ink_and_varies_by_image():
    torch.manual_seed(2)
    still = {"rotate": 0, "scale": (1, 1), "aspect": 0, "shear": 0, "translate": 0, "thickness": 0}
    x = _batch().repeat(8, 1, 1, 1)
    out = BatchAugment(**still, noise=0.2)(x)
    assert out.min() >= 0 and out.max() <= 1
    ink = x == 1
    torch.testing.assert_close(out[ink], x[ink])  # full ink stays ink
    paper = out[:, 0, :16, :]  # a blank band of each image
    assert (paper > 0).float().mean() > 0.9  # noise on nearly every paper pixel
    spread = paper.flatten(1).mean(1)
    assert spread.max() > 2 * spread.min()  # each image draws its own spread, up to 0.2
    assert spread.max() < 0.2 * 0.8 * 1.2  # half-normal mean: 0.8 of the spread
    torch.testing.assert_close(BatchAugment(**still, noise=0)(x), x, atol=1e-5, rtol=0)


def test_negative_paper_noise_is_refused_not_ignored():
    with pytest.raises(UserError, match=r"augment.noise=-0.1: use 0 \(off\) or a spread above 0"):
        BatchAugment(noise=-0.1)


def test_max3x3_is_max_pooling():
    x = torch.rand(4, 1, 64, 64)
    for image in (x, x.contiguous(memory_format=torch.channels_last), -x):
        assert torch.equal(max3x3(image), F.max_pool2d(image, 3, 1, 1))


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


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_affine_draws_follow_the_configured_distribution_on_every_device(device):
    """The transform distribution does not depend on the device that draws it."""
    torch.manual_seed(0)
    aug = BatchAugment(rotate=10.0, scale=(0.8, 1.2), aspect=0.0, shear=0.0, translate=0.1)
    theta = aug.affine(20000, torch.device(device)).cpu().double()
    a = theta[:, :, :2]
    scale = 1 / torch.linalg.det(a).sqrt()  # rotation has det 1; the inverse scale is 1 / s^2
    angle = torch.rad2deg(torch.atan2(a[:, 1, 0], a[:, 0, 0]))
    shift = theta[:, :, 2] / 2
    assert abs(scale.mean() - 1.0) < 0.01 and scale.min() > 0.79 and scale.max() < 1.21
    assert abs(angle.mean()) < 0.3 and abs(angle.std() - 10 / 3**0.5) < 0.1
    assert abs(shift.abs().max() - 0.1) < 1e-3 and abs(shift.std() - 0.1 / 3**0.5) < 2e-3
