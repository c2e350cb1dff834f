# leadrouter: one image for every process (`worker`, `api`, `db upgrade`, `demo`, `dlq`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOG_FORMAT=json

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin leadrouter

WORKDIR /src

# Dependency layer: rebuilt only when pyproject.toml or constraints.txt changes, not on every
# code change. The runtime dependencies come from pyproject.toml, their exact versions from
# constraints.txt (the set CI tests; scripts/update-constraints regenerates it).
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The code itself, installed without touching the dependency layer.
COPY README.md ./
COPY api ./api
COPY cli ./cli
COPY db ./db
COPY schemas ./schemas
COPY messaging ./messaging
COPY routing ./routing
COPY worker ./worker
RUN pip install --no-deps . && rm -rf /src/build

# Runs as an unprivileged user in its home (a writable place for the default SQLite file).
USER leadrouter
WORKDIR /home/leadrouter
EXPOSE 8000 9100

ENTRYPOINT ["leadrouter"]
CMD ["--help"]
