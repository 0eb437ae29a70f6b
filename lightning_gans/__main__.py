"""``python -m lightning_gans`` and the ``lightning-gans`` script. The scheduler's signals are
caught first, before torch is imported (seconds): a SIGUSR1 or SIGTERM that arrives while the
job starts is acted on at the first step boundary instead of killing the process."""

from lightning_gans.signals import catch_signals, exit_interrupted


def main() -> None:
    catch_signals()
    import os
    import sys

    if "" not in sys.path and os.getcwd() not in sys.path:  # as ``python -m`` has it: a fork's
        sys.path.insert(0, os.getcwd())  # own model (``class_path: examples.lsgan.LSGAN``)
    try:
        from lightning_gans.launch.main import main as run_cli  # torch, Lightning: after these
    except KeyboardInterrupt:  # Ctrl-C while Python imports them (seconds)
        exit_interrupted()
    run_cli()


if __name__ == "__main__":
    main()
