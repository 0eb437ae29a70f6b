"""What runs inside the Trainer: checkpoints and preemption, the time limit, sample pictures,
measurements, progress and the model summary."""
