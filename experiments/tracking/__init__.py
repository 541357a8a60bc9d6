"""MLflow: the one writer, every name, store habits, the readers."""
