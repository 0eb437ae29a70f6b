"""Running a model: the CLI, its callbacks, loggers, checkpoints, preemption and SLURM."""
