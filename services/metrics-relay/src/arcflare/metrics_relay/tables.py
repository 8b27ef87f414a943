"""The relay's state DB: what it knows of each job, which MLflow runs it made for it,
and which metric batches it has already written (so a replay writes nothing)."""

MIGRATIONS = [
    """
    CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        federation TEXT NOT NULL,
        name TEXT,
        sites TEXT,                 -- JSON list
        rounds INTEGER,
        command_id TEXT,            -- the SubmitJob command (correlation id of JobSubmitted)
        nvflare_version TEXT,
        server_run_id TEXT,         -- MLFLOW_RUN_ID of the server's Azure ML job, if any
        status TEXT,
        experiment_id TEXT,
        parent_run_id TEXT,
        model_name TEXT,
        model_version TEXT
    );
    CREATE TABLE site_runs (
        job_id TEXT NOT NULL,
        site TEXT NOT NULL,
        run_id TEXT NOT NULL,
        PRIMARY KEY (job_id, site)
    );
    CREATE TABLE metric_batches (
        job_id TEXT NOT NULL,
        site TEXT NOT NULL,
        batch_id TEXT NOT NULL,
        points INTEGER NOT NULL,
        logged_at TEXT NOT NULL,
        PRIMARY KEY (job_id, site, batch_id)
    )
    """,
]
