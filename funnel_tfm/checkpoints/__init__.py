"""Checkpoint formats (original TF1 / PyTorch, Hugging Face, ours) and the one assign-by-name helper.

This layer holds no model code: it reads and writes name -> array dicts and builds a model only through the
backbone class it is given, so the backbone can load itself (`FunnelTFM.from_pretrained`).

    ckpt = FunnelTFM.load_checkpoint("B6-6-6H768-ELEC-FULL-TF")
    export(ckpt, "out/hf", to="hf")
"""

from funnel_tfm.checkpoints.assign import AssignResult, assign_by_name
from funnel_tfm.checkpoints.loading import (FORMATS, ExportReport, FunnelCheckpoint, LoadReport, build_checkpoint,
                                            detect_format, export, from_model, save_pretrained)
from funnel_tfm.errors import CheckpointError

__all__ = ["FORMATS", "AssignResult", "CheckpointError", "ExportReport", "FunnelCheckpoint", "LoadReport",
           "assign_by_name", "build_checkpoint", "detect_format", "export", "from_model", "save_pretrained"]
