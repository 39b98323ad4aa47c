"""Spawn two gloo ranks ``runs`` times; each registers the exit hook under test, then exits with
its group alive. Prints how many runs lost a rank to a signal (run in a fresh interpreter)."""

import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from lightning.fabric.plugins.environments.lightning import find_free_network_port

from kanji_lab.callbacks.process_group import ProcessGroupAtExit


def _rank(rank: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    ProcessGroupAtExit().setup(None, None, "fit")
    for _ in range(50):
        dist.all_reduce(torch.ones(1000))
    dist.barrier()


def main(runs: int) -> None:
    lost = 0
    for _ in range(runs):
        try:
            mp.spawn(_rank, args=(find_free_network_port(),), nprocs=2)
        except mp.ProcessExitedException:
            lost += 1
    print(f"lost {lost} of {runs}")


if __name__ == "__main__":
    main(int(sys.argv[1]))
