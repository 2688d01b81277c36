# tuner worker image: GPU-capable TensorFlow (CUDA libraries from PyPI), PostgreSQL driver,
# and Debian's Fashion-MNIST so the image works without network access to datasets.
# No credential is baked in: the storage URL arrives at run time in TUNER_STORAGE.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    TUNER_STUDIES=/app/studies \
    TUNER_ARTIFACTS=/artifacts

RUN apt-get update \
    && apt-get install -y --no-install-recommends dataset-fashion-mnist \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY tuner ./tuner
RUN pip install '.[postgres,gpu]'
COPY studies ./studies

RUN useradd --create-home --uid 1000 tuner && mkdir -p /artifacts && chown tuner /artifacts
USER tuner

ENTRYPOINT ["tuner"]
CMD ["worker", "--variant", "all"]
