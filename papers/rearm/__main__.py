"""python -m <this package> --dataset ml-100k --scale reduced --seeds 3 --data-root DATA"""

from pathlib import Path

from common.runner import PaperEntry, main

from .train import Config, run

ENTRY = PaperEntry(folder=Path(__file__).parent, config_model=Config, run=run)

if __name__ == "__main__":
    raise SystemExit(main(ENTRY))
