"""Model selection on top of the one pipeline: hyperparameter search (Optuna), k-fold
cross-validation, ensembles and their leaderboards. Everything here trains through
``neuroclass.pipeline`` and writes ordinary run folders."""
