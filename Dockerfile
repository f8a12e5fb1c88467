# One image for every horde role: a local run, a master or a worker; the arguments decide.
#
#   docker build -t horde:0.1.0 .
#   docker run --rm -p 8089:8089 -v "$PWD:/mnt/locust:ro" horde:0.1.0 -f /mnt/locust/locustfile.py
#   docker run --rm horde:0.1.0 -f /mnt/locust/locustfile.py --worker --master-host horde-master
#
# The web UI listens on every interface inside the container (HORDE_WEB_HOST=0.0.0.0): publish 8089 only
# where you mean to. No key, password or locustfile is baked in: mount them (docs/kubernetes.md).

# -- build: install horde and its dependencies from this checkout into a virtualenv ----------------------
FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/horde
WORKDIR /src
# .dockerignore sends only these: the build context holds no virtualenv, .git, tests or key files
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/horde/bin/pip install . \
    && /opt/horde/bin/horde --version

# -- run: the virtualenv on a fresh slim image, as an unprivileged user ------------------------------------
FROM python:3.12-slim
LABEL org.opencontainers.image.title="horde" \
      org.opencontainers.image.description="Load testing for Python people: async users, Locust's vocabulary" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 horde \
    && useradd --system --uid 10001 --gid horde --home-dir /home/horde --create-home \
       --shell /usr/sbin/nologin horde
COPY --from=build /opt/horde /opt/horde
ENV PATH=/opt/horde/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HORDE_WEB_HOST=0.0.0.0
WORKDIR /home/horde
# numeric, so that Kubernetes' runAsNonRoot can verify it without looking the name up
USER 10001:10001
# 8089: the web UI (and /metrics); 5557: the master's control port, which workers connect to
EXPOSE 8089 5557
ENTRYPOINT ["horde"]
CMD ["--help"]
