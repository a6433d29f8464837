"""A run for the kill-and-resume tests, executed in a subprocess.

Usage: python checkpoint_run.py DIR OUT.npy CHUNK [slow|fast] [SEGMENTS] [BLOCKS]

It trains a small fixed ensemble (BLOCKS = 5 blocks of 8 members, SEGMENTS = 8
saved times after t = 0 by default) with a checkpoint in DIR and saves the
outputs to OUT.npy. It prints ``start B S n b1,…,bn`` (flushed) before each chunk of n blocks
advances to step count S (B = the chunk's first block) and ``saved B S`` after
each block's file is written, so the test can tell work in flight from work
saved. With ``slow``, every advance sleeps 0.1 s first, so that kills land in
the middle of the run rather than during start-up.
"""

import sys
import time

import jax
import numpy as np

import jaxlimit as jl
from jaxlimit.training import checkpoints, ensemble


def main():
    directory, out, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
    slow = len(sys.argv) > 4 and sys.argv[4] == "slow"
    segments = int(sys.argv[5]) if len(sys.argv) > 5 else 8
    blocks = int(sys.argv[6]) if len(sys.argv) > 6 else 5

    advance, save = ensemble._BlockEngine.advance, checkpoints.BlockStore.save

    def logged_advance(self, state, blocks, k0, k1):
        print(f"start {blocks[0]} {k1} {len(blocks)} {','.join(map(str, blocks))}", flush=True)
        if slow:
            time.sleep(0.1)
        return advance(self, state, blocks, k0, k1)

    def logged_save(self, block, record):
        save(self, block, record)
        print(f"saved {block} {record.steps[-1]}", flush=True)

    ensemble._BlockEngine.advance = logged_advance
    checkpoints.BlockStore.save = logged_save
    data = jl.synthetic_problem(jax.random.key(0), 6, 4, 2)
    model = jl.TwoLayer(64, 4, "xavier", "tanh")
    result = jl.run_ensemble(model, data, times=np.linspace(0, 2, segments + 1)[1:], n_members=8 * blocks, seed=5,
                             execution=jl.Execution(lanes=8, chunk_size=chunk), checkpoint=jl.Checkpoint(directory))
    np.save(out, result.outputs)


if __name__ == "__main__":
    main()
