"""The benchmarks: every script is a module run from the repository root (`python -m research.bench.<script>`),
sharing `common`; figures go to research/results/ and the page research/bench/README.md (`write_benchmarks_page`)."""
