# One image for all four services and the `ezone` CLI; docker-compose.yml and
# deploy/ choose what a container runs through its command.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
# A virtualenv copies cleanly into the runtime stage, leaving the source and build files behind.
RUN python -m venv /opt/ezone
WORKDIR /src
COPY pyproject.toml constraints.txt ./
COPY kit/ kit/
COPY schemas/ schemas/
COPY services/ services/
COPY ezone/ ezone/
RUN /opt/ezone/bin/pip install --no-cache-dir -c constraints.txt .

FROM python:3.11-slim
ENV PATH=/opt/ezone/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A numeric UID lets Kubernetes verify runAsNonRoot without resolving names.
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin ezone
COPY --from=build /opt/ezone /opt/ezone
USER 10001:10001
WORKDIR /home/ezone
