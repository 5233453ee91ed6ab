"""Operating AlphaLoom: health checks, alerts, run locks, the kill switch, backups, credentials, the local Prefect
server and its deployments, and the catalog of what is stored."""
