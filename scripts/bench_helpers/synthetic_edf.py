"""Write a synthetic EDF of random-walk channels for scripts/bench.py.

Run as its own process (``python scripts/bench_helpers/synthetic_edf.py PATH ...``) so that building
the signals in memory does not inflate the benchmark process's RSS. Needs only numpy and edfio.
"""

from __future__ import annotations

import argparse
import datetime

import edfio
import numpy as np


def write_synthetic_edf(path: str, channels: int, rate: float, seconds: int, seed: int) -> None:
    """``channels`` random walks of ``seconds`` at ``rate`` Hz, in uV, 1 s data records."""
    rng = np.random.default_rng(seed)
    count = int(rate * seconds)
    signals = []
    for index in range(channels):
        walk = np.cumsum(rng.standard_normal(count))
        walk -= walk.mean()
        signals.append(
            edfio.EdfSignal(walk, sampling_frequency=rate, label=f"SYN{index + 1}", physical_dimension="uV")
        )
        del walk
    edf = edfio.Edf(
        signals,
        recording=edfio.Recording(startdate=datetime.date(2020, 1, 1)),
        starttime=datetime.time(8, 0, 0),
        data_record_duration=1,
    )
    edf.write(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    write_synthetic_edf(args.path, args.channels, args.rate, args.seconds, args.seed)


if __name__ == "__main__":
    main()
