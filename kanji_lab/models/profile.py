"""Size and cost of a network: parameters, multiply-accumulates per image, weight bytes."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

_GATES = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def weights_bytes(net: nn.Module) -> int:
    """Bytes of the state dict as stored (what a checkpoint or safetensors file holds)."""
    return sum(t.numel() * t.element_size() for t in net.state_dict().values())


def count_macs(net: nn.Module, size: int = 64) -> int:
    """Multiply-accumulates of ``net`` on one ``(1, 1, size, size)`` image in eval mode.

    Matrix products, convolutions and attention are counted by
    :class:`torch.utils.flop_counter.FlopCounterMode`; recurrent layers, which it does not see on
    the CPU, by forward hooks (gates x hidden x (input + hidden) per step and direction).
    """
    recurrent = [0]

    def hook(module: nn.RNNBase, inputs: tuple, output: object) -> None:
        recurrent[0] += _rnn_macs(module, inputs[0])

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.RNNBase)]
    was_training = net.training
    device = next(net.parameters()).device
    try:
        net.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net(torch.zeros(1, 1, size, size, device=device))
    finally:
        net.train(was_training)
        for handle in handles:
            handle.remove()
    return counter.get_total_flops() // 2 + recurrent[0]


def _rnn_macs(module: nn.RNNBase, x: torch.Tensor) -> int:
    steps = x.shape[1] if module.batch_first else x.shape[0]
    gates = next(g for kind, g in _GATES.items() if isinstance(module, kind))
    directions = 2 if module.bidirectional else 1
    total = 0
    for layer in range(module.num_layers):
        cin = module.input_size if layer == 0 else module.hidden_size * directions
        total += gates * module.hidden_size * (cin + module.hidden_size)
    return steps * directions * total


def profile(net: nn.Module, size: int = 64) -> dict[str, int]:
    """``parameters``, ``macs`` (per image) and ``weights_bytes`` (fp32 checkpoint weights)."""
    return {
        "parameters": count_parameters(net),
        "macs": count_macs(net, size),
        "weights_bytes": weights_bytes(net),
    }


def describe(stats: dict[str, int]) -> str:
    """One line for logs: ``1,234,567 parameters, 12.3 M MACs per image, 4.94 MB weights``."""
    return (
        f"{stats['parameters']:,} parameters, {stats['macs'] / 1e6:.1f} M MACs per image, "
        f"{stats['weights_bytes'] / 1e6:.2f} MB weights"
    )
