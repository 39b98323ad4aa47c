"""The speed switches in ``perf`` are honoured and change nothing but speed."""

from types import SimpleNamespace

import pytest
import torch

from kanji_lab.models.module import CharacterClassifier
from kanji_lab.train import build_model
from tests.conftest import compose_train, tiny_overrides

NET = {"width": 4, "features": 16}


def test_channels_last_switch_sets_memory_format(tmp_path):
    on = build_model(compose_train(tiny_overrides(), tmp_path, tmp_path), list("ab"))
    off = build_model(
        compose_train([*tiny_overrides(), "perf.channels_last=false"], tmp_path, tmp_path),
        list("ab"),
    )
    seen = {}

    def record(name):
        return lambda module, args, out: seen.__setitem__(name, out)

    on.net.features[1].register_forward_hook(record("on"))
    off.net.features[1].register_forward_hook(record("off"))
    off.load_state_dict(on.state_dict())
    x = torch.randn(3, 1, 64, 64)
    torch.testing.assert_close(on.eval()(x), off.eval()(x))
    assert seen["on"].is_contiguous(memory_format=torch.channels_last)
    assert not seen["on"].is_contiguous()
    assert seen["off"].is_contiguous()


@pytest.mark.slow  # compiling takes minutes on 2 cores
def test_compile_switch_wraps_the_network_and_keeps_plain_weights():
    torch.manual_seed(0)
    eager = CharacterClassifier("cnn", list("abc"), net=NET).eval()
    compiled = CharacterClassifier("cnn", list("abc"), net=NET, compile=True).eval()
    assert compiled._compiled is not None and eager._compiled is None
    assert set(compiled.state_dict()) == set(eager.state_dict())  # no _orig_mod. keys
    compiled.load_state_dict(eager.state_dict())
    x = torch.randn(2, 1, 64, 64)
    torch.testing.assert_close(compiled(x), eager(x), rtol=1e-4, atol=1e-4)


def _optimizer(model):
    """The optimizer the module builds, as Lightning would ask for it during fit."""
    model._trainer = SimpleNamespace(estimated_stepping_batches=10, max_epochs=1)
    return model.configure_optimizers()["optimizer"]


def test_fused_optimizer_switch(tmp_path):
    cfg = compose_train(
        [*tiny_overrides(), "debug=fdr", "perf.fused_optimizer=false"], tmp_path, tmp_path
    )
    model = build_model(cfg, list("ab"))
    optimizer = _optimizer(model)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert all(group["fused"] in (False, None) for group in optimizer.param_groups)
    cfg.perf.fused_optimizer = True
    fused = _optimizer(build_model(cfg, list("ab")))
    assert all(group["fused"] is True for group in fused.param_groups)
    assert sum(len(g["params"]) for g in fused.param_groups) == len(list(model.parameters()))
