"""Running the algorithms: the training lifecycle (lock, checkpoints, interrupts, logs, rank 0), the run's
files, multi-process and compiled execution, live metrics, process settings, and the CLI's flags."""
