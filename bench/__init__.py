"""billfold's benchmarks: ``python -m bench`` (see bench/README.md).

Each benchmark is a module with ``run(ctx: bench.common.Context) -> list[bench.common.Record]``,
registered by name in ``bench.__main__.BENCHMARKS``.
"""
