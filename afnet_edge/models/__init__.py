"""Model families. Importing this package registers every model."""
from . import afnet_mobilenet, afnet_resnet, tsm_resnet  # noqa: F401  (registration side effects)
from .common import VideoClassifier, VideoOutput
from .registry import create_model, list_models, model_entry

__all__ = ["create_model", "list_models", "model_entry", "VideoClassifier", "VideoOutput"]
