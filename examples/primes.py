"""A small program to profile: three ways to find primes, and a summary.

python -m recompyle run examples/primes.py 20000
"""

import json
import sys


def is_prime(n):
    if n < 2:
        return False
    for d in range(2, int(n**0.5) + 1):
        if n % d == 0:
            return False
    return True


def trial_division(limit):
    return [n for n in range(limit) if is_prime(n)]


def sieve(limit):
    flags = bytearray([1]) * limit
    flags[:2] = b"\x00\x00"
    for n in range(2, int(limit**0.5) + 1):
        if flags[n]:
            flags[n * n :: n] = bytes(len(range(n * n, limit, n)))
    return [n for n, flag in enumerate(flags) if flag]


def summary(primes):
    gaps = [b - a for a, b in zip(primes, primes[1:])]
    return {"count": len(primes), "largest": max(primes), "widest_gap": max(gaps)}


def main(argv):
    limit = int(argv[1]) if len(argv) > 1 else 20000
    slow = trial_division(limit)
    fast = sieve(limit)
    assert slow == fast, "the two methods disagree"
    print(json.dumps(summary(fast), sort_keys=True))


if __name__ == "__main__":
    main(sys.argv)
