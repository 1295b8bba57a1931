"""What a sweep prints: relm's own progress and results; the libraries' banners and tips only with --verbose.

Lightning's tips ("GPU available", "limit_val_batches was configured"), W&B's banners and
transformers' weight-loading bars say nothing a researcher acts on; `quiet_libraries()` turns them
off. With `--quiet` relm prints only warnings, errors and the final summary.
"""

from __future__ import annotations

import logging
import os
import warnings


def quiet_libraries() -> None:
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "transformers", "peft"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for module in ("lightning", "torch", "transformers", "peft", "pydantic", "wandb"):
        warnings.filterwarnings("ignore", module=module)
    warnings.filterwarnings(
        "ignore", message=".*(does not have many workers|limit_val_batches|LeafSpec|treespec|is deprecated).*"
    )
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass
