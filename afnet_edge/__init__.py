"""afnet_edge — AFNet ("Look More but Care Less in Video Recognition", NeurIPS 2022) that really skips frames.

Quick use::

    import afnet_edge, torch
    model = afnet_edge.create_model("af_resnet50", num_classes=174, num_frames=12)
    out = model(torch.randn(1, 12, 3, 224, 224))
    out.logits, out.masks
"""
from .checkpoint import CheckpointError, inspect_checkpoint, load_checkpoint, save_checkpoint
from . import data
from .demo_model import demo_card, load_demo_model
from .flops import count_flops
from .models import VideoClassifier, VideoOutput, create_model, list_models

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "VideoClassifier", "VideoOutput", "load_checkpoint", "save_checkpoint",
           "inspect_checkpoint", "CheckpointError", "count_flops", "load_demo_model", "demo_card", "data",
           "__version__"]

