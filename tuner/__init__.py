"""tuner: grid-search hyperparameter tuning of Keras MLPs as an Optuna service."""

__version__ = "0.1.0"
