"""Training: strategies, the optimizer and schedules, the task-agnostic Trainer, checkpoints, summaries, and
the jobs behind the entry points (`pretrain_job`)."""
