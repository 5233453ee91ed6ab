# AlphaLoom app image: the package with its flows, dbt project and CLI.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 ALPHALOOM_PROJECT_DIR=/app ALPHALOOM_HOME=/var/lib/alphaloom
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY alphaloom ./alphaloom
COPY flows ./flows
COPY agents ./agents
COPY execution ./execution
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 && pip install -e .
COPY dbt ./dbt
COPY prefect.yaml ./
ENTRYPOINT ["alphaloom"]
CMD ["--help"]
