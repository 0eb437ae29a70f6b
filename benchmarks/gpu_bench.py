"""GPU throughput: the Lightning models (the real CLI) against the plain loop of plain_loops.py on
the same GPU, same nets, batch, n_critic and optimisers, interleaved. WGAN-GP with DCGAN nets on
the digits (mnist5k, 1 x 32 x 32) and on CIFAR-10-sized stand-in images (3 x 32 x 32), the
CIFAR-10 ResNet preset, and the DCGAN GAN (which, having no gradient penalty, can be compiled);
each in fp32, bf16, bf16 + channels_last and bf16 + channels_last + torch.compile. Writes
benchmarks/gpu.md with the device name; on a machine without the device it writes "not run"
and why.

    python benchmarks/gpu_bench.py [--device cuda] [--iters 60] [--warmup 20] [--rounds 2]
    (make bench DEVICE=cuda)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from plain_loops import train_gan  # noqa: E402

from lightning_gans.errors import ConfigError, OneLineParser  # noqa: E402
from lightning_gans.launch.cli import build_cli  # noqa: E402

CASES = [  # (name, configs, data flags, model flags)
    ("digits, DCGAN WGAN-GP", ["wgan_gp.yaml"], ["--data.dataset", "mnist5k"], []),
    ("CIFAR-10-sized, DCGAN WGAN-GP", ["wgan_gp.yaml", "experiments/cifar10/wgan_gp.yaml"],
     ["--data.dataset", "folder", "--data.channels", "3"], []),
    ("CIFAR-10-sized, ResNet WGAN-GP",
     ["wgan_gp.yaml", "experiments/cifar10_resnet/wgan_gp.yaml"],
     ["--data.dataset", "folder", "--data.channels", "3"], []),
    ("CIFAR-10-sized, DCGAN GAN (compiles: no penalty)", ["gan.yaml"],
     ["--data.dataset", "folder", "--data.channels", "3"], []),
]  # fmt: skip
VARIANTS = [  # (name, precision, channels_last, compile)
    ("fp32", "32-true", False, False),
    ("bf16", "bf16-mixed", False, False),
    ("bf16 + channels_last", "bf16-mixed", True, False),
    ("bf16 + channels_last + compile", "bf16-mixed", True, True),
]


class StepTimes(L.Callback):
    def __init__(self):
        self.times: list[float] = []

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()  # the plain loop synchronises at the same point
        self.times.append(time.perf_counter())


def stand_in_images(root: Path, n: int = 2048) -> Path:
    """CIFAR-10-sized random images (the throughput does not depend on what they show)."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    for i in range(n):
        x = torch.randint(0, 256, (32, 32, 3), generator=gen, dtype=torch.uint8)
        Image.fromarray(x.numpy()).save(root / f"{i}.png")
    return root


def lightning_run(configs, data, extra, variant, args, out: str, images: Path):
    _, precision, channels_last, compile_ = variant
    flags = [a for c in configs for a in ("--config", str(ROOT / "configs" / c))]
    flags += [*data, "--data.root", str(images), "--trainer.max_steps", str(args.iters)]
    flags += ["--trainer.accelerator", args.device, "--trainer.devices", "1"]
    flags += ["--trainer.precision", precision, "--trainer.max_time", "null"]
    flags += ["--model.channels_last", str(channels_last).lower()]
    flags += ["--model.compile", str(compile_).lower(), *extra]
    flags += ["--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false"]
    flags += ["--trainer.enable_model_summary", "false", "--samples.every_n_steps", "0"]
    flags += ["--fid.every_n_steps", "0", "--checkpoint.every_n_train_steps", "0"]
    flags += ["--run.logger", "csv", "--run.root", out]
    cli = build_cli(flags, run=False)
    timer = StepTimes()
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, cli.datamodule)
    hp = {**cli.model.hparams, "batch_size": cli.datamodule.hparams.batch_size}
    return timer.times, hp, cli.datamodule.train_set


def ms_per_iter(times: list[float], warmup: int) -> float:
    return 1000 * (times[-1] - times[warmup - 1]) / (len(times) - warmup)


