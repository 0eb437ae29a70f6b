"""DDP on CPU with gloo, 2 processes, through the real CLI
(docs/design.md#every-parameter-in-every-backward)."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lightning_gans import WGANGP
from lightning_gans.models.distributed import touch_every_parameter
from tests.helpers import QUIET, TINY_DIGITS, TINY_GAN_DIGITS, TINY_TOY, TINY_VAE, run_module
from tests.helpers.runs import best_of, rows

pytestmark = pytest.mark.slow  # make test-all (the default suite: make test)

DDP = [
    "--trainer.strategy",
    "ddp",
    "--trainer.devices",
    "2",
    "--trainer.accelerator",
    "cpu",
    "--trainer.callbacks+=tests.helpers.DumpParams",
    "--run.logger",
    "csv",
    "--trainer.log_every_n_steps",
    "1",
]


@pytest.mark.parametrize(
    ("config", "tiny"),
    [
        ("toy/gan", [*TINY_TOY, "--model.g_width", "32", "--model.d_width", "32"]),
        pytest.param(  # the GAN's loop with another loss: in `make test-all` (14 s)
            "toy/wgan",
            [*TINY_TOY, "--model.g_width", "32", "--model.d_width", "32"],
            marks=pytest.mark.slow,
        ),
        ("wgan_gp", [*TINY_DIGITS, *TINY_GAN_DIGITS]),
        ("toy/vae", [*TINY_TOY, *TINY_VAE]),
    ],
)
def test_plain_ddp_keeps_ranks_bit_identical(tmp_path, config, tiny):
    proc = run_module(
        "fit",
        "--config",
        f"configs/{config}.yaml",
        *tiny,
        *QUIET,
        *DDP,
        "--run.root",
        str(tmp_path),
        "--run.name",
        "run",
        "--trainer.max_steps",
        "4",
        "--samples.every_n_steps",
        "2",
        "--trainer.val_check_interval",
        "2",
        "--trainer.limit_val_batches",
        "1",
        env={"OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    r0, r1 = (torch.load(run / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["world_size"] == r1["world_size"] == 2
    assert r0["global_step"] == r1["global_step"] == 4
    for key in r0["start"]:  # all ranks start from identical weights ...
        assert torch.equal(r0["start"][key], r1["start"][key]), key
    for key in r0["parameters"]:  # ... and end with bit-identical parameters
        assert torch.equal(r0["end"][key], r1["end"][key]), key
    # every evaluation (steps 2 and 4) runs with rank 0's batch-norm statistics on every rank
    assert len(r0["val_buffers"]) == len(r1["val_buffers"]) == 2
    for b0, b1 in zip(r0["val_buffers"], r1["val_buffers"], strict=True):
        assert all(torch.equal(b0[k], b1[k]) for k in b0), [
            k for k in b0 if not torch.equal(b0[k], b1[k])
        ]
    assert any(not torch.equal(r0["start"][k], r0["end"][k]) for k in r0["end"])  # it trained
    assert not torch.equal(r0["noise"], r1["noise"])  # while their noise differs
    assert sorted(p.name for p in (run / "samples").glob("step_*.png")) == [
        "step_000002.png",
        "step_000004.png",
    ]  # rank 0 alone writes pictures
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert "train/" in header


# --- one critic update on 2 ranks x b == one process on 2b (WGAN-GP, penalty included) ---------


def _critic_update(model: WGANGP, real, z, eps, wrapper=None) -> dict[str, torch.Tensor]:
    """One WGAN-GP critic update exactly as AdversarialModule.training_step does it."""
    from lightning.pytorch.overrides.distributed import prepare_for_backward

    opt = torch.optim.Adam(model.critic.parameters(), lr=1e-2, betas=(0.0, 0.9))
    with torch.no_grad():
        fake = model.generator(z)
    model.rand = lambda *shape, noise: eps  # the interpolation weights of this process
    loss, _ = model.critic_loss(real, fake, noise=None)
    loss = touch_every_parameter(loss, model.generator)
    if wrapper is not None:
        prepare_for_backward(wrapper, loss)  # what Lightning's DDP strategy does before backward
    opt.zero_grad()
    loss.backward()
    opt.step()
    return {k: v.detach().clone() for k, v in model.critic.state_dict().items()}


def _rank(rank: int, port: int, data, out: str, device: str = "cpu") -> None:
    """One rank over gloo; ``device="cuda"``: both ranks on the one GPU (tests/test_gpu.py)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    model = WGANGP(data_shape=(2,), latent_dim=2, g_width=32, d_width=32).to(device)
    wrapper = torch.nn.parallel.DistributedDataParallel(model)  # find_unused_parameters=False
    real, z, eps = (t[rank].to(device) for t in data)
    result = _critic_update(model, real, z, eps, wrapper)
    if rank == 0:
        torch.save({k: v.cpu() for k, v in result.items()}, out)
    dist.destroy_process_group()


def test_two_ranks_equal_one_process_on_the_concatenated_batch(tmp_path):
    two_ranks_equal_one_process(tmp_path, "cpu")


