"""A small web app for ``--otel``: one route whose time goes into a slow lookup deep inside
fast calls, and a route that fails.

    pip install 'recompyle[otel]' flask opentelemetry-distro \
        opentelemetry-exporter-otlp-proto-http opentelemetry-instrumentation-flask
    python examples/otel/collector.py &            # an OTLP/HTTP receiver on 127.0.0.1:4318
    OTEL_SERVICE_NAME=shop OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \
        opentelemetry-instrument python -m recompyle run --otel examples/otel/shop.py
    curl http://127.0.0.1:8000/order/42
"""

import os
import time

from flask import Flask

app = Flask(__name__)

PRICES = {"42": 1250, "7": 300}


def query(sql, key):
    time.sleep(0.02)  # the database round trip
    return PRICES.get(key)


def price_of(item):
    return query("SELECT price FROM items WHERE id = ?", item)


def format_cents(cents):
    return f"{cents // 100}.{cents % 100:02d}"


def total(item, quantity):
    return format_cents(price_of(item) * quantity)


@app.route("/order/<item>")
def order(item):
    return {"item": item, "total": total(item, 2)}


@app.route("/broken/<item>")
def broken(item):
    return {"total": total("missing-" + item, 1)}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
