"""Model families. Importing this package registers every model (one import per family file; see docs/layout.md,
"Adding a model family")."""
# one import per family file; importing registers its models
from . import adafocus, afnet_mobilenet, afnet_resnet, blvnet_tam, fullvideo, tsm_resnet  # noqa: F401
from .common import VideoClassifier, VideoOutput
from .registry import (BenchDefaults, CliFlag, ExportAdapter, FamilyHooks, MappedCheckpoint, create_model, list_models,
                       model_entry, register_model, registered, unregister_model)

__all__ = ["create_model", "list_models", "model_entry", "VideoClassifier", "VideoOutput", "register_model",
           "registered", "unregister_model", "FamilyHooks", "MappedCheckpoint", "ExportAdapter", "CliFlag",
           "BenchDefaults"]
