"""The team tracking server: MLflow on PostgreSQL, its health, backups, users and Ray bring-up."""
