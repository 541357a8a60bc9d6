"""Real training sweeps, by concern: `training` (corpus, trainer with MFU, device, autotuner),
`sweeps` (IsoFLOP design, schedule, point runner, executors), `tracking` (the one MLflow writer,
every run/tag/metric name, store habits, readers), `review` (fits, figures, the MLflow UI); the
torch models (`model`, `llama`) and the team server on PostgreSQL (`server`, `postgres`) sit at
the top. torch and mlflow come from the `[sweep]` extra; ray and psycopg2 from `[team]`.
"""
