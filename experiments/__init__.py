"""Real training sweeps: corpus (`data`), GPT model (`model`), training loop with MFU (`train`,
`hardware`), IsoFLOP grid (`design`), the sweep runner (`sweep`; one point as one run: `points`;
points as Ray tasks: `ray_exec`), the one MLflow writer and the readers (`tracking`; every run, tag
and metric name: `names`), plots and the MLflow UI (`plots`, `ui`), the team server on PostgreSQL
(`team`: server, postgres, health, auth, backup, supervise, ray_head). torch and mlflow come from the `[sweep]` extra; ray and psycopg2 from `[team]`.
"""
