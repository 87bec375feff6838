# billfold's production image: `billfold serve` on port 8000 as a non-root user.
#   docker build -t billfold .
#   docker run --env-file billfold.env -p 8000:8000 billfold            # the API (and a worker thread)
#   docker run --env-file billfold.env billfold worker                  # more workers
#   docker run --env-file billfold.env billfold db upgrade              # migrations, before a new version
# compose.yaml runs all of it on PostgreSQL. Settings are BILLFOLD_* environment variables (README).

FROM python:3.12-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/billfold \
 && /opt/billfold/bin/pip install --no-cache-dir .

FROM python:3.12-slim
ENV PATH=/opt/billfold/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 billfold \
 && useradd --system --uid 10001 --gid billfold --home-dir /var/lib/billfold --create-home billfold
COPY --from=build /opt/billfold /opt/billfold
USER 10001:10001
WORKDIR /var/lib/billfold
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
# SIGTERM (docker stop) finishes the requests in flight and the worker's current event, then exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["billfold"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
