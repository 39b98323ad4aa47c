"""``perf.compile`` and ``quantization=qat`` reach the training step of every architecture, not
only validation (the RNN's auxiliary head once sent training around both)."""

import logging
import math

import pytest
import torch

from kanji_lab.callbacks.qat import QuantizationAwareTraining
from kanji_lab.models import module as module_lib
from kanji_lab.models.module import CharacterClassifier
from tests.test_models import LABELS
from tests.test_models import SMALL as NETS


def _batch():
    torch.manual_seed(0)
    return torch.randn(4, 1, 64, 64), torch.tensor([0, 1, 2, 3])


@pytest.mark.parametrize("arch", sorted(NETS))
def test_compile_switch_compiles_what_training_runs(arch, monkeypatch):
    """``torch.compile`` replaced by a recorder: the training step must call what it returned."""
    calls = []

    def fake_compile(fn):
        def compiled(*args):
            calls.append(fn)
            return fn(*args)

        return compiled

    monkeypatch.setattr(module_lib.torch, "compile", fake_compile)
    model = CharacterClassifier(arch, LABELS, net=NETS[arch], compile=True)
    model.log = lambda *args, **kwargs: None
    x, y = _batch()
    loss = model.training_step((x, y), 0)
    assert calls, f"{arch}: training ran around the compiled network"
    assert torch.isfinite(loss)


def _observed(graph: torch.nn.Module) -> list[torch.Tensor]:
    """The running minima of every activation observer in a QAT graph."""
    return [
        m.activation_post_process.min_val.clone()
        for m in graph.modules()
        if hasattr(m, "activation_post_process") and hasattr(m.activation_post_process, "min_val")
    ]


@pytest.mark.parametrize("arch", sorted(NETS))
def test_qat_fake_quantizes_the_training_step(arch):
    """One training step moves the QAT graph's observers (they only see what runs through the
    graph) and gives the same logits as the fake-quantized forward."""
    model = CharacterClassifier(arch, LABELS, net=NETS[arch])
    model.log = lambda *args, **kwargs: None
    qat = QuantizationAwareTraining()
    graph = qat.prepare(model.net)
    before = _observed(graph)
    assert before, f"{arch}: no observers in the QAT graph"
    model.train()
    x, y = _batch()
    loss = model.training_step((x, y), 0)
    after = _observed(graph)
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert torch.isfinite(loss)
    qat.set_observers(False)
    model.eval()
    with torch.no_grad():
        train_logits, _ = model.forward_with_losses(x, y)
        torch.testing.assert_close(train_logits, model(x))
    qat.release()
    assert "forward" not in vars(model.net) and "train_outputs" not in vars(model.net)


@pytest.mark.parametrize("arch", sorted(NETS))
def test_features_zero_builds_every_architecture(arch):
    net = CharacterClassifier(arch, LABELS, net={**NETS[arch], "features": 0}).net.eval()
    assert net(torch.randn(2, 1, 64, 64)).shape == (2, len(LABELS))


def test_sanity_check_does_not_count_as_the_best_validation():
    """Lightning's sanity check (two batches before training, and again after a resume) must not
    set or beat ``val/acc_best``: it is what checkpoints and sweeps are judged by."""
    from types import SimpleNamespace

    model = CharacterClassifier("cnn", LABELS, net=NETS["cnn"])
    model.log = lambda *args, **kwargs: None
    perfect = torch.eye(len(LABELS))[:4] * 10
    targets = torch.arange(4)
    model._trainer = SimpleNamespace(sanity_checking=True)
    model.val_acc.update(perfect, targets)
    model.on_validation_epoch_end()
    assert model.val_acc_best.compute() == float("-inf")
    model._trainer = SimpleNamespace(sanity_checking=False)
    model.on_validation_epoch_start()
    model.val_acc.update(perfect, targets)
    model.on_validation_epoch_end()
    assert model.val_acc_best.compute() == 1.0


def test_qat_default_epochs_all_happen_in_a_default_run(tmp_path):
    """The shipped quantization=qat counts its epochs from the end, so a default run (and any
    max_epochs of 3 or more) reaches fake quantization, the BN freeze and the observer freeze."""
    from types import SimpleNamespace

    from hydra.utils import instantiate

    from kanji_lab.errors import UserError
    from tests.conftest import compose_train

    cfg = compose_train(["quantization=qat"], tmp_path, tmp_path)
    for max_epochs in (cfg.trainer.max_epochs, 3, 20):
        qat = instantiate(cfg.callbacks.qat)
        qat.on_fit_start(SimpleNamespace(max_epochs=max_epochs), None)
        epochs = [qat.start_epoch, qat.freeze_bn_epoch, qat.freeze_observer_epoch]
        assert 0 <= epochs[0] < epochs[1] < epochs[2] < max_epochs
    with pytest.raises(UserError, match="needs a trainer.max_epochs"):
        instantiate(cfg.callbacks.qat).on_fit_start(SimpleNamespace(max_epochs=-1), None)


def test_training_loss_at_chance_after_an_epoch_warns(caplog):
    model = CharacterClassifier("cnn", LABELS, net=NETS["cnn"])
    model.train_loss.update(torch.tensor(0.999 * math.log(len(LABELS))))
    with caplog.at_level(logging.WARNING, logger="kanji_lab.models.module"):
        model.on_train_epoch_end()
    assert "the loss of guessing" in caplog.text and f"ln({len(LABELS)} classes)" in caplog.text
    caplog.clear()
    model.train_loss.update(torch.tensor(0.5 * math.log(len(LABELS))))
    with caplog.at_level(logging.WARNING, logger="kanji_lab.models.module"):
        model.on_train_epoch_end()
    assert "guessing" not in caplog.text


def test_a_source_of_blank_images_warns_with_counts(tmp_path, caplog):
    """Images that come out blank after normalisation (here: paper-white images read as light ink
    on dark) are counted and flagged, in the log and in the data warnings a run records."""
    from PIL import Image

    from kanji_lab.data.datamodule import CharacterDataModule

    root = tmp_path / "blank"
    root.mkdir()
    rows = ["path,char,writer"]
    for i in range(12):
        Image.new("L", (48, 48), 255).save(root / f"{i}.png")
        rows.append(f"{i}.png,{'ab'[i % 2]},{i // 2}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    data = {
        "source": "folder",
        "name": "blank",
        "root": str(root),
        "invert": "false",
        "cache_dir": str(tmp_path / "cache"),
    }
    dm = CharacterDataModule(data, batch_size=4)
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
    assert "12 of 12 images checked of" in caplog.text and "blank or uniform" in caplog.text
    assert any("12 of 12" in w for w in dm.data.info["warnings"])


@pytest.mark.parametrize("arch", sorted(NETS))
def test_the_module_pickles_for_spawned_ranks(arch):
    """trainer=ddp_sim spawns its ranks and pickles the LightningModule to them."""
    import pickle

    model = CharacterClassifier(arch, LABELS, net=NETS[arch])
    again = pickle.loads(pickle.dumps(model))
    x, y = _batch()
    again.eval(), model.eval()
    torch.testing.assert_close(again(x), model(x))
    assert again.forward_with_losses(x, y)[0].shape == (4, len(LABELS))