def two_ranks_equal_one_process(tmp_path, device: str) -> None:
    b = 16
    g = torch.Generator().manual_seed(1)
    real = torch.randn(2, b, 2, generator=g)
    z = torch.randn(2, b, 2, generator=g)
    eps = torch.rand(2, b, generator=g)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "ddp.pt")
    mp.spawn(_rank, args=(port, (real, z, eps), out, device), nprocs=2, join=True)
    ddp = torch.load(out)

    torch.manual_seed(0)
    single = WGANGP(data_shape=(2,), latent_dim=2, g_width=32, d_width=32).to(device)
    before = {k: v.clone().cpu() for k, v in single.critic.state_dict().items()}
    flat = (t.flatten(0, 1).to(device) for t in (real, z, eps))
    one = {k: v.cpu() for k, v in _critic_update(single, *flat).items()}
    moved = [k for k in one if (one[k] - before[k]).abs().max() > 1e-3]
    assert len(moved) >= len(one) - 1  # all but the output bias, which the loss cannot see
    for key in one:
        torch.testing.assert_close(ddp[key], one[key], atol=1e-5, rtol=0)


# --- the real training_step: 2 ranks x b == 1 process x 2b, gradients and all ---------------


def fit_draws(tmp_path, name: str, batch: int, *extra: str) -> dict:
    """The toy WGAN-GP through the real CLI with tests.helpers.SameDraws: its gradients."""
    proc = run_module(
        "fit", "--config", "configs/toy/wgan_gp.yaml", *TINY_TOY[2:], *QUIET,
        "--model.g_width", "32", "--model.d_width", "32", "--data.batch_size", str(batch),
        "--trainer.max_steps", "2", "--trainer.limit_val_batches", "0", "--run.logger", "csv",
        "--trainer.callbacks+=tests.helpers.SameDraws", "--run.root", str(tmp_path),
        "--run.name", name, *extra, env={"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(tmp_path / name / "draws_rank0.pt")


def test_two_ranks_of_b_take_the_gradients_of_one_process_of_2b_in_the_real_step(tmp_path):
    ddp = fit_draws(tmp_path, "ddp", 32, *DDP[:6])
    one = fit_draws(tmp_path, "one", 64)
    # 2 generator steps of 5 critic updates + 1 generator update: 12 optimizer steps
    assert len(ddp["grads"]) == len(one["grads"]) == 12
    for step, (a, b) in enumerate(zip(ddp["grads"], one["grads"], strict=True)):
        for ga, gb in zip(a, b, strict=True):  # the mean over 2b, not a sum (2x) or one rank's
            torch.testing.assert_close(ga, gb, atol=1e-6, rtol=1e-4, msg=f"optimizer step {step}")
    assert any(g.abs().max() > 1e-3 for g in one["grads"][0])  # a gradient that shows scale


def test_the_ranks_train_on_disjoint_data(tmp_path):
    proc = run_module(
        "fit", "--config", "configs/toy/wgan_gp.yaml", *TINY_TOY, *QUIET, *DDP[:6],
        "--model.g_width", "32", "--model.d_width", "32", "--trainer.max_steps", "12",
        "--trainer.limit_val_batches", "0", "--run.logger", "csv", "--run.root", str(tmp_path),
        "--run.name", "run", "--trainer.callbacks+=tests.helpers.RecordBatches",
        env={"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = (torch.load(tmp_path / "run" / f"batches_rank{r}.pt") for r in (0, 1))
    assert len(a) == len(b) == 12 * 5 * 32  # one epoch: 12 steps of 5 critic batches of 32
    assert torch.unique(a, dim=0).shape[0] == len(a)  # no point twice within a rank ...
    assert torch.unique(torch.cat([a, b]), dim=0).shape[0] == 2 * len(a)  # ... nor across ranks


def test_rank_zero_decides_the_best_checkpoint_for_every_rank(tmp_path):
    """Only rank 0 measures FID, yet writing best.ckpt is a collective save: every rank must
    learn rank 0's decision (one broadcast per evaluation) or the save waits forever."""
    proc = run_module(
        "fit", "--config", "configs/wgan_gp.yaml", *TINY_DIGITS, *TINY_GAN_DIGITS, *QUIET, *DDP,
        "--run.root", str(tmp_path), "--run.name", "run", "--trainer.max_steps", "6",
        "--fid.every_n_steps", "2", "--fid.n_samples", "64", "--trainer.val_check_interval", "2",
        "--trainer.limit_val_batches", "1", env={"OMP_NUM_THREADS": "1"}, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    fids = [(int(r["step"]), float(r["val/domain_fid"])) for r in rows(run)
            if r.get("val/domain_fid")]  # fmt: skip
    assert [s for s, _ in fids] == [2, 4, 6]  # one figure per evaluation: rank 0's
    step, figure = min(fids, key=lambda sf: sf[1])
    saved_step, best = best_of(run)
    assert saved_step == best["step"] == step
    assert best["figure"] == pytest.approx(figure, rel=1e-5)
    assert f"best.ckpt (generator step {step}," in proc.stdout + proc.stderr
