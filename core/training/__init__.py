"""Meta-training. Modules, from the inside out:

- trainer: the Trainer loop (knows no method and no UI; callbacks and a stop event);
- run: train_run, which trains a RunConfig into a run folder (blocking; the CLI calls it);
- live: what a training run shares with those who watch it (RunState, MetricsLog, RunSnapshot);
- executors: where a background run trains (a thread, or a child process);
- background: TrainingRun, a run in the background, and start_run, the one way to start one;
- registry: the background runs of this process, by id (imports no torch: the first page asks it).
"""
