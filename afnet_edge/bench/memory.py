"""Memory: the peak of live tensor bytes of one forward (dispatch-mode tracking, any device), the process's resident
set (``/proc/self/status``) and the bytes a model keeps (weights, cached focal constant maps)."""
from __future__ import annotations

import weakref
from typing import Callable

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["MIB", "live_tensor_peak", "rss_kib", "reset_hwm", "state_bytes"]

MIB = float(1 << 20)


def live_tensor_peak(fn: Callable[[], object]) -> int:
    """Peak bytes of tensor storage created by ``fn()`` and alive at the same time (pre-existing tensors, e.g.
    weights and inputs, are not counted). Tracked per aten op with a ``TorchDispatchMode``; works on any device."""
    class _Live(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.refs: dict[int, list] = {}   # storage data_ptr -> [bytes, number of live tensors on it]
            self.cur = 0
            self.peak = 0

        def _release(self, key: int) -> None:
            ent = self.refs.get(key)
            if ent is None:
                return
            ent[1] -= 1
            if ent[1] <= 0:
                self.cur -= ent[0]
                del self.refs[key]

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                if not isinstance(t, torch.Tensor):
                    continue
                st = t.untyped_storage()
                key, nbytes = st.data_ptr(), st.nbytes()
                if key == 0 or nbytes == 0:
                    continue
                ent = self.refs.get(key)
                if ent is None:
                    if key in {a.untyped_storage().data_ptr() for a in tree_flatten((args, kwargs))[0]
                               if isinstance(a, torch.Tensor)}:
                        continue  # a view of, or an in-place op on, a tensor that existed before fn()
                    ent = self.refs[key] = [nbytes, 0]
                    self.cur += nbytes
                    self.peak = max(self.peak, self.cur)
                ent[1] += 1
                weakref.finalize(t, self._release, key)
            return out

    mode = _Live()
    with mode:
        fn()
    return mode.peak


def rss_kib() -> dict:
    """``{"VmHWM": KiB, "VmRSS": KiB}`` of this process (empty where ``/proc`` is not readable)."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    k, v = line.split(":")
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def reset_hwm() -> bool:
    """Reset the resident-set high-water mark (``/proc/self/clear_refs``); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def state_bytes(model: nn.Module) -> tuple[int, int]:
    """(bytes of parameters + buffers, bytes of cached focal constant maps)."""
    w = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    c = 0
    for m in model.modules():
        for entry in getattr(m, "_const_cache", {}).values():
            k = entry[1] if isinstance(entry, tuple) else entry
            if isinstance(k, torch.Tensor):
                c += k.numel() * k.element_size()
    return w, c
