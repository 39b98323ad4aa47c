"""Close the distributed process group before the interpreter shuts down.

Lightning destroys the group at exit only for NCCL. A gloo rank that exits with its group alive
can abort in interpreter finalisation ("terminate called without an active exception", SIGABRT:
pytorch/pytorch#190489), which fails a ``trainer=ddp_sim`` run at random after it has finished.
Torch alone (no Lightning), so that a spawned rank that only needs the hook imports little;
training registers it through :class:`kanji_lab.callbacks.process_group.ProcessGroupAtExit`.
"""

from __future__ import annotations

import atexit

import torch.distributed as dist

_registered = False


def destroy_process_group() -> None:
    """Destroy the default process group if this process still has one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def destroy_process_group_at_exit() -> None:
    """Arrange, once per process, for :func:`destroy_process_group` to run at exit."""
    global _registered
    if not _registered:
        atexit.register(destroy_process_group)
        _registered = True
