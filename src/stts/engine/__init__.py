"""Training, evaluation, checkpoints and the distributed set-up."""
