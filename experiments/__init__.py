"""Real training sweeps: corpus (`data`), GPT model (`model`), training loop with MFU (`train`,
`hardware`), IsoFLOP grid (`design`), MLflow runner and readers (`sweep`, `tracking`), plots and
the MLflow UI (`plots`, `ui`). torch and mlflow come from the `[sweep]` extra.
"""
