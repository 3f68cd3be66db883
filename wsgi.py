"""The WSGI entry point: `flask --app wsgi run` and `gunicorn wsgi:app` both serve this."""

from app import create_app

app = create_app()
