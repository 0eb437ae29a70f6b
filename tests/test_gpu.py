"""The GPU suite: ``pytest -m gpu`` (``make gpu-check``) on any CUDA machine. Without CUDA every
test here is skipped with the reason; CI never depends on a GPU.

- every model fits a few steps in 32-true, bf16-mixed and 16-mixed;
- the gradient penalty under autocast is finite and matches fp32 (it is computed in fp32);
- a steady-state step makes no host sync (``torch.cuda.set_sync_debug_mode("error")``);
- samples, the EMA generator and checkpoints round-trip between CUDA and CPU;
- DDP collectives with CUDA tensors: 2 processes sharing the one GPU over gloo;
- the opt-in speed options (channels_last, compile) on CUDA.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch

from lightning_gans import WGANGP
from lightning_gans.launch.cli import build_cli
from lightning_gans.models.losses import gradient_penalty
from tests.helpers import cli_args, fit

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
GPU = ["--trainer.accelerator", "gpu", "--trainer.devices", "1"]
CONFIGS = ["wgan_gp", "wgan", "gan", "vae", "toy/wgan_gp"]


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "16-mixed"])
@pytest.mark.parametrize("config", CONFIGS)
def test_every_model_fits_on_cuda(config, precision, tmp_path):
    cli = fit(tmp_path, config, *GPU, "--trainer.precision", precision, steps=3)
    assert cli.trainer.global_step == 3 and cli.model.device.type == "cuda"
    assert all(torch.isfinite(p).all() for p in cli.model.parameters())
    assert torch.isfinite(cli.model.sample(4)).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_gradient_penalty_under_autocast_matches_fp32(dtype):
    torch.manual_seed(0)
    model = WGANGP(data_shape=(3, 32, 32), g_width=16, d_width=16).cuda()
    real, fake = torch.rand(16, 3, 32, 32).cuda() * 2 - 1, torch.rand(16, 3, 32, 32).cuda() * 2 - 1
    eps = torch.rand(16).cuda()
    fp32 = gradient_penalty(model.critic, real, fake, eps)
    with torch.autocast("cuda", dtype=dtype):
        amp = gradient_penalty(model.critic, real, fake, eps)
    assert torch.isfinite(amp) and amp.dtype == torch.float32
    torch.testing.assert_close(amp, fp32, rtol=1e-4, atol=1e-6)


class SyncDebug(L.Callback):
    """Errors on any host sync from the start of step ``at`` to the start of the next."""

    def __init__(self, at: int):
        self.at, self.armed = at, False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.at:
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("error")
            self.armed = True
        elif trainer.global_step == self.at + 1:
            torch.cuda.set_sync_debug_mode("default")

    def teardown(self, trainer, pl_module, stage: str) -> None:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("at", [5, 12])  # warm, not logging; and after the 10th step logged
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
@pytest.mark.parametrize("config", CONFIGS)
def test_a_steady_state_step_makes_no_host_sync_on_cuda(config, precision, at, tmp_path):
    args = cli_args(tmp_path, config, *GPU, "--trainer.precision", precision, steps=at + 2)
    cli = build_cli([*args, "--trainer.log_every_n_steps", "10"], run=False)
    debug = SyncDebug(at=at)
    cli.trainer.callbacks.insert(0, debug)
    cli.trainer.fit(cli.model, cli.datamodule)  # a sync in step `at` raises here
    assert debug.armed and cli.trainer.global_step == at + 2


def test_samples_ema_and_checkpoints_round_trip_cuda_and_cpu(tmp_path):
    cli = fit(tmp_path, "wgan_gp", *GPU, "--model.ema_decay", "0.9", steps=3)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    z = torch.randn(8, cli.model.latent_dim)
    on_gpu = cli.model.sample(z=z.cuda()).cpu()
    on_cpu = WGANGP.load_from_checkpoint(ckpt, map_location="cpu")
    assert on_cpu.device.type == "cpu"
    torch.testing.assert_close(on_cpu.sample(z=z), on_gpu, atol=1e-4, rtol=1e-4)
    raw = on_cpu.sample(z=z, ema=False)
    assert not torch.allclose(raw, on_gpu)  # the EMA generator, not the raw one, came back
    # a CUDA checkpoint continues on the CPU, and a CPU one on CUDA
    cpu_run = fit(tmp_path, "wgan_gp", "--model.ema_decay", "0.9", steps=4, ckpt_path=ckpt,
                  name="cpu")  # fmt: skip
    assert cpu_run.trainer.global_step == 4 and cpu_run.model.device.type == "cpu"
    back = fit(tmp_path, "wgan_gp", *GPU, "--model.ema_decay", "0.9", steps=5, name="gpu",
               ckpt_path=tmp_path / "cpu" / "checkpoints" / "last.ckpt")  # fmt: skip
    assert back.trainer.global_step == 5 and back.model.device.type == "cuda"


def test_ddp_collectives_with_cuda_tensors_on_one_gpu(tmp_path):
    """Two gloo ranks both on cuda:0: one critic update (penalty included) equals one process on
    the concatenated batch, as tests/test_ddp.py checks on the CPU."""
    from tests.test_ddp import two_ranks_equal_one_process

    two_ranks_equal_one_process(tmp_path, "cuda")


@pytest.mark.parametrize("config", ["wgan", "gan", "vae"])
def test_channels_last_and_compile_on_cuda(config, tmp_path):
    speed = ["--model.channels_last", "true", "--model.compile", "true"]
    cli = fit(tmp_path, config, *GPU, "--trainer.precision", "bf16-mixed", *speed, steps=3)
    assert cli.trainer.global_step == 3
    conv = next(p for p in cli.model.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize(("precision", "lean"), [("32-true", True), ("bf16-mixed", True),
                                                 ("16-mixed", False)])  # fmt: skip
def test_the_lean_path_on_cuda_trains_what_the_hooked_one_does(precision, lean, tmp_path):
    """The lean update path (docs/design.md#the-lean-update-path) on the GPU: taken where no
    gradient scaler is needed, and the same weights as Lightning's hooked path (a listening
    callback switches it off) to float rounding: cuBLAS may pick other kernels per run."""
    from tests.helpers import CountSteps

    flags = [*GPU, "--trainer.precision", precision]
    fast = fit(tmp_path, "toy/wgan_gp", *flags, steps=6, name="lean")
    hooked = fit(tmp_path, "toy/wgan_gp", *flags, steps=6, name="hooked", callbacks=[CountSteps()])
    assert fast.model.lean is lean and not hooked.model.lean
    other = hooked.model.state_dict()
    for key, a in fast.model.state_dict().items():
        torch.testing.assert_close(a, other[key], rtol=1e-5, atol=1e-6, msg=key)
