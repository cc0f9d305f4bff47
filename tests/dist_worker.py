"""Worker for the 2-process (gloo) collection test: each rank collects its shard, then all-reduce."""

import sys

import torch
import torch.distributed as dist


def run(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    from polyfact.interp import CollectConfig, collect_stats
    from tests.planted import build

    torch.set_num_threads(1)
    p = build()
    stats = collect_stats(p.model, p.tokenizer, p.text_strings,
                          CollectConfig(backend="torch", seq_len=16, batch_size=2, progress=False),
                          rank=rank, world_size=world_size)
    if rank == 0:
        stats.save(f"{out_dir}/merged")
    dist.barrier()  # leave together: gloo aborts a process whose peer has already torn down
    dist.destroy_process_group()


if __name__ == "__main__":
    run(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
