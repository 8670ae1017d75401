"""A small program for the viewers: one parser called from two places (slow from one of
them), a worker thread, and asyncio tasks that wait.

python -m recompyle run --format tree examples/service.py
python -m recompyle run -o service.speedscope.json examples/service.py
"""

import asyncio
import json
import threading


def parse(text):
    return json.loads(text)


def load_config():
    # A large document, parsed once at start-up: this is where parse is slow.
    entries = ",".join(f'"key{i}": {{"value": {i}, "tags": ["a", "b"]}}' for i in range(20000))
    return parse("{" + entries + "}")


def handle_request(body):
    # Small bodies, many times: parse is cheap here.
    return len(parse(body))


def worker(requests):
    for body in requests:
        handle_request(body)


async def fetch(delay):
    await asyncio.sleep(delay)
    return delay


async def gather_all():
    return await asyncio.gather(fetch(0.05), fetch(0.1))


def main():
    config = load_config()
    thread = threading.Thread(target=worker, args=(['{"id": 1}'] * 2000,), name="worker")
    thread.start()
    thread.join()
    waited = asyncio.run(gather_all())
    print(len(config), round(sum(waited), 2))


if __name__ == "__main__":
    main()
