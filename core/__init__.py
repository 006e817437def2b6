"""MetaScope engine: datasets, episodes, meta-learners, training, evaluation and analysis.

No UI here: the dashboard and the command line (python -m core) both drive this package. Import what
you use from its module (`from core.training.run import train_run`); this file imports nothing, so
that a light module such as core.config loads without torch.
"""
