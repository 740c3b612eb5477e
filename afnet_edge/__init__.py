"""afnet_edge — AFNet ("Look More but Care Less in Video Recognition", NeurIPS 2022) that really skips frames.

Quick use::

    import afnet_edge, torch
    model = afnet_edge.create_model("af_resnet50", num_classes=174, num_frames=12)
    out = model(torch.randn(1, 12, 3, 224, 224))
    out.logits, out.masks
"""
from .checkpoint import CheckpointError, inspect_checkpoint, load_checkpoint, save_checkpoint
from .flops import count_flops
from .models import VideoClassifier, VideoOutput, create_model, list_models

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "VideoClassifier", "VideoOutput", "load_checkpoint", "save_checkpoint",
           "inspect_checkpoint", "CheckpointError", "count_flops", "__version__"]


def _map_repo_export() -> None:
    """Development checkouts (``setup.py develop``, ``PYTHONPATH=<repo>``) keep the export code in the repository-root
    folder ``export/``; serve it as ``afnet_edge.export`` (installed wheels ship it as ``afnet_edge/export``)."""
    import importlib.util
    import os
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    src = os.path.join(os.path.dirname(here), "export")
    if os.path.isdir(os.path.join(here, "export")) or not os.path.isfile(os.path.join(src, "__init__.py")):
        return

    class _ExportFinder:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name != __name__ + ".export":
                return None
            return importlib.util.spec_from_file_location(name, os.path.join(src, "__init__.py"),
                                                          submodule_search_locations=[src])

    # First in line: an editable install of another checkout registers its own finder for this name, and the
    # export code must come from the same tree as the afnet_edge package that is actually imported.
    sys.meta_path.insert(0, _ExportFinder)


_map_repo_export()
