"""Quantization-aware training (``quantization=qat``), after torchvision's classification QAT
recipe: fuse conv/BN/ReLU, ``prepare_qat``, train with fake quantization, freeze the observers and
the batch-norm statistics later, convert.

Implementation choice (torch 2.13): ``torch.ao.quantization`` FX graph mode (``prepare_qat_fx``).
It works on any traceable network without per-architecture fusion lists or QuantStubs (eager
mode needs both), and the fused QAT modules it builds share their parameters and BN buffers with the
original network. The callback therefore keeps the original network as the module's ``net`` (so
checkpoints, ``model.safetensors`` and the best-checkpoint reload keep the plain float layout)
and only routes its forward through the fake-quantized graph. A network with more training outputs
than logits (``train_outputs``, e.g. the RNN's auxiliary head) is traced through those, and both
its forward and its ``train_outputs`` are routed through the one graph, so training is
fake-quantized as validation is. Fake quantization matches ONNX
Runtime's INT8 scheme (int8 symmetric per-channel weights, uint8 activations), and deployment goes
through the same path as post-training quantization: the trained float weights are exported to
``model.onnx`` and statically quantized to ``model.int8.onnx`` (QDQ), calibrated on training
batches. ``convert()`` gives torch's own int8 model (fbgemm/x86 kernels), which does not export to
ONNX; it is there to check the converted model against the fake-quantized one.

Metrics logged during QAT epochs are those of the fake-quantized model; the test after fit scores
the float weights. At the first QAT epoch the best-checkpoint and early-stopping records are reset,
so the best checkpoint (what gets exported) is a quantization-aware one.
"""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from torch import nn

from kanji_lab.errors import UserError

log = logging.getLogger(__name__)


def _ao():
    """torch.ao.quantization (deprecated upstream in favour of torchao, still shipped in 2.13)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torch.ao.nn.intrinsic.qat as nniqat
        import torch.ao.quantization as ao
        from torch.ao.quantization import quantize_fx
    return ao, quantize_fx, nniqat


class QuantizationAwareTraining(pl.Callback):
    """Fake quantization from epoch ``start_epoch``; observers frozen from
    ``freeze_observer_epoch`` and BN statistics from ``freeze_bn_epoch`` (None: never). Negative
    epochs count from the end of training (-1: the last of ``trainer.max_epochs``)."""

    def __init__(
        self,
        start_epoch: int = 0,
        freeze_bn_epoch: int | None = None,
        freeze_observer_epoch: int | None = None,
        backend: str = "x86",
        reset_best: bool = True,
    ) -> None:
        self.start_epoch = start_epoch
        self.freeze_bn_epoch = freeze_bn_epoch
        self.freeze_observer_epoch = freeze_observer_epoch
        self.backend = backend
        self.reset_best = reset_best
        self.graph: nn.Module | None = None
        self._net: nn.Module | None = None
        self._prefix = ""  # of the network's own keys in the graph's state dict
        self._pending_state: dict[str, Any] | None = None

    # --- the QAT graph -------------------------------------------------------------------------
    def prepare(self, net: nn.Module, device: torch.device | str = "cpu") -> nn.Module:
        """Fuse and insert fake quantization (a graph sharing ``net``'s parameters), and route
        ``net``'s forward through it."""
        ao, quantize_fx, _ = _ao()
        mapping = ao.get_default_qat_qconfig_mapping(self.backend)
        example = (torch.zeros(2, 1, 64, 64, device=device),)
        several = hasattr(net, "train_outputs")
        was_training = net.training
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = _TrainOutputs(net) if several else net
            self.graph = quantize_fx.prepare_qat_fx(traced.train(), mapping, example).to(device)
        net.train(was_training)
        if self._pending_state:
            self.graph.load_state_dict(self._pending_state, strict=False)
        self._net, self._prefix = net, "net." if several else ""
        graph = self.graph

        def run(x: torch.Tensor) -> Any:
            graph.train(net.training)
            return graph(x)

        # instance attributes: state_dict and checkpoints stay unchanged
        if several:
            net.train_outputs = run
            net.forward = lambda x: run(x)[0]
        else:
            net.forward = run
        return self.graph

    def release(self) -> None:
        """Give the network back its own float forward."""
        for name in ("forward", "train_outputs"):
            if self._net is not None and name in vars(self._net):
                delattr(self._net, name)

    def convert(self) -> nn.Module:
        """torch's int8 model converted from a copy of the QAT graph (eval mode, CPU)."""
        if self.graph is None:
            raise RuntimeError("QAT has not started: nothing to convert")
        _, quantize_fx, _ = _ao()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return quantize_fx.convert_fx(copy.deepcopy(self.graph).cpu().eval())

    def set_observers(self, enabled: bool) -> None:
        ao, _, _ = _ao()
        if self.graph is not None:
            self.graph.apply(ao.enable_observer if enabled else ao.disable_observer)

    def freeze_bn(self) -> None:
        _, _, nniqat = _ao()
        if self.graph is not None:
            self.graph.apply(nniqat.freeze_bn_stats)

    # --- Lightning hooks -----------------------------------------------------------------------
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        last = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        for name in ("start_epoch", "freeze_bn_epoch", "freeze_observer_epoch"):
            epoch = getattr(self, name)
            if epoch is None or epoch >= 0:
                continue
            if last is None:
                raise UserError(
                    f"quantization.{name}={epoch} counts from the end of training, which needs "
                    "a trainer.max_epochs (or give epochs from the start)"
                )
            setattr(self, name, max(0, last + epoch))

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        if self.graph is None and epoch >= self.start_epoch:
            self.prepare(pl_module.net, pl_module.device)
            log.info("QAT: fake quantization from epoch %d", epoch)
            if epoch == self.start_epoch and self.reset_best:
                _reset_best(trainer, pl_module)
        if self.graph is None:
            return
        self.set_observers(self._observing(epoch))
        if self.freeze_bn_epoch is not None and epoch >= self.freeze_bn_epoch:
            self.freeze_bn()

    def _observing(self, epoch: int) -> bool:
        return self.freeze_observer_epoch is None or epoch < self.freeze_observer_epoch

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.set_observers(False)  # validation data must not move the quantization ranges

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.set_observers(self._observing(trainer.current_epoch))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.release()

    def state_dict(self) -> dict[str, Any]:
        if self.graph is None:
            return {}
        net = self._net
        shared = {self._prefix + k for k in net.state_dict()} if net is not None else set()
        return {k: v for k, v in self.graph.state_dict().items() if k not in shared}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending_state = dict(state_dict) or None


class _TrainOutputs(nn.Module):
    """The network's ``train_outputs`` as a module to trace (its keys gain the prefix ``net.``)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.net.train_outputs(x)


def _reset_best(trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
    """Forget the float epochs' best scores so the best checkpoint is a QAT one."""
    for cb in trainer.callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.monitor and cb.monitor != "epoch":
            if trainer.is_global_zero:
                for path in cb.best_k_models:
                    Path(path).unlink(missing_ok=True)
            cb.best_k_models, cb.kth_best_model_path, cb.best_model_path = {}, "", ""
            cb.best_model_score, cb.kth_value = None, _worst(cb.mode)
        elif isinstance(cb, EarlyStopping):
            cb.wait_count = 0
            cb.best_score = _worst(cb.mode)
    best = getattr(pl_module, "val_acc_best", None)
    if best is not None:
        best.reset()


def _worst(mode: str) -> torch.Tensor:
    return torch.tensor(torch.inf if mode == "min" else -torch.inf)
