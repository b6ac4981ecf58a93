"""Device helpers: fused optimizer steps where kernels exist, and the CPU allocator setting."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest
import torch
from torch import nn

from neuroclass.config import OptimConfig
from neuroclass.device import fused_optimizer, pick_device, set_threads, use_threads
from neuroclass.training.optim import make_optimizer

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# a 16 MiB block (a few training steps' activations): mapped from the system, or taken from the
# heap and kept there after it is freed? (mallinfo2 counters; "tuned": inside keep_freed_memory,
# "restored": after leaving it). Each mode named in argv runs in a process of its own, forked from
# this one after the imports below (Python and torch start once): as fresh as a new process that
# made the same imports. Prints "MAPPED KEPT" a line, one line per mode in order.
BLOCK_FATE = """
import contextlib, ctypes, os, sys, traceback
from neuroclass.device import keep_freed_memory
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                      "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def fate(mode):
    stack = contextlib.ExitStack()
    if mode == "tuned":
        assert stack.enter_context(keep_freed_memory())
    if mode == "restored":
        with keep_freed_memory() as tuned:
            assert tuned
    if mode == "after a nested block":  # a run around its fit: the outer block still holds it
        stack.enter_context(keep_freed_memory())
        with keep_freed_memory() as tuned:
            assert tuned
    if mode == "after a fit":
        import torch
        from neuroclass.config import AugmentConfig, ModelConfig, OptimConfig, TrainConfig
        from neuroclass.data.blocks import make_blocks
        from neuroclass.models import create
        from neuroclass.training.trainer import Trainer
        data = make_blocks(n=32, size=8)
        model = create(ModelConfig(name="mlp"), data.input_shape, 4, torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1))
        Trainer(TrainConfig(epochs=1, batch_size=16), OptimConfig(), AugmentConfig(), torch.device("cpu")).fit(
            model, data, None)
    before = libc.mallinfo2()
    block = libc.malloc(16 << 20)
    during = libc.mallinfo2()
    libc.free(block)
    after = libc.mallinfo2()
    print(during.hblkhd - before.hblkhd, after.fordblks - before.fordblks, flush=True)

for mode in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fate(mode)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
        sys.exit(f"mode {mode!r} failed")
"""


def test_fused_optimizer_needs_floating_parameters_on_a_device_with_kernels():
    assert fused_optimizer([torch.zeros(3), torch.zeros(2, 2)])
    assert not fused_optimizer([])
    assert not fused_optimizer([torch.zeros(3), torch.zeros(3, dtype=torch.int64)])
    assert not fused_optimizer([torch.zeros(3, device="meta")])


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_steps_are_fused_on_cpu_and_match_the_unfused_step(name):
    torch.manual_seed(0)
    model = nn.Linear(6, 3)
    reference = nn.Linear(6, 3)
    reference.load_state_dict(model.state_dict())
    optimizer = make_optimizer(model, OptimConfig(name=name, lr=0.01))
    assert optimizer.defaults["fused"] is True
    plain = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    unfused = plain([{"params": [reference.weight], "weight_decay": 5e-4},
                     {"params": [reference.bias], "weight_decay": 0.0}], lr=0.01)
    x = torch.randn(8, 6)
    for net, opt in ((model, optimizer), (reference, unfused)):
        for _ in range(3):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    torch.testing.assert_close(model.weight, reference.weight)
    torch.testing.assert_close(model.bias, reference.bias)


def test_sgd_and_parameters_without_kernels_keep_pytorchs_own_choice():
    assert make_optimizer(nn.Linear(2, 2), OptimConfig(name="sgd")).defaults.get("fused") in (None, False)
    meta = nn.Linear(2, 2, device="meta")
    assert make_optimizer(meta, OptimConfig(name="adamw")).defaults["fused"] is None


@pytest.mark.skipif(not GLIBC, reason="the allocator setting applies to glibc malloc only")
def test_allocator_setting_keeps_activation_sized_blocks_on_the_heap():
    modes = ["plain", "tuned", "restored", "after a fit", "after a nested block"]
    out = subprocess.run([sys.executable, "-c", BLOCK_FATE, *modes], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    fate = {mode: tuple(int(n) for n in line.split()) for mode, line in zip(modes, out.stdout.splitlines())}
    assert list(fate) == modes

    block = 16 << 20
    # kept: the free heap grows by the block less whatever free heap the block reused first, so
    # "kept" is read as more or less than half the block, not to the byte
    mapped, kept = fate["plain"]
    assert mapped >= block and kept < block // 2  # glibc's default: mapped afresh, unmapped on free
    mapped, kept = fate["tuned"]
    assert mapped == 0 and kept > block // 2  # from the heap, and still there for the next step
    mapped, kept = fate["restored"]
    assert mapped >= block and kept < block // 2  # glibc's default thresholds again after the block
    mapped, kept = fate["after a fit"]
    assert mapped >= block and kept < block // 2  # the Trainer tunes malloc for the fit only
    mapped, kept = fate["after a nested block"]
    assert mapped == 0 and kept > block // 2  # an inner block's end leaves the outer one's setting


def test_use_threads_restores_the_thread_count_on_exit():
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with use_threads(other) as count:
        assert count == other == torch.get_num_threads()
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="inside"):
        with use_threads(other):
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    with use_threads(None) as count:  # None: PyTorch's own choice, unchanged
        assert count == before
    assert set_threads(None) == before


def test_pick_device_rejects_unknown_names_with_the_choices():
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(Exception, match="auto, cpu, cuda"):
        pick_device("tpu")
