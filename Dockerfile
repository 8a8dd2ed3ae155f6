# syntax=docker/dockerfile:1
#
# The Cloudemy backend image: the REST API (`cloudemy serve`, gunicorn on port 8000),
# also run as the scheduler (`cloudemy worker`) and Flower (`cloudemy flower`) by
# manifests/. Build from the repository root:
#
#   docker build -t cloudemy/backend:0.1.0 .

# ---- build: install the package and its dependencies into a virtualenv ----------------
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# The whole context (.dockerignore keeps out tests, docs, manifests, caches, .git):
# only what the package declares in setup.cfg ends up installed.
COPY . .
RUN pip install --upgrade pip setuptools wheel \
    && pip install .
# Smoke test from outside the source tree: the console script works, the top-level
# celeryconfig module (read by the worker's Celery app) was installed with the package
# (setup.cfg: py_modules = celeryconfig), and the dev tooling was left out.
RUN cd / && cloudemy --help >/dev/null \
    && python -c "import importlib.util as u; assert u.find_spec('celeryconfig')" \
    && python -c "import importlib.util as u; assert not u.find_spec('cloudemy_dev')"

# ---- runtime: the virtualenv only, no source tree, no compilers, non-root -------------
FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="cloudemy-backend" \
      org.opencontainers.image.description="Cloudemy REST API, scheduler worker and Flower"

# XDG_RUNTIME_DIR=/tmp: gunicorn puts its control socket there instead of $HOME,
# which is read-only in the cluster (readOnlyRootFilesystem; /tmp is an emptyDir).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000 \
    XDG_RUNTIME_DIR=/tmp

RUN groupadd --system --gid 10001 cloudemy \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/cloudemy --create-home \
       --shell /usr/sbin/nologin cloudemy

COPY --from=build /opt/venv /opt/venv

WORKDIR /home/cloudemy
# Numeric, so that Kubernetes' runAsNonRoot can verify it without a passwd lookup.
USER 10001:10001

EXPOSE 8000
CMD ["cloudemy", "serve"]
