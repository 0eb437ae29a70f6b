"""``make sample CKPT=... N=64 [OUT=file.png]``: a grid of samples and a latent interpolation
strip, by default beside the run's own pictures (``<run>/samples/sample_step_N.png``).

    python -m lightning_gans.tools.sample runs/<run> --n 64

Images: an N-image grid in OUT and, in OUT with ``_interp`` before the suffix, 4 rows of 10
images along great-circle paths between random latents (slerp: for a Gaussian prior, straight
lines pass through improbably small norms; White 2016). 2-D sets: the samples over held-out data.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from lightning_gans.callbacks.pictures import image_grid, scatter_2d
from lightning_gans.data import first_n
from lightning_gans.errors import ConfigError, OneLineParser
from lightning_gans.tools.args import add_trust_flag, one_line_errors, trust_if_asked
from lightning_gans.tools.evaluate import load_run

MAX_N = 10_000  # 100 x 100 images: a larger grid is no picture anyone reads


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between rows of a and b at the fractions t: (R, D) -> (R, T, D)."""
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1).clamp(-1 + 1e-7, 1 - 1e-7)
    omega = torch.acos(cos)[:, None, None]  # (R, 1, 1)
    t = t[None, :, None]
    return (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / (
        torch.sin(omega)
    )


def write_samples(ckpt: str, n: int, out: str | None = None, seed: int = 0) -> list[Path]:
    """Writes the pictures (by default ``<run>/samples/sample_step_XXXXXX.png``, beside the
    run's own pictures); returns their paths."""
    model, data, path, step = load_run(ckpt)
    noise = torch.Generator().manual_seed(seed)
    samples = model.sample(z=torch.randn(n, model.latent_dim, generator=noise))
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    out_path = Path(out) if out else run_dir / "samples" / f"sample_step_{step:06d}.png"
    if samples.dim() == 2:
        save(scatter_2d(first_n(data.test_set, n), samples, title=f"{n} samples"), out_path)
        return [out_path]
    save(image_grid(samples), out_path)
    a, b = (torch.randn(4, model.latent_dim, generator=noise) for _ in range(2))
    path = slerp(a, b, torch.linspace(0, 1, 10)).flatten(0, 1)  # (40, D): 4 rows of 10
    strip = out_path.with_name(f"{out_path.stem}_interp{out_path.suffix}")
    save(image_grid(model.sample(z=path), nrow=10), strip)
    return [out_path, strip]


def save(picture, path: Path) -> None:
    """Writes a picture; a place that cannot be written is one line naming it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        picture.save(path)
    except OSError as e:
        raise ConfigError(f"--out {str(path)!r}: cannot write: {e.strerror or e}") from None


def main(argv: list[str] | None = None) -> None:
    ap = OneLineParser(description="a sample grid and a latent interpolation strip")
    ap.add_argument("ckpt", help="a .ckpt file or a run directory (its last.ckpt)")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--out", default=None, help="default: <run>/samples/sample_step_N.png")
    ap.add_argument("--seed", type=int, default=0)
    add_trust_flag(ap)
    args = ap.parse_args(argv)
    if not 1 <= args.n <= MAX_N:
        ap.error(f"--n must be in [1, {MAX_N}] (the samples in one picture), got {args.n}")
    if args.seed < 0:
        ap.error(f"--seed must be >= 0, got {args.seed}")
    if args.out and Path(args.out).suffix.lower() not in (".png", ".jpg", ".jpeg"):
        ap.error(f"--out must end in .png, .jpg or .jpeg, got {args.out!r}")

    def work() -> None:
        trust_if_asked(args)
        for path in write_samples(args.ckpt, args.n, args.out, args.seed):
            print(f"wrote {path}")

    one_line_errors(work)


if __name__ == "__main__":
    main()
