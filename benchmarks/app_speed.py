"""Server time of a latent-slider move in the app's Latent explorer, on the bundled checkpoint.

Runs the page with Streamlit's AppTest (the same script run the server does for a slider move,
without the browser round trip), moves a principal-direction slider repeatedly and prints the
median time of a re-run, beside the part of it spent generating the cover. Target: under 100 ms.

    python benchmarks/app_speed.py [--moves 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=20)
    args = parser.parse_args()
    from streamlit.testing.v1 import AppTest

    from gan import load_generator

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("app_pages/latent_explorer.py")
    at.run()  # first run: loads the model and computes the PCA directions (cached from then on)
    times = []
    for k in range(args.moves):
        at.slider(key="pc0").set_value(round(-3 + 6 * k / max(1, args.moves - 1), 1))
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
        assert not at.exception, at.exception

    generator = load_generator()
    noise = generator.sample_noise(1, 0)
    generate_times = []
    for _ in range(args.moves):
        start = time.perf_counter()
        generator.generate(noise, generator.genres[0])
        generate_times.append(time.perf_counter() - start)
    median = statistics.median(times) * 1000
    print(f"slider move, whole page re-run (median of {args.moves}): {median:.1f} ms "
          f"(target < 100 ms: {'met' if median < 100 else 'missed'})")
    print(f"of which generating one cover: {statistics.median(generate_times) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
