"""What starts a run: the CLI and its entry point, run directories, the resume rule, the
loggers, the first run's time budget and the SLURM launcher."""
