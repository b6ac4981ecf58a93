"""Device helpers: fused optimizer steps where kernels exist, and the CPU allocator setting."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest
import torch
from torch import nn

from neuroclass.config import OptimConfig
from neuroclass.device import fused_optimizer, pick_device
from neuroclass.training.optim import make_optimizer

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# a training loop like the Trainer's (size m CNN, batch 128 of 28x28): minor page faults per step
FAULTS_PER_STEP = """
import resource, sys
import torch
from neuroclass.device import keep_freed_memory
from neuroclass.models.cnn import CNN, CNNConfig
torch.manual_seed(0)
if sys.argv[1] == "tuned":
    assert keep_freed_memory()
model = CNN(CNNConfig(channels=[24, 48, 96]), (1, 28, 28), 10).to(memory_format=torch.channels_last)
opt = torch.optim.AdamW(model.parameters())
x = torch.randn(128, 1, 28, 28).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (128,))
def step():
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
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
def test_allocator_setting_stops_page_faults_in_a_training_loop():
    def faults(mode: str) -> float:
        out = subprocess.run([sys.executable, "-c", FAULTS_PER_STEP, mode], capture_output=True,
                             text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])

    untuned, tuned = faults("plain"), faults("tuned")
    assert tuned < untuned / 5, (tuned, untuned)


def test_pick_device_rejects_unknown_names_with_the_choices():
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(Exception, match="auto, cpu, cuda"):
        pick_device("tpu")
