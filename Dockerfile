# tuner image: workers, the one-shot launch and the dashboard all run it.
#   BACKEND=tensorflow (default) or jax: the Keras backend workers train on.
#   DEVICE=cpu (default) or gpu: gpu adds the CUDA libraries from PyPI (several GB);
#   a CPU image carries none of them.
# Debian's Fashion-MNIST is baked in so the image works without network access to
# datasets. No credential is baked in: the storage URL arrives at run time in TUNER_STORAGE.
# Layers: the dependencies are installed from pyproject.toml alone, so a change to tuner's
# code rebuilds only the small layer that installs tuner itself. pip keeps no cache.
# No HEALTHCHECK here: the image runs three roles and only the dashboard has something to
# probe; docker-compose.yml checks the dashboard (see the comments there on workers).
FROM python:3.11-slim-bookworm

ARG BACKEND=tensorflow
ARG DEVICE=cpu

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    KERAS_BACKEND=${BACKEND} \
    TUNER_ARTIFACTS=/artifacts

# DL3008 (pin apt versions): the base image's tag pins the release, bookworm; a stable
# release's archive holds only a package's current version, so an exact pin would break the
# build at the next point release instead of taking its fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends dataset-fashion-mnist \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# The dependencies: an empty stand-in package lets pip resolve pyproject.toml's extras.
COPY pyproject.toml ./
# DL3013 (pin pip versions): what is installed here is tuner's own extras; the versions
# they allow are pyproject.toml's ranges, the same as a pip install of tuner anywhere.
# hadolint ignore=DL3013
RUN case "${BACKEND}-${DEVICE}" in \
        tensorflow-cpu) extras=postgres,mysql ;; \
        tensorflow-gpu) extras=postgres,mysql,gpu ;; \
        jax-cpu) extras=postgres,mysql,jax ;; \
        jax-gpu) extras=postgres,mysql,jax-gpu ;; \
        *) echo "BACKEND must be tensorflow or jax, DEVICE cpu or gpu" >&2; exit 1 ;; \
    esac \
    && mkdir tuner && touch README.md tuner/__init__.py \
    && pip install ".[${extras}]" \
    && pip uninstall -y tuner \
    && rm -rf README.md tuner build ./*.egg-info

# tuner itself, without touching the dependencies; the seed studies are its package data.
COPY README.md ./
COPY tuner ./tuner
RUN pip install --no-deps . && rm -rf build ./*.egg-info

# The named volumes mount here: created owned by tuner, so they are writable by it.
RUN groupadd --gid 1000 tuner \
    && useradd --create-home --uid 1000 --gid 1000 tuner \
    && mkdir -p /artifacts /home/tuner/.keras \
    && chown tuner /artifacts /home/tuner/.keras
# By number: a runtime can then check it is not root (Kubernetes' runAsNonRoot) without
# reading the image's /etc/passwd.
USER 1000:1000

ENTRYPOINT ["tuner"]
CMD ["worker", "--variant", "all"]
