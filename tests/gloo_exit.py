"""Spawn two gloo ranks ``runs`` times; each registers the exit hook under test, then exits with
its group alive. Prints how many runs lost a rank to a signal (run in a fresh interpreter).
Each spawned rank re-imports this module, so it imports torch alone, not Lightning."""

import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from kanji_lab.process_group import destroy_process_group_at_exit


def _rank(rank: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    destroy_process_group_at_exit()
    for _ in range(50):
        dist.all_reduce(torch.ones(1000))
    dist.barrier()


def main(runs: int) -> None:
    from lightning.fabric.plugins.environments.lightning import find_free_network_port

    lost = 0
    for _ in range(runs):
        try:
            mp.spawn(_rank, args=(find_free_network_port(),), nprocs=2)
        except mp.ProcessExitedException:
            lost += 1
    print(f"lost {lost} of {runs}")


if __name__ == "__main__":
    main(int(sys.argv[1]))