def main() -> None:
    ap = OneLineParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", choices=("cuda",), help="make bench DEVICE=cuda")
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "gpu.md"))
    args = ap.parse_args()
    sys.argv = sys.argv[:1]
    if args.device == "cuda" and not torch.cuda.is_available():
        write_not_run(args.out, "no CUDA device on this machine")
        return
    name = torch.cuda.get_device_name()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        images = stand_in_images(Path(tmp) / "images")
        for case, configs, data, extra in CASES:
            for variant in VARIANTS:
                lt, pt, note, per_iter = [], [], "", 0
                for r in range(args.rounds):
                    try:
                        times, hp, train_set = lightning_run(
                            configs, data, extra, variant, args, f"{tmp}/runs", images
                        )
                    except ConfigError as e:  # an option this model refuses (compile + GP)
                        note = str(e)
                        break
                    lt.append(ms_per_iter(times, args.warmup))
                    x = torch.stack([train_set[i] for i in range(min(len(train_set), 4096))])
                    amp = torch.bfloat16 if variant[1] == "bf16-mixed" else None
                    model = configs[0].removesuffix(".yaml")
                    _, times = train_gan(hp, x, args.iters, r, model, args.device, amp,
                                         variant[2], variant[3])  # fmt: skip
                    pt.append(ms_per_iter(times, args.warmup))
                    per_iter = hp["batch_size"] * hp["n_critic"]
                row = (case, variant[0], lt, pt, per_iter, note)
                print(row, flush=True)
                rows.append(row)
    write(args, name, rows)


def write_not_run(out: str, why: str) -> None:
    lines = [
        f"# GPU throughput ({time.strftime('%Y-%m-%d')})",
        "",
        f"**Not run: {why}.** `make bench DEVICE=cuda` (benchmarks/gpu_bench.py) fills this table",
        "on a CUDA machine: ms per generator iteration and real images per second for the",
        "Lightning models and the plain loop on the same GPU, for each case and precision below.",
        "",
        "| case | variant | Lightning ms/it | plain ms/it | Lightning / plain throughput |",
        "|---|---|---|---|---|",
    ]
    for case, *_ in CASES:
        for variant in VARIANTS:
            if variant[3] and "WGAN-GP" in case:  # refused at start (docs/design.md)
                refused = "refused: torch.compile has no double backward (the gradient penalty)"
                lines.append(f"| {case} | {variant[0]} | {refused} | | |")
            else:
                lines.append(f"| {case} | {variant[0]} | not run | not run | not run |")
    Path(out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def write(args, device: str, rows) -> None:
    import lightning

    lines = [
        f"# GPU throughput ({time.strftime('%Y-%m-%d')})",
        "",
        f"Device: **{device}**. Command: `python benchmarks/gpu_bench.py --device {args.device} "
        f"--iters {args.iters} --warmup {args.warmup} --rounds {args.rounds}` (`make bench "
        f"DEVICE=cuda`); torch {torch.__version__}, Lightning {lightning.__version__}.",
        "",
        "ms per generator iteration in the steady state (after the warmup iterations; the device "
        "is synchronised at each step's end in both implementations), median over rounds; "
        "images/s counts the real images the critic sees.",
        "",
        "| case | variant | Lightning ms/it | plain ms/it | Lightning images/s | "
        "Lightning / plain throughput | speed-up over fp32 |",
        "|---|---|---|---|---|---|---|",
    ]
    fp32 = {}
    for case, variant, lt, pt, per_iter, note in rows:
        if not lt:
            lines.append(f"| {case} | {variant} | not supported: {note} | | | | |")
            continue
        lm, pm = statistics.median(lt), statistics.median(pt)
        fp32.setdefault(case, lm)
        lines.append(
            f"| {case} | {variant} | {lm:.2f} | {pm:.2f} | {per_iter * 1000 / lm:.0f} | "
            f"{pm / lm:.3f} | {fp32[case] / lm:.2f}x |"
        )
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
