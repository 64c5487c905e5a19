# The gridmgmt web and worker image (see docker-compose.yml).
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends gdal-bin libgdal-dev gcc \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# collectstatic needs settings but no database or secrets.
RUN GRIDMGMT_MODE=development DATABASE_URL=postgis://build@localhost/build python manage.py collectstatic --noinput -v0
EXPOSE 8000
CMD ["gunicorn", "gridmgmt.wsgi:application", "-c", "gridmgmt/gunicorn_conf.py", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
