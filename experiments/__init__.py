"""Real training sweeps, by concern: `training` (corpus, trainer with MFU, device, autotuner),
`sweeps` (IsoFLOP design, schedule, point runner, executors), `tracking` (the one MLflow writer,
every run/tag/metric name, store habits, readers), `review` (fits, figures, the MLflow UI); the
one torch builder (`model`: blocks per part of the planner's Architecture) and the team server on
PostgreSQL (`team`: server, postgres, health, auth, backup, supervise, ray_head) sit at the top.
torch and mlflow come from the `[sweep]` extra; ray and psycopg2 from `[team]`.
"""
