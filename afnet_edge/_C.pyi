# Type stub of the compiled extension afnet_edge._C (csrc/ops, built by setup.py). Loading it registers the operators
# torch.ops.afnet_edge.* (focal_gather, focal_scatter, ample_fuse_pool, ample_fuse_blend, select_frames); it defines
# no Python names of its own. The stub lets static analysers resolve `from .. import _C`.
