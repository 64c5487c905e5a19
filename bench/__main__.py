"""`make bench`: run the benchmarks (slow; never part of `make test`).

    make bench                      # every benchmark below
    make bench ARGS="grid_design"   # one of them, with its own options after the name

Benchmarks: grid_design (designing the grids of a dense street) and district (the district
of DESIGN.md §6 at --scale 1: ingest, grid assignment, import, dashboard, tiles, look-ups,
indicators, memory, each as a ratio to a baseline measured in the same run; see
docs/performance.md). `make bench ARGS="district --scale 0.1"` is a quick run.
"""

import importlib
import sys

BENCHMARKS = ["grid_design", "district"]


def main(argv: list[str]) -> int:
    names = [argv[0]] if argv and not argv[0].startswith("-") else BENCHMARKS
    rest = argv[1:] if argv and not argv[0].startswith("-") else argv
    for name in names:
        if name not in BENCHMARKS:
            print(f"Unknown benchmark {name!r}; choose from: {', '.join(BENCHMARKS)}", file=sys.stderr)
            return 2
        print(f"==> benchmark {name}")
        module = importlib.import_module(f"bench.{name}")
        sys.argv = [f"bench.{name}", *rest]
        result = module.main()
        if result:
            return int(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
