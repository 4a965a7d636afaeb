"""One training process of a multi-process training (started by ``TRLAligner._launch``).

    python -m torch.distributed.run --standalone --nproc_per_node 2 -m lettingo_trl.launch OUTPUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lettingo.types import PreferencePair
from lettingo_trl.aligner import LAUNCH_FILE
from lettingo_trl.plugin import aligner_class


def main(output_dir: str) -> None:
    launch = json.loads((Path(output_dir) / LAUNCH_FILE).read_text())
    pairs = [PreferencePair.from_dict(row) for row in launch["pairs"]]
    aligner = aligner_class(launch.get("aligner", "dpo"))(launch["settings"])
    aligner.train(pairs, launch["base"], Path(output_dir), init_adapter=launch.get("init_adapter"))


if __name__ == "__main__":
    main(sys.argv[1])
