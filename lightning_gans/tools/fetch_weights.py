"""``make fetch-weights``: the Inception weights of published FIDs into ``data/weights/`` (the
one command that needs the internet; offline it says, in one line, how to copy them over)."""

from __future__ import annotations

from lightning_gans.errors import OneLineParser
from lightning_gans.metrics.features import fetch_inception
from lightning_gans.tools.args import one_line_errors


def main(argv: list[str] | None = None) -> None:
    ap = OneLineParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default="data", help="where weights and classifiers live")
    args = ap.parse_args(argv)
    one_line_errors(lambda: print(fetch_inception(args.cache)))


if __name__ == "__main__":
    main()
