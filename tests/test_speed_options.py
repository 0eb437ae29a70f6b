"""The opt-in speed options on the CPU: channels_last changes the layout, not the numbers;
torch.compile trains (slow to compile: marked slow); WGAN-GP refuses compile
(tests/test_bad_input.py). On CUDA, tests/test_gpu.py runs both under bf16."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import fit


def test_channels_last_trains_the_same_numbers(tmp_path):
    flags = ["--trainer.limit_val_batches", "0", "--samples.every_n_steps", "0"]
    plain = fit(tmp_path, "wgan", *flags, steps=3, name="plain")
    fast = fit(tmp_path, "wgan", *flags, "--model.channels_last", "true", steps=3, name="cl")
    convs = [p for p in fast.model.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    for (name, a), b in zip(
        plain.model.state_dict().items(), fast.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b.contiguous(), atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.slow
def test_compile_trains_and_keeps_checkpoint_keys(tmp_path):
    cli = fit(tmp_path, "toy/wgan", "--model.compile", "true", steps=3)
    assert cli.trainer.global_step == 3
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert not any("_orig_mod" in k for k in saved["state_dict"])  # compiled in place
