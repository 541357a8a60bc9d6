"""Reading a sweep back: fits, figures and the MLflow UI."""
