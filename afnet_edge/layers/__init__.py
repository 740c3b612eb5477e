"""Building blocks shared by the model families: navigation, focal blocks, the AF stage runner, activations."""
from .af_stage import DynamicFusion, ForwardContext, run_af_stage
from .focal import FocalBlock
from .navigation import SELECTIONS, Navigation, gumbel_select, threshold_select
from ..kernels.reference import temporal_shift

__all__ = ["DynamicFusion", "ForwardContext", "run_af_stage", "FocalBlock", "SELECTIONS", "Navigation",
           "gumbel_select", "threshold_select", "temporal_shift"]
