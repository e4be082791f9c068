# le-intake as a container: SMTP on port 2525, data under /data.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LE_INTAKE_SMTP__HOST=0.0.0.0 \
    LE_INTAKE_DATA_DIR=/data \
    LE_INTAKE_SPOOL_DIR=/data/spool \
    LE_INTAKE_DATABASE_URL=sqlite+aiosqlite:////data/le-intake.db \
    LE_INTAKE_OUTBOX__FOLDER=/data/outbox

RUN apt-get update && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY core ./core
COPY le_intake ./le_intake
COPY ingest ./ingest
COPY classifiers ./classifiers
COPY replies ./replies
COPY config ./config
COPY cases ./cases
COPY alerts ./alerts
RUN pip install --no-cache-dir . && useradd --system --home /data intake \
    && mkdir -p /data && chown intake /data

USER intake
VOLUME /data
EXPOSE 2525 8080
CMD ["le-intake", "serve"]
