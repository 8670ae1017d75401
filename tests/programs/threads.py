"""Threads and ThreadPoolExecutor, with deterministic output; one named thread dies with an
uncaught exception so threading.excepthook prints its traceback."""
import concurrent.futures
import queue
import sys
import threading


def square(x):
    return x * x


def worker(n, out, lock):
    local = [square(i) for i in range(n)]
    with lock:
        out.append((threading.current_thread().name, sum(local)))


out = []
lock = threading.Lock()
threads = [threading.Thread(target=worker, args=(n, out, lock), name=f"w{n}") for n in range(1, 6)]
for th in threads:
    th.start()
for th in threads:
    th.join()
print(sorted(out))

with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
    print(list(pool.map(square, range(10))))
    futures = {pool.submit(square, i): i for i in range(5)}
    print(sorted((futures[f], f.result()) for f in concurrent.futures.as_completed(futures)))
    failing = pool.submit(int, "x")
    try:
        failing.result()
    except ValueError as e:
        print("future raised", e)

q = queue.Queue()


def producer():
    for i in range(3):
        q.put(square(i))
    q.put(None)


def consumer(results):
    while (item := q.get()) is not None:
        results.append(item)


results = []
p = threading.Thread(target=producer)
c = threading.Thread(target=consumer, args=(results,))
p.start()
c.start()
p.join()
c.join()
print(results)
local = threading.local()
local.value = "main"


def read_local(box):
    box.append(getattr(local, "value", "unset"))


box = []
th = threading.Thread(target=read_local, args=(box,))
th.start()
th.join()
print(box, local.value)


def explode():
    raise RuntimeError("thread failure")


bad = threading.Thread(target=explode, name="exploder")
bad.start()
bad.join()
sys.stderr.flush()
print("main continues after thread failure")
event = threading.Event()
timer = threading.Timer(0.001, event.set)
timer.start()
print("event set", event.wait(5))
