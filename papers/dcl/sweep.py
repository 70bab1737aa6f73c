"""The batch-size sweep: every loss at every batch size, through the runner (one record each).

python -m papers.dcl.sweep --dataset cifar10 --scale reduced --seeds 3 --data-root DATA
[--batch-sizes 32,64,128,256] [any other reproduce option]
"""

from __future__ import annotations

import sys

from common.runner import main

from .__main__ import ENTRY

DEFAULT_BATCH_SIZES = (32, 64, 128, 256)


def sweep(argv: list[str]) -> int:
    sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    if "--batch-sizes" in argv:
        at = argv.index("--batch-sizes")
        sizes = tuple(int(v) for v in argv[at + 1].split(","))
        argv = argv[:at] + argv[at + 2 :]
    for size in sizes:
        status = main(ENTRY, [*argv, f"batch_size={size}"])
        if status:
            return status
    return 0


if __name__ == "__main__":
    raise SystemExit(sweep(sys.argv[1:]))
