# syntax=docker/dockerfile:1
# sagd: API and worker image (one image, two commands; see docker-compose.yml and docs/DEPLOY.md).
#
#   CPU (default):  docker build -t sagd:cpu .
#   CUDA:           docker build -t sagd:cuda \
#                     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#
# The CUDA wheels of torch bundle the CUDA runtime, so the same slim base works on any host with an
# NVIDIA driver and the NVIDIA container toolkit.
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim-bookworm

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SAGD_STORAGE_ROOT=/data \
    OMP_NUM_THREADS=4

RUN apt-get update \
 && apt-get install -y --no-install-recommends libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 sagd \
 && mkdir -p /data && chown sagd:sagd /data

WORKDIR /app
# Dependencies first (cached layer), then the code. requirements.lock pins every version we test;
# as constraints it fixes the runtime dependencies and leaves the dev tools out of the image. Its
# torch==2.13.0 is met by the index's build (2.13.0+cpu, or +cu128 with the CUDA index).
COPY pyproject.toml README.md requirements.lock ./
RUN mkdir -p sagd_core service worker \
 && touch sagd_core/__init__.py service/__init__.py worker/__init__.py \
 && pip install --extra-index-url "${TORCH_INDEX_URL}" -c requirements.lock . \
 && pip uninstall -y sagd
COPY sagd_core ./sagd_core
COPY service ./service
COPY worker ./worker
RUN pip install --no-deps .

USER sagd
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)" || exit 1

# The API by default; the worker overrides the command (docker-compose.yml).
# service.serve: one SO_REUSEPORT socket per API process (docs/DEPLOY.md, "API replicas").
CMD ["python", "-m", "service.serve", "--host", "0.0.0.0", "--port", "8000", \
     "--proxy-headers", "--workers", "2"]
