"""Oracle: CPython's own random.Random streams for one seed, as JSON on stdout.

usage: rng.py SEED [--lengths 0,1,2,10]

Prints, each from a freshly seeded random.Random(SEED):
  u32        the first 1500 getrandbits(32) outputs (crosses two MT19937 state refills)
  bits       hex(getrandbits(k)) for k in BITS, drawn one after another
  random53   the first 20 random() floats, times 2**53 (exact integers)
  randbelow  _randbelow(n) for n in BELOW, drawn one after another
  shuffle    {n: shuffled list(range(n))} for each length, one fresh generator per length
"""
import json
import random
import sys

BITS = [0, 1, 5, 31, 32, 33, 63, 64, 65, 100, 1000]
BELOW = [1, 2, 3, 7, 10, 1000, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 2**40 + 3, 2**63, 2**64 - 1]


def main():
    sys.set_int_max_str_digits(0)  # seeds may have thousands of digits
    seed = int(sys.argv[1])
    lengths = []
    if "--lengths" in sys.argv:
        text = sys.argv[sys.argv.index("--lengths") + 1]
        lengths = [int(x) for x in text.split(",") if x]

    r = random.Random(seed)
    u32 = [r.getrandbits(32) for _ in range(1500)]
    r = random.Random(seed)
    bits = [hex(r.getrandbits(k)) for k in BITS]
    r = random.Random(seed)
    random53 = [int(r.random() * 2**53) for _ in range(20)]
    r = random.Random(seed)
    below = [r._randbelow(n) for n in BELOW]
    shuffles = {}
    for n in lengths:
        x = list(range(n))
        random.Random(seed).shuffle(x)
        shuffles[str(n)] = x
    json.dump(
        {"u32": u32, "bits": dict(zip(map(str, BITS), bits)), "random53": random53,
         "randbelow": dict(zip(map(str, BELOW), below)), "shuffle": shuffles},
        sys.stdout,
    )


if __name__ == "__main__":
    main()
